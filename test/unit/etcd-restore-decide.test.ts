import { describe, expect, it } from 'vitest';
import type { EtcdAssignmentExtras } from '../../coordinator/catalog/types.js';
import {
  decideRestore,
  type RestoreMember,
  type RestoreRecord,
  restoreOverlay,
} from '../../coordinator/etcd/restore-decide.js';
import type { SnapshotRecord } from '../../coordinator/etcd/snapshot-book.js';
import type { Assignment, NodeRecord } from '../../coordinator/model.js';

/** `drover etcd restore`, decided purely: every refusal, the target's choice, and the overlay. */

const snap = (over: Partial<SnapshotRecord> = {}): SnapshotRecord => ({
  id: 'prod-20261204T060000Z-abcdef',
  cluster: 'prod',
  etcdClusterId: '111',
  memberId: '9',
  endpoint: 'https://10.0.0.1:2379',
  revision: 420,
  etcdVersion: '3.6.16',
  size: 4096,
  sha256: 'a'.repeat(64),
  takenAt: '2026-12-04T06:00:00.000Z',
  trigger: 'schedule',
  ...over,
});
const assignment = (i: number, epoch = 1): Assignment => ({
  instanceId: `etcd#${i}`,
  role: 'etcd',
  ordinal: i,
  nodeId: `n${i}`,
  epoch,
  cluster: 'prod',
  since: '2026-12-01T00:00:00.000Z',
});
const node = (i: number) => ({ id: `n${i}`, address: `10.0.0.${i + 1}` }) as NodeRecord;
const member = (i: number, o: Partial<RestoreMember> = {}): RestoreMember => ({
  assignment: assignment(i),
  node: node(i),
  state: 'Ready',
  healthy: false,
  running: true,
  ...o,
});
/** two of three gone: the survivor runs but has no leader (etcd's /health is false) */
const lost = (clusterId = '111') => [
  member(0, { clusterId }),
  member(1, { state: 'Unreachable', running: false }),
  member(2, { state: 'Unreachable', running: false }),
];
const decide = (o: Partial<Parameters<typeof decideRestore>[0]> = {}) =>
  decideRestore({ cluster: 'prod', snapshot: snap(), members: lost(), force: false, tls: true, ...o });

describe('decideRestore', () => {
  it('restores onto the survivor and parks the others when quorum is lost', () => {
    const d = decide();
    expect(d.ok).toBe(true);
    if (!d.ok) return;
    expect(d.target.assignment.instanceId).toBe('etcd#0');
    expect(d.parked.map((m) => m.assignment.instanceId)).toEqual(['etcd#1', 'etcd#2']);
    expect(d.clusterIdBefore).toBe('111');
    expect(d.steps.join('\n')).toMatch(/restore the snapshot onto etcd#0 on node n0/);
    expect(d.steps.filter((s) => s.startsWith('rejoin'))).toHaveLength(2);
  });

  it('refuses while quorum holds, unless forced', () => {
    const healthy = [
      member(0, { healthy: true }),
      member(1, { healthy: true }),
      member(2, { state: 'Unreachable' }),
    ];
    const d = decide({ members: healthy });
    expect(d).toMatchObject({ ok: false, code: 'DROVER_ERR_RESTORE_REFUSED' });
    expect(!d.ok && d.reason).toMatch(
      /has quorum \(2 of 3 members healthy, 2 needed\).*revision 420.*--force/,
    );
    expect(decide({ members: healthy, force: true }).ok).toBe(true);
  });

  it("refuses another cluster's snapshot: its Drover cluster, or an etcd cluster id this one never ran", () => {
    const other = decide({ snapshot: snap({ cluster: 'staging' }) });
    expect(!other.ok && other.reason).toMatch(/belongs to cluster staging, not prod/);
    const foreign = decide({ snapshot: snap({ etcdClusterId: '999' }) });
    expect(foreign).toMatchObject({ ok: false, code: 'DROVER_ERR_RESTORE_REFUSED' });
    expect(!foreign.ok && foreign.reason).toMatch(/etcd cluster 999.*run etcd cluster 111/);
    // after an earlier restore the cluster runs a new id; snapshots from before it are still its own
    const earlier = {
      lineage: [],
      snapshotClusterId: '999',
      clusterIdBefore: '999',
      phase: 'complete',
    } as unknown as RestoreRecord;
    expect(decide({ snapshot: snap({ etcdClusterId: '999' }), current: earlier }).ok).toBe(true);
    // no survivor answered: the id cannot be compared (the Drover cluster still is)
    const silent = lost().map((m) => ({ ...m, clusterId: undefined }));
    expect(decide({ snapshot: snap({ etcdClusterId: '999' }), members: silent }).ok).toBe(true);
  });

  it('refuses a damaged snapshot, a second restore, and a cluster with no Ready node', () => {
    expect(decide({ damaged: 'sha256 mismatch' })).toMatchObject({
      ok: false,
      code: 'DROVER_ERR_SNAPSHOT_DAMAGED',
      reason: 'sha256 mismatch',
    });
    const running = {
      id: 'r1',
      snapshotId: 's',
      phase: 'rejoining',
      lineage: [],
    } as unknown as RestoreRecord;
    expect(
      !decide({ current: running }).ok && (decide({ current: running }) as { reason: string }).reason,
    ).toMatch(/already running \(r1/);
    // forced, it replaces the running one (stuck on a host that never came back)
    expect(decide({ current: running, force: true }).ok).toBe(true);
    const dark = lost().map((m) => ({ ...m, state: 'Unreachable' as const }));
    expect((decide({ members: dark }) as { reason: string }).reason).toMatch(
      /no etcd member .* has a Ready node/,
    );
    expect((decide({ members: [] }) as { reason: string }).reason).toMatch(/no etcd members placed/);
  });

  it('prefers a member whose etcd still runs over a Ready node without one', () => {
    const m = [
      member(0, { running: false }),
      member(1, { running: true }),
      member(2, { state: 'Unreachable', running: false }),
    ];
    const d = decide({ members: m });
    expect(d.ok && d.target.assignment.instanceId).toBe('etcd#1');
  });
});

describe('restoreOverlay', () => {
  const rec = (over: Partial<RestoreRecord> = {}): RestoreRecord => ({
    id: 'r1',
    cluster: 'prod',
    snapshotId: 'prod-s1',
    sha256: 'b'.repeat(64),
    size: 10,
    revision: 5,
    snapshotClusterId: '111',
    target: { instanceId: 'etcd#0', nodeId: 'n0', epoch: 2, initialCluster: 'etcd-0=https://10.0.0.1:2380' },
    parked: [
      { instanceId: 'etcd#1', epoch: 2 },
      { instanceId: 'etcd#2', epoch: 2 },
    ],
    released: [],
    rejoined: [],
    phase: 'seeding',
    forced: false,
    startedAt: '2026-12-04T07:00:00.000Z',
    lineage: [],
    ...over,
  });
  const current = [0, 1, 2].map((i) => assignment(i));
  const x = (a: Assignment) => a as Assignment & EtcdAssignmentExtras;

  it('gives the target its new epoch, seed and single-member list; parks the others at new epochs', () => {
    const out = restoreOverlay(current, rec());
    expect(x(out[0]!)).toMatchObject({
      epoch: 2,
      existing: false,
      initialCluster: 'etcd-0=https://10.0.0.1:2380',
      seed: { snapshotId: 'prod-s1', sha256: 'b'.repeat(64), size: 10 },
    });
    for (const a of out.slice(1)) expect(x(a)).toMatchObject({ epoch: 2, parked: true, existing: true });
    // level-triggered: applied again, nothing changes
    expect(restoreOverlay(out, rec())).toEqual(out);
    // other roles and ended restores are left alone
    const api = { ...assignment(0), role: 'kube-apiserver', instanceId: 'kube-apiserver#0' };
    expect(restoreOverlay([api], rec())).toEqual([api]);
    expect(restoreOverlay(current, rec({ phase: 'complete' }))).toEqual(current);
  });

  it('while the others stop, the target keeps its old epoch (the API servers point at it alone)', () => {
    const out = restoreOverlay(current, rec({ phase: 'stopping' }));
    expect(out[0]).toEqual(current[0]);
    for (const a of out.slice(1)) expect(x(a)).toMatchObject({ epoch: 2, parked: true });
  });

  it('lets a released member in with the list it joins with, and keeps a parked one parked when it moved', () => {
    const parked = restoreOverlay(current, rec());
    const released = restoreOverlay(
      parked,
      rec({
        phase: 'rejoining',
        released: [
          { instanceId: 'etcd#1', initialCluster: 'etcd-0=a,etcd-1=b', at: '2026-12-04T07:01:00.000Z' },
        ],
      }),
    );
    expect(x(released[1]!)).toMatchObject({ epoch: 2, existing: true, initialCluster: 'etcd-0=a,etcd-1=b' });
    expect(x(released[1]!).parked).toBeUndefined();
    expect(x(released[2]!).parked).toBe(true);
    // a parked member placement moved (epoch 3, no flags) is parked again, at its own epoch
    const moved = { ...assignment(2, 3), nodeId: 'n9', previousNodeId: 'n2' };
    const again = restoreOverlay([parked[0]!, parked[1]!, moved], rec());
    expect(x(again[2]!)).toMatchObject({ epoch: 3, nodeId: 'n9', parked: true, existing: true });
    expect(again[2]!.previousNodeId).toBeUndefined();
  });
});

describe('repair during a restore', () => {
  it('moves a parked member off a dead host freely, and leaves parked members out of the quorum count', async () => {
    const { etcdChangeRefusal } = await import('../../coordinator/repair/policy.js');
    const parked = (i: number) => ({ ...assignment(i, 2), parked: true, existing: true }) as Assignment;
    const target = assignment(0, 2);
    const current = [target, parked(1), parked(2)];
    // two dead members of three: a replacement of a real member is refused...
    expect(
      etcdChangeRefusal([assignment(0), assignment(1), assignment(2)], assignment(1), (x) => x.ordinal === 0),
    ).toMatch(/healthy/);
    // ...but a parked one is no member: it may move, whatever the others' health
    expect(etcdChangeRefusal(current, parked(1), () => false)).toBeUndefined();
    // the restored member is the whole cluster: replacing it while it is down is refused
    expect(etcdChangeRefusal(current, target, () => false)).toMatch(/0 of 1 etcd members are healthy/);
  });
});
