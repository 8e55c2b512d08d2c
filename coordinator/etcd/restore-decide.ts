/**
 * `drover etcd restore`, decided purely: whether a snapshot may be restored into a cluster now,
 * onto which member, and what the cluster's etcd assignments become while the restore runs (the
 * overlay the cluster reconcile applies before placement). coordinator/etcd/restore.ts acts on it.
 *
 * The way back from a lost quorum, as etcd documents it: stop every other member (parked:
 * rendered nowhere, no one's peer), restore the snapshot onto ONE member as a new single-member
 * cluster (new data dir: the epoch is bumped), point the API servers at it, then add the other
 * members back one at a time, each with a fresh data dir and an `--initial-cluster` of the
 * members so far. While the others stop (`stopping`), the target keeps its old epoch, so the API
 * servers, pointed at it alone, never talk to two clusters.
 */
import { etcdInitialCluster } from '../catalog/roles/etcd.js';
import type { EtcdAssignmentExtras } from '../catalog/types.js';
import type { Assignment, NodeRecord } from '../model.js';
import { quorumOf } from './quorum-watch.js';
import type { SnapshotRecord } from './snapshot-book.js';

export const RESTORE_PREFIX = 'etcd-restores/';

/** A restore never fails for good: a stuck one shows its member's error and is replaced with --force. */
export type RestorePhase = 'stopping' | 'seeding' | 'rejoining' | 'complete';

/** A restore, as the store keeps it (`etcd-restores/<cluster>`): the source of truth of its progress. */
export interface RestoreRecord {
  id: string;
  cluster: string;
  snapshotId: string;
  sha256: string;
  size: number;
  revision: number;
  /** the etcd cluster id of the snapshot, and the one the survivors ran (when one answered) */
  snapshotClusterId: string;
  clusterIdBefore?: string;
  /** the etcd cluster id the restored member came up with */
  clusterIdAfter?: string;
  /** the member the snapshot is restored onto, at its new epoch, with the single-member list */
  target: { instanceId: string; nodeId: string; epoch: number; initialCluster: string };
  /** every other member: parked at a new epoch until its turn */
  parked: Array<{ instanceId: string; epoch: number }>;
  /** members let back in, in order, with the `--initial-cluster` each joined with */
  released: Array<{ instanceId: string; initialCluster: string; at: string }>;
  /** the member let back in whose join is not confirmed yet */
  joining?: string;
  /** members confirmed back in the cluster and healthy */
  rejoined: string[];
  phase: RestorePhase;
  forced: boolean;
  by?: string;
  startedAt: string;
  seededAt?: string;
  completedAt?: string;
  /** etcd cluster ids this Drover cluster ran as before (earlier restores): their snapshots are its own */
  lineage: string[];
}

/** What the decision sees of one etcd member. */
export interface RestoreMember {
  assignment: Assignment;
  node: NodeRecord | undefined;
  /** the node's liveness state */
  state: 'Ready' | 'Suspect' | 'Unreachable' | undefined;
  /** its agent reports the instance healthy (etcd's /health: it has a leader) */
  healthy: boolean;
  /** its agent reports the instance running at all */
  running: boolean;
  /** the etcd cluster id it answered with (maintenance status), when it answered */
  clusterId?: string;
}

export interface RestoreInput {
  cluster: string;
  snapshot: SnapshotRecord;
  /** the stored file checked against the record; a message when it does not match */
  damaged?: string;
  members: readonly RestoreMember[];
  force: boolean;
  /** the cluster's restore record, if any (an active one refuses a second) */
  current?: RestoreRecord;
  tls: boolean;
}

export type RestoreDecision =
  | { ok: false; code: 'DROVER_ERR_RESTORE_REFUSED' | 'DROVER_ERR_SNAPSHOT_DAMAGED'; reason: string }
  | {
      ok: true;
      target: RestoreMember;
      parked: RestoreMember[];
      healthy: number;
      /** what the restore does, step by step, for the operator (and `--dry-run`) */
      steps: string[];
      /** the etcd cluster id the survivors run, when one answered */
      clusterIdBefore?: string;
    };

export const isActive = (r: RestoreRecord | undefined): boolean =>
  !!r && (r.phase === 'stopping' || r.phase === 'seeding' || r.phase === 'rejoining');

/** The etcd cluster ids a cluster ran as before its last restore (their snapshots are its own). */
export function lineageOf(r: RestoreRecord | undefined): string[] {
  if (!r) return [];
  return [...new Set([...r.lineage, r.snapshotClusterId, ...(r.clusterIdBefore ? [r.clusterIdBefore] : [])])];
}

const refuse = (reason: string): RestoreDecision => ({
  ok: false,
  code: 'DROVER_ERR_RESTORE_REFUSED',
  reason,
});

/** Whether `snapshot` may be restored into `cluster` now, and how. Acts on nothing. */
export function decideRestore(i: RestoreInput): RestoreDecision {
  const { snapshot: s, cluster } = i;
  const cur = i.current;
  // a running restore is replaced only on purpose (one stuck on a host that never came back)
  if (cur && isActive(cur) && !i.force)
    return refuse(
      `a restore of cluster ${cluster} is already running (${cur.id}, from snapshot ${cur.snapshotId}, ${cur.phase}); follow it with \`drover etcd restore status\`, or pass --force to replace it with this one`,
    );
  if (s.cluster !== cluster)
    return refuse(
      `etcd snapshot ${s.id} belongs to cluster ${s.cluster}, not ${cluster}; restoring another cluster's data would hand this cluster its objects and Secrets`,
    );
  if (i.damaged) return { ok: false, code: 'DROVER_ERR_SNAPSHOT_DAMAGED', reason: i.damaged };
  const members = [...i.members].sort((a, b) => a.assignment.ordinal - b.assignment.ordinal);
  if (members.length === 0)
    return refuse(`cluster ${cluster} has no etcd members placed: nothing to restore onto`);
  const answered = [...new Set(members.map((m) => m.clusterId).filter((x): x is string => !!x))];
  const lineage = new Set(lineageOf(cur));
  if (answered.length > 0 && !answered.includes(s.etcdClusterId) && !lineage.has(s.etcdClusterId))
    return refuse(
      `etcd snapshot ${s.id} was taken from etcd cluster ${s.etcdClusterId}, but the surviving members run etcd cluster ${answered.join(', ')}, which was never restored from it: it is another etcd cluster's snapshot`,
    );
  const healthy = members.filter((m) => m.healthy && m.state !== 'Unreachable').length;
  const need = quorumOf(members.length);
  if (healthy >= need && !i.force)
    return refuse(
      `etcd of cluster ${cluster} has quorum (${healthy} of ${members.length} members healthy, ${need} needed): a restore would throw away every write since revision ${s.revision}. Replace failed members instead (\`drover repair etcd --member NAME\`), or pass --force to restore anyway`,
    );
  const live = members.filter((m) => m.node && m.state === 'Ready');
  const target = live.find((m) => m.running) ?? live[0];
  if (!target)
    return refuse(
      `no etcd member of cluster ${cluster} has a Ready node to restore onto (${members.map((m) => `${m.assignment.instanceId} on ${m.assignment.nodeId}: ${m.state ?? 'unknown'}`).join(', ')}); bring one host back first`,
    );
  const parked = members.filter((m) => m !== target);
  const name = target.assignment.instanceId;
  const steps = [
    `check etcd snapshot ${s.id}: cluster ${s.cluster}, etcd cluster ${s.etcdClusterId}, revision ${s.revision}, ${s.size} bytes, SHA-256 ${s.sha256.slice(0, 16)}…`,
    `stop every other etcd member of ${cluster} (${parked.map((m) => m.assignment.instanceId).join(', ') || 'none'}); they get new epochs and fresh data dirs, the old ones stay on disk; the API servers point at ${name} alone meanwhile`,
    `once they are stopped (or their nodes are down), stop ${name} too: it restarts at a new epoch on a fresh data dir`,
    `restore the snapshot onto ${name} on node ${target.assignment.nodeId} as a new single-member cluster (etcdutl snapshot restore, revision bumped; etcdctl on etcd 3.4)`,
    'point the API servers at the restored member',
    ...parked.map(
      (m) =>
        `rejoin ${m.assignment.instanceId} (node ${m.assignment.nodeId}) with member add through the cluster so far, once it is healthy and its node is Ready`,
    ),
  ];
  return {
    ok: true,
    target,
    parked,
    healthy,
    steps,
    ...(answered.length === 1 ? { clusterIdBefore: answered[0] } : {}),
  };
}

/** The single-member `--initial-cluster` of the target: itself alone. */
export function targetInitialCluster(target: RestoreMember, tls: boolean): string {
  return etcdInitialCluster([{ assignment: target.assignment, node: target.node! }], tls);
}

type Extras = Assignment & EtcdAssignmentExtras;

/**
 * The cluster's assignments as the restore wants them, for the cluster reconcile to place and
 * write (level-triggered: applying it twice changes nothing). The target gets its new epoch, the
 * seed and its single-member list; a parked member its new epoch and `parked`; a released one
 * `existing` with the list it joins with. Outside an active restore, or for other roles, nothing.
 */
export function restoreOverlay(current: readonly Assignment[], r: RestoreRecord | undefined): Assignment[] {
  if (!r || !isActive(r)) return [...current];
  const parkedEpoch = new Map(r.parked.map((p) => [p.instanceId, p.epoch]));
  const released = new Map(r.released.map((x) => [x.instanceId, x.initialCluster]));
  return current.map((a) => {
    if (a.role !== 'etcd') return a;
    const x = a as Extras;
    if (a.instanceId === r.target.instanceId) {
      if (r.phase === 'stopping' || a.epoch >= r.target.epoch || a.nodeId !== r.target.nodeId) return a;
      const { previousNodeId: _p, parked: _k, ...rest } = x;
      return {
        ...rest,
        epoch: r.target.epoch,
        since: r.startedAt,
        existing: false,
        initialCluster: r.target.initialCluster,
        seed: { snapshotId: r.snapshotId, sha256: r.sha256, size: r.size },
      } as Assignment;
    }
    const epoch = parkedEpoch.get(a.instanceId);
    if (epoch === undefined) return a;
    const list = released.get(a.instanceId);
    if (list !== undefined) {
      if (!x.parked) return a;
      const { parked: _k, ...rest } = x;
      return { ...rest, existing: true, initialCluster: list } as Assignment;
    }
    if (a.epoch >= epoch && x.parked) return a;
    const { previousNodeId: _p, initialCluster: _i, seed: _s, ...rest } = x;
    return {
      ...rest,
      epoch: Math.max(a.epoch, epoch),
      since: a.epoch >= epoch ? a.since : r.startedAt,
      existing: true,
      parked: true,
    } as Assignment;
  });
}
