/**
 * What the snapshot book reads of the cluster state, derived purely: the clusters that run etcd
 * with their schedule (the topology's `cluster.etcdSnapshots`, defaults filled in), and a
 * cluster's member client URLs with the healthy ones first (members on Unreachable nodes left
 * out). Wired at the composition root (coordinator/daemon.ts).
 */
import { ETCD_CLIENT_PORT } from '../catalog/roles/etcd.js';
import { isParked } from '../catalog/types.js';
import { type Assignment, isHealthy, type NodeRecord } from '../model.js';
import type { Topology } from '../topology/index.js';
import { SNAPSHOT_DEFAULTS, type SnapshotSchedule } from './snapshot-book.js';
import { etcdMemberUrl } from './transport.js';

export function snapshotSchedule(t: Topology): SnapshotSchedule {
  const s = t.cluster.etcdSnapshots ?? {};
  return {
    every: s.every ?? SNAPSHOT_DEFAULTS.every,
    keep: s.keep ?? SNAPSHOT_DEFAULTS.keep,
    enabled: s.enabled ?? true,
  };
}

/** Clusters whose topology places etcd (replicas above 0). */
export function etcdClusters(
  topologies: readonly Topology[],
): Array<{ cluster: string; schedule: SnapshotSchedule }> {
  return topologies
    .filter((t) => (t.roles.etcd?.replicas ?? 0) > 0)
    .map((t) => ({ cluster: t.cluster.name, schedule: snapshotSchedule(t) }));
}

export interface MemberView {
  assignment: Assignment;
  node: NodeRecord | undefined;
  /** the node's liveness state, and whether its last status reports the instance healthy */
  state: 'Ready' | 'Suspect' | 'Unreachable' | undefined;
  healthy: boolean;
}

/** The etcd members' client URLs to try, healthy first; none on an Unreachable node. */
export function memberEndpoints(members: readonly MemberView[], scheme: 'http' | 'https'): string[] {
  const url = (n: NodeRecord) => etcdMemberUrl(scheme, n.address, ETCD_CLIENT_PORT);
  const live = members.filter((m) => m.node && m.state !== 'Unreachable');
  return [...live.filter((m) => m.healthy), ...live.filter((m) => !m.healthy)].map((m) => url(m.node!));
}

/** MemberView for each etcd assignment, from the read model's lookups. */
export function memberViews(
  assignments: readonly Assignment[],
  node: (id: string) => NodeRecord | undefined,
  liveness: (id: string) =>
    | {
        state: MemberView['state'];
        status?: { instances: Array<{ id: string; phase: string; health: string }> };
      }
    | undefined,
): MemberView[] {
  return assignments
    .filter((a) => a.role === 'etcd' && !isParked(a))
    .map((a) => {
      const l = liveness(a.nodeId);
      const i = l?.status?.instances.find((x) => x.id === a.instanceId);
      return {
        assignment: a,
        node: node(a.nodeId),
        state: l?.state,
        healthy: !!i && isHealthy(i),
      };
    });
}
