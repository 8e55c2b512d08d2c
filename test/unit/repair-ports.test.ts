// The repair policy (coordinator/repair.ts) on fakes of its narrow ports (RepairPorts: reads of the
// cluster state, liveness, emit, enqueue, runTask): what it does goes through them and nothing
// else, and what only previews — a topology preview, `drover repair etcd --member NAME --dry-run` —
// goes through none of them.
import { describe, expect, it } from 'vitest';
import type { EventInput } from '../../coordinator/events.js';
import type { Assignment, NodeRecord } from '../../coordinator/model.js';
import type { LivenessView } from '../../coordinator/repair/policy.js';
import { DEFAULT_REPAIR_OPTIONS, RepairPolicy, type RepairPorts } from '../../coordinator/repair.js';
import type { Topology } from '../../coordinator/topology/index.js';
import { ManualClock } from '../../lib/clock.js';
import { silentLogger } from '../../lib/logger.js';
import type { Facts, InstancePhase, NodeState, NodeStatus } from '../../protocol/index.js';

const node = (id: string, state: NodeState = 'Ready'): NodeRecord => ({
  id,
  hostname: id,
  address: `10.0.0.${id.slice(1)}`,
  labels: {},
  state,
  facts: {} as Facts,
  fingerprint: { machineId: id, macs: [] },
  approved: true,
  cordoned: false,
  createdAt: 't',
  updatedAt: 't',
});

const assign = (role: string, ordinal: number, nodeId: string, cluster = 'c'): Assignment => ({
  instanceId: `${role}#${ordinal}`,
  role,
  ordinal,
  nodeId,
  epoch: 1,
  cluster,
  since: 't',
});

const status = (nodeId: string, instances: Array<[string, string, InstancePhase]>): NodeStatus =>
  ({
    nodeId,
    instances: instances.map(([id, role, phase]) => ({
      id,
      role,
      epoch: 1,
      checksum: 'x',
      phase,
      health: phase === 'Healthy' ? 'healthy' : 'unhealthy',
      restarts: 0,
      simulated: false,
    })),
  }) as unknown as NodeStatus;

/** A cluster `c` on fakes: nodes by state, assignments, every instance reported with its phase. */
function fakes(o: {
  nodes: Record<string, NodeState>;
  assignments: Assignment[];
  phase?: Record<string, InstancePhase>;
}) {
  const clock = new ManualClock(1_000_000);
  const nodes = Object.entries(o.nodes).map(([id, s]) => node(id, s));
  const emitted: EventInput[] = [];
  const queued: string[] = [];
  const tasks: unknown[] = [];
  const topology = {
    metadata: { name: 'c' },
    roles: Object.fromEntries(o.assignments.map((a) => [a.role, { replicas: 1 }])),
  } as unknown as Topology;
  const liveness = (id: string): LivenessView | undefined => {
    const n = nodes.find((x) => x.id === id);
    if (!n) return undefined;
    const mine = o.assignments.filter((a) => a.nodeId === id);
    return {
      since: clock.now() - 100_000,
      status: status(
        id,
        mine.map((a) => [a.instanceId, a.role, o.phase?.[a.instanceId] ?? 'Healthy']),
      ),
    };
  };
  const ports: RepairPorts = {
    state: {
      clusterNames: () => ['c'],
      topology: (c) => (c === 'c' ? topology : undefined),
      placementNodes: (c) => (c === 'c' ? nodes : []),
      currentAssignments: (c) => o.assignments.filter((a) => a.cluster === c),
      allAssignments: () => o.assignments,
    },
    liveness,
    emit: (e) => void emitted.push(e),
    enqueue: (k) => void queued.push(k),
    runTask: async (t) => void tasks.push(t),
    clock,
    log: silentLogger,
  };
  const policy = new RepairPolicy(ports, { ...DEFAULT_REPAIR_OPTIONS });
  /** everything the policy did through its ports, and what it remembers */
  const trace = () => ({
    emitted: emitted.map((e) => e.kind),
    queued: [...queued],
    tasks: [...tasks],
    immediate: [...policy.memoryView().immediate],
    trouble: JSON.stringify([...policy.memoryView().trouble]),
    rate: JSON.stringify([...policy.memoryView().recentMoves]),
  });
  return { policy, clock, emitted, queued, tasks, trace, assignments: o.assignments };
}

const ETCD3 = [assign('etcd', 0, 'n1'), assign('etcd', 1, 'n2'), assign('etcd', 2, 'n3')];

describe('the repair policy on its narrow ports', () => {
  it('`repair etcd --member` dry run: the verdict, and nothing through any port, nothing remembered', () => {
    const f = fakes({ nodes: { n1: 'Ready', n2: 'Ready', n3: 'Ready', n4: 'Ready' }, assignments: ETCD3 });
    const before = f.trace();
    for (const name of ['etcd-1', 'etcd#1', '1']) {
      expect(f.policy.repairEtcdMember(name, { dryRun: true })).toEqual({
        cluster: 'c',
        instanceId: 'etcd#1',
        nodeId: 'n2',
        verdict: { replace: true },
        dryRun: true,
      });
    }
    expect(f.trace()).toEqual(before);
    // ... so the next reconcile's decision is untouched by it: no eviction asked for
    expect(f.policy.decide('c', ETCD3).evictions.evictInstances.size).toBe(0);
  });

  it('`repair etcd --member` dry run while quorum would break: the refusal and why, nothing done', () => {
    const f = fakes({
      nodes: { n1: 'Unreachable', n2: 'Unreachable', n3: 'Ready', n4: 'Ready' },
      assignments: ETCD3,
    });
    const before = f.trace();
    const r = f.policy.repairEtcdMember('etcd-0', { dryRun: true });
    expect(r.verdict).toEqual({ replace: false, reason: expect.stringMatching(/quorum/) });
    expect(f.trace()).toEqual(before);
  });

  it('`repair etcd --member` carried out: the request remembered, announced and its cluster queued, through the ports; the reconcile then evicts it', () => {
    const f = fakes({ nodes: { n1: 'Ready', n2: 'Ready', n3: 'Ready', n4: 'Ready' }, assignments: ETCD3 });
    const r = f.policy.repairEtcdMember('etcd-2');
    expect(r).toMatchObject({
      instanceId: 'etcd#2',
      nodeId: 'n3',
      verdict: { replace: true },
      dryRun: false,
    });
    expect(f.trace()).toMatchObject({
      emitted: ['etcd.repair-requested'],
      queued: ['cluster:c'],
      tasks: [],
      immediate: ['etcd#2'],
    });
    expect([...f.policy.decide('c', ETCD3).evictions.evictInstances]).toEqual(['etcd#2']);
  });

  it('`repair etcd --member` of no such member: DROVER_ERR_INSTANCE_NOT_FOUND, dry run or not, and nothing done', () => {
    const f = fakes({ nodes: { n1: 'Ready' }, assignments: [assign('web', 0, 'n1')] });
    const before = f.trace();
    for (const dryRun of [true, false])
      expect(() => f.policy.repairEtcdMember('etcd-0', { dryRun })).toThrow(
        expect.objectContaining({ code: 'DROVER_ERR_INSTANCE_NOT_FOUND' }),
      );
    expect(f.trace()).toEqual(before);
  });

  it('a failing instance: the preview sends nothing; the reconcile sends the re-provision task through runTask and announces it', () => {
    const f = fakes({
      nodes: { n1: 'Ready', n2: 'Ready' },
      assignments: [assign('web', 0, 'n1'), assign('web', 1, 'n2')],
      phase: { 'web#0': 'CrashLoop' },
    });
    f.policy.observe(status('n1', [['web#0', 'web', 'CrashLoop']]));
    f.clock.advance(DEFAULT_REPAIR_OPTIONS.reprovisionAfterMs);
    const before = f.trace();
    f.policy.previewEvictions('c', f.assignments);
    expect(f.trace()).toEqual(before);
    f.policy.evictions('c', f.assignments);
    expect(f.tasks).toEqual([{ nodeId: 'n1', kind: 'reprovision', instanceId: 'web#0' }]);
    expect(f.trace().emitted).toEqual(['repair.reprovision']);
  });

  it("force: announced, and every cluster's reconcile queued, through the ports", () => {
    const f = fakes({
      nodes: { n1: 'Unreachable', n2: 'Unreachable' },
      assignments: [assign('web', 0, 'n1')],
    });
    expect(f.policy.stormActive('c')).toBe(true);
    f.policy.force(60_000);
    expect(f.trace()).toMatchObject({ emitted: ['repair.forced'], queued: ['cluster:c'] });
    expect(f.policy.stormActive('c')).toBe(false);
    f.clock.advance(60_000);
    expect(f.policy.stormActive('c')).toBe(true);
  });
});
