import { describe, expect, it } from 'vitest';
import {
  type DrainBudgetInput,
  drainBudget,
  drainProgress,
  healthyInstances,
} from '../../coordinator/drain.js';
import type { Assignment } from '../../coordinator/model.js';
import type { NodeState } from '../../protocol/index.js';

/** `role#ordinal@node` (`!` suffix: not healthy; `<prev` suffix: moved from prev) */
function parse(spec: string): { a: Assignment; healthy: boolean } {
  const m = /^([a-z-]+)#(\d+)@([\w-]+)(?:<([\w-]+))?(!)?$/.exec(spec);
  if (!m) throw new Error(`bad spec ${spec}`);
  return {
    a: {
      instanceId: `${m[1]}#${m[2]}`,
      role: m[1]!,
      ordinal: Number(m[2]),
      nodeId: m[3]!,
      epoch: m[4] ? 2 : 1,
      cluster: 'c',
      since: 't',
      ...(m[4] ? { previousNodeId: m[4] } : {}),
    },
    healthy: m[5] === undefined,
  };
}

function input(specs: string[], draining: string[], everywhere: string[] = []): DrainBudgetInput {
  const parsed = specs.map(parse);
  const nodes = new Set(parsed.map((p) => p.a.nodeId));
  return {
    assignments: parsed.map((p) => p.a),
    healthy: new Set(parsed.filter((p) => p.healthy).map((p) => p.a.instanceId)),
    nodeStates: new Map<string, NodeState>(
      [...nodes].map((n) => [n, draining.includes(n) ? 'Draining' : 'Ready']),
    ),
    everywhere: new Set(everywhere),
  };
}

const CP = ['kube-scheduler#0@cp-1', 'kube-scheduler#1@cp-2', 'kube-scheduler#2@cp-3'];

describe('drainBudget: which instances may leave a draining node now (pure, table-driven)', () => {
  it.each<[string, string[], string[], string[], Array<[string, boolean]>, string[]?]>([
    ['all healthy: one instance of the role leaves', CP, ['cp-1'], ['kube-scheduler#0'], []],
    [
      'a replacement still starting elsewhere: the next waits (one at a time)',
      ['kube-scheduler#0@cp-4<cp-1!', 'kube-scheduler#1@cp-1', 'kube-scheduler#2@cp-3'],
      ['cp-1'],
      [],
      [['kube-scheduler#1', false]],
    ],
    [
      'the replacement healthy: the next may leave',
      ['kube-scheduler#0@cp-4<cp-1', 'kube-scheduler#1@cp-1', 'kube-scheduler#2@cp-3'],
      ['cp-1'],
      ['kube-scheduler#1'],
      [],
    ],
    [
      'two instances of a role on the draining node: only the first leaves',
      ['web#0@n1', 'web#1@n1', 'web#2@n2'],
      ['n1'],
      ['web#0'],
      [['web#1', false]],
    ],
    [
      'two nodes draining at once: still one instance of the role at a time',
      CP,
      ['cp-1', 'cp-2'],
      ['kube-scheduler#0'],
      [['kube-scheduler#1', false]],
    ],
    [
      'another instance of the role already down elsewhere: a healthy one waits',
      ['kube-scheduler#0@cp-1', 'kube-scheduler#1@cp-2!', 'kube-scheduler#2@cp-3'],
      ['cp-1'],
      [],
      [['kube-scheduler#0', false]],
    ],
    [
      'an instance that is not healthy anyway leaves at once (it serves nothing)',
      ['kube-scheduler#0@cp-1!', 'kube-scheduler#1@cp-2!', 'kube-scheduler#2@cp-3'],
      ['cp-1'],
      ['kube-scheduler#0'],
      [],
    ],
    [
      'the last healthy instance (replicas 1) stays: blocked',
      ['load-balancer#0@lb'],
      ['lb'],
      [],
      [['load-balancer#0', true]],
    ],
    [
      'roles are independent: each loses one',
      [...CP, 'kube-apiserver#0@cp-1', 'kube-apiserver#1@cp-2', 'kube-apiserver#2@cp-3'],
      ['cp-1'],
      ['kube-apiserver#0', 'kube-scheduler#0'],
      [],
    ],
    [
      'everywhere roles have no replacement: they just go',
      ['kubelet#0@w1', 'kubelet#1@w2!'],
      ['w1'],
      ['kubelet#0'],
      [],
      ['kubelet'],
    ],
    [
      'etcd, 3 healthy members: one may be replaced',
      ['etcd#0@cp-1', 'etcd#1@cp-2', 'etcd#2@cp-3'],
      ['cp-1'],
      ['etcd#0'],
      [],
    ],
    [
      'etcd: another member not healthy (a change in flight): wait, quorum first',
      ['etcd#0@cp-1', 'etcd#1@cp-4<cp-2!', 'etcd#2@cp-3'],
      ['cp-1'],
      [],
      [['etcd#0', false]],
    ],
    [
      'etcd: two members on draining nodes: one member change at a time',
      ['etcd#0@cp-1', 'etcd#1@cp-2', 'etcd#2@cp-3'],
      ['cp-1', 'cp-2'],
      ['etcd#0'],
      [['etcd#1', false]],
    ],
    [
      'etcd with 1 member: replacing it would lose quorum: blocked',
      ['etcd#0@lb'],
      ['lb'],
      [],
      [['etcd#0', true]],
    ],
    ['nothing draining: nothing leaves', CP, [], [], []],
  ])('%s', (_what, specs, draining, leave, wait, everywhere) => {
    const d = drainBudget(input(specs, draining, everywhere));
    expect(d.leave.sort()).toEqual(leave.sort());
    expect(d.wait.map((w) => [w.instanceId, w.blocked])).toEqual(wait);
    for (const w of d.wait) expect(w.reason).toMatch(/\S{3,}/);
  });

  it('never drops a replicated role below replicas-1 healthy, whatever the health (property over all 3-instance health mixes)', () => {
    for (let mask = 0; mask < 8; mask++)
      for (const draining of [['cp-1'], ['cp-1', 'cp-2'], ['cp-1', 'cp-2', 'cp-3']]) {
        const specs = CP.map((s, i) => (mask & (1 << i) ? `${s}!` : s));
        const inp = input(specs, draining);
        const d = drainBudget(inp);
        const healthyAfter = [...inp.healthy].filter((id) => !d.leave.includes(id)).length;
        expect(healthyAfter).toBeGreaterThanOrEqual(Math.min(inp.healthy.size, 3 - 1));
      }
  });

  it('an instance restarting under the rollout gate spends the budget: no move beside it (the race behind 1/3 API servers)', () => {
    // all three report healthy, but kube-scheduler#2 was just pushed a restart (new etcd member list)
    const inp = { ...input(CP, ['cp-1']), restarting: new Set(['kube-scheduler#2']) };
    const d = drainBudget(inp);
    expect(d.leave).toEqual([]);
    expect(d.wait.map((w) => [w.instanceId, w.blocked])).toEqual([['kube-scheduler#0', false]]);
    expect(d.wait[0]!.reason).toMatch(/kube-scheduler#2 on cp-3 to be healthy/);
    // the restart settled: the move goes ahead
    expect(drainBudget({ ...inp, restarting: new Set() }).leave).toEqual(['kube-scheduler#0']);
  });

  it('reasons name the instance to wait for', () => {
    const d = drainBudget(
      input(['kube-scheduler#0@cp-4<cp-1!', 'kube-scheduler#1@cp-1', 'kube-scheduler#2@cp-3'], ['cp-1']),
    );
    expect(d.wait[0]!.reason).toMatch(
      /waits for kube-scheduler#0 on cp-4 to be healthy: one kube-scheduler at a time \(2\/3 healthy\)/,
    );
  });
});

describe('drainProgress (pure)', () => {
  it('done only when nothing is left, the agent stopped everything and every replacement is healthy', () => {
    const specs = ['web#0@n3<n1!', 'web#1@n2'];
    const inp = input(specs, []);
    const base = {
      nodeId: 'n1',
      state: 'Draining' as const,
      assignments: inp.assignments,
      healthy: inp.healthy,
      decision: { leave: [], wait: [] },
      unplaced: [],
      agentStopped: true,
    };
    let p = drainProgress(base);
    expect(p).toMatchObject({ done: false, blocked: false });
    expect(p.items).toEqual([
      expect.objectContaining({ instanceId: 'web#0', state: 'starting', nodeId: 'n3' }),
    ]);
    p = drainProgress({ ...base, healthy: new Set(['web#0', 'web#1']) });
    expect(p.done).toBe(true);
    expect(drainProgress({ ...base, healthy: new Set(['web#0', 'web#1']), agentStopped: false }).done).toBe(
      false,
    );
    expect(drainProgress({ ...base, healthy: new Set(['web#0', 'web#1']), state: 'Ready' }).done).toBe(false);
  });

  it('an instance that may leave but fits nowhere else is blocked, with placement’s reason', () => {
    const inp = input(['web#0@n1', 'web#1@n2'], ['n1']);
    const decision = drainBudget(inp);
    const p = drainProgress({
      nodeId: 'n1',
      state: 'Draining',
      assignments: inp.assignments,
      healthy: inp.healthy,
      decision,
      unplaced: [
        {
          instanceId: 'web#0',
          role: 'web',
          reason: 'web#0: cannot move off n1 (web#0 is being evicted): no eligible node',
        },
      ],
      agentStopped: false,
    });
    expect(p.blocked).toBe(true);
    expect(p.items[0]).toMatchObject({
      instanceId: 'web#0',
      state: 'blocked',
      reason: expect.stringMatching(/no eligible node/),
    });
  });
});

describe('healthyInstances', () => {
  it('counts an instance healthy only at its epoch, on a live node', () => {
    const a = input(['web#0@n1', 'web#1@n2', 'web#2@n3<n9'], []).assignments;
    const states = new Map<string, NodeState>([
      ['n1', 'Ready'],
      ['n2', 'Suspect'],
      ['n3', 'Draining'],
    ]);
    const st = (epoch: number) => [{ epoch, phase: 'Healthy', health: 'healthy' }];
    const h = healthyInstances(a, states, (n) =>
      n === 'n1'
        ? [{ id: 'web#0', ...st(1)[0]! }]
        : n === 'n2'
          ? [{ id: 'web#1', ...st(1)[0]! }]
          : [{ id: 'web#2', ...st(1)[0]! }],
    );
    expect([...h]).toEqual(['web#0']); // n2 is Suspect; web#2 reports the old epoch
  });
});
