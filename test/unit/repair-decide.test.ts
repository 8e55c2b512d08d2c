// The repair ladder on the pure decision (coordinator/repair/decide.ts), table-driven: state,
// repair memory and now in; evictions and effects out. Each row also checks that the decision
// changed nothing it was given (the memory stays as it was).
import { describe, expect, it } from 'vitest';
import type { Assignment, NodeRecord } from '../../coordinator/model.js';
import { decideRepair, type RepairInput } from '../../coordinator/repair/decide.js';
import { applyRepairEffects, type RepairEffect } from '../../coordinator/repair/effects.js';
import { decideEtcdMemberRepair, findEtcdMember } from '../../coordinator/repair/etcd-member.js';
import { emptyRepairMemory, type RepairMemory } from '../../coordinator/repair/memory.js';
import { DEFAULT_REPAIR_OPTIONS, type LivenessView } from '../../coordinator/repair/policy.js';
import type { Topology } from '../../coordinator/topology/index.js';
import { silentLogger } from '../../lib/logger.js';
import type { Facts, InstancePhase, NodeState } from '../../protocol/index.js';

const NOW = 1_000_000;
const S = 1000;

interface Scenario {
  /** node id → state; default n1..n4 Ready */
  nodes?: Record<string, NodeState>;
  /** `role#ordinal@node`, optional `<prev` (moved from prev, epoch 2) */
  assignments?: string[];
  /** node id → since when it is in its state (default NOW - 100 s) */
  since?: Record<string, number>;
  /** instance id → phase reported (default Healthy) */
  phase?: Record<string, InstancePhase>;
  /** role → its topology `repair` block */
  repair?: Record<string, Record<string, unknown>>;
  memory?: (m: RepairMemory) => void;
}

interface Expected {
  evict?: string[];
  moveTo?: Record<string, string>;
  /** event kinds in order */
  events?: string[];
  /** roles whose rate budget was spent, in order */
  rate?: string[];
  /** re-provision tasks: instance ids */
  tasks?: string[];
  /** other effects, in the `type:detail` shorthand of `summary` below */
  marks?: string[];
  wake?: number;
  /** a substring of the first event's message */
  message?: string;
}

function parse(spec: string): Assignment {
  const m = /^([a-z-]+)#(\d+)@([\w-]+)(?:<([\w-]+))?$/.exec(spec);
  if (!m) throw new Error(`bad spec ${spec}`);
  return {
    instanceId: `${m[1]}#${m[2]}`,
    role: m[1]!,
    ordinal: Number(m[2]),
    nodeId: m[3]!,
    epoch: m[4] ? 2 : 1,
    cluster: 't',
    since: 't',
    ...(m[4] ? { previousNodeId: m[4] } : {}),
  };
}

function node(id: string, state: NodeState): NodeRecord {
  return {
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
  };
}

function build(s: Scenario, now = NOW): RepairInput & { memory: RepairMemory } {
  const states = s.nodes ?? { n1: 'Ready', n2: 'Ready', n3: 'Ready', n4: 'Ready' };
  const current = (s.assignments ?? ['web#0@n1', 'web#1@n2']).map(parse);
  const memory = emptyRepairMemory();
  s.memory?.(memory);
  const roles: Record<string, unknown> = {};
  for (const a of current)
    roles[a.role] = { replicas: 1, ...(s.repair?.[a.role] ? { repair: s.repair[a.role] } : {}) };
  const liveness = (id: string): LivenessView | undefined =>
    states[id] === undefined
      ? undefined
      : {
          since: s.since?.[id] ?? now - 100 * S,
          status: {
            instances: current
              .filter((a) => a.nodeId === id)
              .map((a) => {
                const phase = s.phase?.[a.instanceId] ?? 'Healthy';
                return {
                  id: a.instanceId,
                  role: a.role,
                  epoch: a.epoch,
                  checksum: 'c',
                  phase,
                  health: phase === 'Healthy' ? ('healthy' as const) : ('unhealthy' as const),
                  restarts: 0,
                  simulated: false,
                };
              }),
          },
        };
  return {
    cluster: 't',
    current,
    nodes: Object.entries(states).map(([id, st]) => node(id, st)),
    topology: { roles } as unknown as Topology,
    liveness,
    memory,
    now,
    options: DEFAULT_REPAIR_OPTIONS,
  };
}

function summary(effects: RepairEffect[]) {
  const out = { events: [] as string[], rate: [] as string[], tasks: [] as string[], marks: [] as string[] };
  for (const e of effects) {
    if (e.type === 'event') out.events.push(e.event.kind);
    else if (e.type === 'rate') out.rate.push(e.role);
    else if (e.type === 'reprovision') out.tasks.push(e.instanceId);
    else if (e.type === 'mark') out.marks.push(`${e.op}:${e.set}:${e.id}`);
    else if (e.type === 'trouble')
      out.marks.push(`trouble:${e.instanceId}:${e.clear ? 'clear' : 'reprovisioned'}`);
    else if (e.type === 'drain-wait')
      out.marks.push(`drain-wait:${e.instanceId}${e.message ? '' : ':clear'}`);
    else if (e.type === 'move-done') out.marks.push(`move-done:${e.instanceId}`);
    else if (e.type === 'storm') out.marks.push(`storm:${e.paused ? 'paused' : 'resumed'}`);
  }
  return out;
}

const snapshot = (m: RepairMemory) =>
  JSON.stringify(m, (_k, v) => (v instanceof Map ? [...v] : v instanceof Set ? [...v] : v));

const unreachable = (...ids: string[]) => {
  const nodes: Record<string, NodeState> = {
    n1: 'Ready',
    n2: 'Ready',
    n3: 'Ready',
    n4: 'Ready',
    n5: 'Ready',
  };
  for (const id of ids) nodes[id] = 'Unreachable';
  return nodes;
};
const ETCD3 = ['etcd#0@n1', 'etcd#1@n2', 'etcd#2@n3'];
const recent =
  (role: string, ...ago: number[]) =>
  (m: RepairMemory) =>
    m.recentMoves.set(
      role,
      ago.map((x) => NOW - x),
    );

const rows: Array<[string, Scenario, Expected]> = [
  // ---- node Unreachable: grace, then reassign
  [
    'Unreachable within reassignAfter: waits, wakes when the grace ends',
    { nodes: unreachable('n1'), since: { n1: NOW - 3 * S } },
    { evict: [], events: [], wake: 2 * S + 50 },
  ],
  [
    'Unreachable past reassignAfter: reassigned, announced, one rate spend, remembered as decided',
    { nodes: unreachable('n1'), since: { n1: NOW - 6 * S } },
    {
      evict: ['web#0'],
      events: ['repair.reassign'],
      rate: ['web'],
      marks: ['add:decided:web#0@1'],
      message: 'node n1 Unreachable for 6s (≥ 5s); reassigning',
    },
  ],
  [
    'decided before (placement found no node yet): evicted again, nothing announced or spent',
    { nodes: unreachable('n1'), since: { n1: NOW - 30 * S }, memory: (m) => m.decided.add('web#0@1') },
    { evict: ['web#0'], events: [], rate: [], marks: [] },
  ],
  [
    'the node came back: the old decision is forgotten',
    { memory: (m) => m.decided.add('web#0@1') },
    { evict: [], events: [], marks: ['delete:decided:web#0@1'] },
  ],
  [
    'repair.reassignAfter of the role overrides the default',
    { nodes: unreachable('n1'), since: { n1: NOW - 3 * S }, repair: { web: { reassignAfterMs: 2000 } } },
    { evict: ['web#0'], events: ['repair.reassign'], rate: ['web'] },
  ],
  [
    'repair.autoReassign: false holds it (announced once)',
    { nodes: unreachable('n1'), since: { n1: NOW - 60 * S }, repair: { web: { autoReassign: false } } },
    {
      evict: [],
      events: ['repair.held'],
      rate: [],
      marks: ['add:held:web#0'],
      message: 'automatic reassignment is off',
    },
  ],
  [
    'autoReassign: false, hold already announced: silent',
    {
      nodes: unreachable('n1'),
      since: { n1: NOW - 60 * S },
      repair: { web: { autoReassign: false } },
      memory: (m) => m.held.add('web#0'),
    },
    { evict: [], events: [], marks: [] },
  ],
  // ---- the rate limit
  [
    'rate limit per minute: 3 moves of the role in the last minute hold the fourth',
    { nodes: unreachable('n1'), since: { n1: NOW - 6 * S }, memory: recent('web', 10 * S, 20 * S, 30 * S) },
    {
      evict: [],
      events: ['repair.held'],
      rate: [],
      marks: ['add:held:web#0'],
      wake: 10 * S,
      message: 'rate-limited (3/min for web)',
    },
  ],
  [
    'moves older than a minute do not count against the per-minute limit',
    { nodes: unreachable('n1'), since: { n1: NOW - 6 * S }, memory: recent('web', 61 * S, 62 * S, 63 * S) },
    { evict: ['web#0'], rate: ['web'] },
  ],
  [
    'repair.maxReassignPerHour: one move half an hour ago uses up a budget of 1',
    {
      nodes: unreachable('n1'),
      since: { n1: NOW - 6 * S },
      repair: { web: { maxReassignPerHour: 1 } },
      memory: recent('web', 1800 * S),
    },
    {
      evict: [],
      events: ['repair.held'],
      rate: [],
      message: '1/hour for web, its repair.maxReassignPerHour',
    },
  ],
  [
    'the budget spent earlier in the same decision counts: of two due with one left, one goes',
    {
      nodes: unreachable('n1', 'n2'),
      since: { n1: NOW - 6 * S, n2: NOW - 6 * S },
      memory: recent('web', 10 * S, 20 * S),
    },
    { evict: ['web#0'], events: ['repair.reassign', 'repair.held'], rate: ['web'] },
  ],
  // ---- the storm guard
  [
    'storm: 2 of 4 Unreachable pauses every automatic move, announced',
    {
      nodes: { n1: 'Unreachable', n2: 'Unreachable', n3: 'Ready', n4: 'Ready' },
      since: { n1: NOW - 60 * S, n2: NOW - 60 * S },
    },
    { evict: [], events: ['repair.paused'], rate: [], marks: ['storm:paused'], wake: 5 * S },
  ],
  [
    'storm already announced: silent, still paused',
    {
      nodes: { n1: 'Unreachable', n2: 'Unreachable', n3: 'Ready', n4: 'Ready' },
      since: { n1: NOW - 60 * S, n2: NOW - 60 * S },
      memory: (m) => m.paused.set('t', true),
    },
    { evict: [], events: [], marks: [], wake: 5 * S },
  ],
  [
    'storm overridden (drover repair --force): resumed, both reassigned',
    {
      nodes: { n1: 'Unreachable', n2: 'Unreachable', n3: 'Ready', n4: 'Ready' },
      since: { n1: NOW - 60 * S, n2: NOW - 60 * S },
      memory: (m) => {
        m.paused.set('t', true);
        m.forceUntil = NOW + 60 * S;
      },
    },
    {
      evict: ['web#0', 'web#1'],
      events: ['repair.resumed', 'repair.reassign', 'repair.reassign'],
      rate: ['web', 'web'],
    },
  ],
  // ---- the instance ladder on a live node: re-provision, then reassign
  [
    'failing for less than reprovisionAfter: looks again later',
    { phase: { 'web#0': 'CrashLoop' }, memory: (m) => m.trouble.set('web#0', { since: NOW - 10 * S }) },
    { evict: [], events: [], tasks: [], wake: 5 * S },
  ],
  [
    'failing for reprovisionAfter: a re-provision task, announced and remembered',
    { phase: { 'web#0': 'CrashLoop' }, memory: (m) => m.trouble.set('web#0', { since: NOW - 30 * S }) },
    { evict: [], events: ['repair.reprovision'], tasks: ['web#0'], marks: ['trouble:web#0:reprovisioned'] },
  ],
  [
    'still failing instanceReassignAfter after the re-provision: reassigned elsewhere',
    {
      phase: { 'web#0': 'Failed' },
      memory: (m) => m.trouble.set('web#0', { since: NOW - 200 * S, reprovisionedAt: NOW - 120 * S }),
    },
    {
      evict: ['web#0'],
      events: ['repair.reassign'],
      rate: ['web'],
      marks: ['trouble:web#0:clear'],
      message: 'after a re-provision',
    },
  ],
  [
    'an etcd member is never moved for a failing process',
    {
      assignments: ETCD3,
      phase: { 'etcd#0': 'Failed' },
      memory: (m) => m.trouble.set('etcd#0', { since: NOW - 200 * S, reprovisionedAt: NOW - 120 * S }),
    },
    { evict: [], events: [], rate: [] },
  ],
  [
    'the instance ladder waits out a storm too',
    {
      nodes: { n1: 'Ready', n2: 'Ready', n3: 'Unreachable', n4: 'Unreachable' },
      phase: { 'web#0': 'CrashLoop' },
      memory: (m) => {
        m.paused.set('t', true);
        m.trouble.set('web#0', { since: NOW - 60 * S });
      },
    },
    { evict: [], events: [], tasks: [] },
  ],
  // ---- etcd gating
  [
    'etcd waits etcdReassignAfter (60 s), not reassignAfter',
    { assignments: ETCD3, nodes: unreachable('n1'), since: { n1: NOW - 30 * S } },
    { evict: [], events: [], wake: 30 * S + 50 },
  ],
  [
    'etcd past 60 s with 2 of 3 healthy: replaced',
    { assignments: ETCD3, nodes: unreachable('n1'), since: { n1: NOW - 61 * S } },
    { evict: ['etcd#0'], events: ['repair.reassign'], rate: ['etcd'] },
  ],
  [
    'etcd without quorum: refused (announced once), the rate budget untouched',
    {
      assignments: ETCD3,
      nodes: unreachable('n1'),
      since: { n1: NOW - 61 * S },
      phase: { 'etcd#1': 'Unhealthy' },
    },
    {
      evict: [],
      events: ['etcd.replace-refused'],
      rate: [],
      marks: ['add:refusedEtcd:etcd#0'],
      wake: 5 * S,
      message: 'quorum',
    },
  ],
  [
    'etcd refusal already announced: silent',
    {
      assignments: ETCD3,
      nodes: unreachable('n1'),
      since: { n1: NOW - 61 * S },
      phase: { 'etcd#1': 'Unhealthy' },
      memory: (m) => m.refusedEtcd.add('etcd#0'),
    },
    { evict: [], events: [], rate: [], marks: [] },
  ],
  [
    'etcd: one member change at a time (another member is still moving in)',
    {
      assignments: ['etcd#0@n1', 'etcd#1@n4<n2', 'etcd#2@n3'],
      nodes: unreachable('n1'),
      since: { n1: NOW - 61 * S },
      phase: { 'etcd#1': 'Starting' },
    },
    { evict: [], events: ['etcd.replace-refused'], rate: [], message: 'one change at a time' },
  ],
  [
    'etcd allowed again: an earlier refusal is forgotten',
    {
      assignments: ETCD3,
      nodes: unreachable('n1'),
      since: { n1: NOW - 61 * S },
      memory: (m) => m.refusedEtcd.add('etcd#0'),
    },
    {
      evict: ['etcd#0'],
      events: ['repair.reassign'],
      marks: ['delete:refusedEtcd:etcd#0', 'add:decided:etcd#0@1'],
    },
  ],
  // ---- operator commands
  [
    'operator reassign (drover repair NODE): now, without the grace, no rate spend; the request is used up',
    { nodes: unreachable('n1'), since: { n1: NOW - 1 * S }, memory: (m) => m.immediate.add('web#0') },
    {
      evict: ['web#0'],
      events: ['repair.reassign'],
      rate: [],
      marks: ['delete:immediate:web#0'],
      message: "on an operator's command",
    },
  ],
  [
    'operator reassign of an etcd member without quorum: refused, the request dropped',
    {
      assignments: ETCD3,
      phase: { 'etcd#1': 'Unhealthy' },
      memory: (m) => m.immediate.add('etcd#0'),
    },
    {
      evict: [],
      events: ['etcd.replace-refused'],
      marks: ['add:refusedEtcd:etcd#0', 'delete:immediate:etcd#0'],
    },
  ],
  [
    'operator move with another healthy instance: goes to the target',
    { memory: (m) => m.moveTo.set('web#0', { to: 'n3', force: false }) },
    { evict: [], moveTo: { 'web#0': 'n3' }, events: [] },
  ],
  [
    'operator move of the last healthy instance off a live node: held (announced), looked at again',
    { phase: { 'web#1': 'CrashLoop' }, memory: (m) => m.moveTo.set('web#0', { to: 'n3', force: false }) },
    {
      moveTo: {},
      events: ['repair.held'],
      marks: ['add:held:web#0'],
      wake: 2 * S,
      message: 'last healthy web',
    },
  ],
  [
    'operator move --force of the last healthy instance: goes',
    { phase: { 'web#1': 'CrashLoop' }, memory: (m) => m.moveTo.set('web#0', { to: 'n3', force: true }) },
    { moveTo: { 'web#0': 'n3' }, events: [] },
  ],
  [
    'operator move already done (it is on the target): forgotten',
    { memory: (m) => m.moveTo.set('web#0', { to: 'n1', force: false }) },
    { moveTo: {}, marks: ['move-done:web#0'] },
  ],
  [
    'operator move of an etcd member without quorum: refused and dropped',
    {
      assignments: ETCD3,
      phase: { 'etcd#1': 'Unhealthy' },
      memory: (m) => m.moveTo.set('etcd#0', { to: 'n4', force: true }),
    },
    { moveTo: {}, events: ['etcd.replace-refused'], marks: ['add:refusedEtcd:etcd#0', 'move-done:etcd#0'] },
  ],
  // ---- draining nodes: the disruption budget
  [
    'drain: one instance of a role leaves at a time; the other waits (announced)',
    {
      nodes: { n1: 'Draining', n2: 'Ready', n3: 'Ready' },
      assignments: ['web#0@n1', 'web#1@n1', 'web#2@n2'],
    },
    { evict: ['web#0'], events: ['repair.held'], rate: [], marks: ['drain-wait:web#1'], wake: 500 },
  ],
  [
    'drain: the wait already announced is not repeated; one that may leave now is forgotten',
    {
      nodes: { n1: 'Draining', n2: 'Ready', n3: 'Ready' },
      assignments: ['web#0@n1', 'web#1@n1', 'web#2@n2'],
      memory: (m) => {
        m.drainWaits.set('web#0', 'old');
        m.drainWaits.set('web#1', 'web#1 stays on draining node n1 for now: x');
      },
    },
    { evict: ['web#0'], marks: ['drain-wait:web#0:clear', 'drain-wait:web#1'] },
  ],
  [
    'drain of an etcd member goes by quorum too: it waits (announced), nothing spent',
    {
      assignments: ETCD3,
      nodes: { n1: 'Draining', n2: 'Ready', n3: 'Ready', n4: 'Ready' },
      phase: { 'etcd#2': 'Unhealthy' },
    },
    {
      evict: [],
      events: ['repair.held'],
      rate: [],
      marks: ['drain-wait:etcd#0'],
      message: 'etcd#0 stays on draining node n1',
    },
  ],
  [
    'drain of the last healthy instance: blocked, looked at again slowly',
    { nodes: { n1: 'Draining', n2: 'Ready' }, assignments: ['web#0@n1'] },
    { evict: [], events: ['repair.held'], wake: 5 * S },
  ],
];

describe('decideRepair: the repair ladder as a pure function', () => {
  it.each(rows)('%s', (_name, scenario, want) => {
    const input = build(scenario);
    const before = snapshot(input.memory);
    const { evictions, effects } = decideRepair(input);
    const got = summary(effects);
    if (want.evict) expect([...evictions.evictInstances].sort()).toEqual([...want.evict].sort());
    if (want.moveTo) expect(Object.fromEntries(evictions.moveTo)).toEqual(want.moveTo);
    if (want.events) expect(got.events).toEqual(want.events);
    if (want.rate) expect(got.rate).toEqual(want.rate);
    if (want.tasks) expect(got.tasks).toEqual(want.tasks);
    if (want.marks)
      expect(
        got.marks.filter(
          (m) => !m.startsWith('drain-wait') || want.marks!.some((w) => w.startsWith('drain-wait')),
        ),
      ).toEqual(want.marks);
    if (want.wake !== undefined) expect(evictions.wakeAfterMs).toBe(want.wake);
    if (want.message) {
      const first = effects.find((e) => e.type === 'event');
      expect(first?.type === 'event' ? first.event.message : '').toContain(want.message);
    }
    expect(evictions.evictNodes.size).toBe(0);
    // pure: the memory it was given is as it was
    expect(snapshot(input.memory)).toBe(before);
  });

  it('applying the effects makes the next decision quiet: each announcement and rate spend happens once', () => {
    const input = build({
      nodes: { n1: 'Unreachable', n2: 'Ready', n3: 'Ready', n4: 'Ready', n5: 'Ready' },
      since: { n1: NOW - 6 * S },
      repair: { web: { autoReassign: false } },
    });
    const emitted: string[] = [];
    const ports = {
      emit: (e: { kind: string }) => void emitted.push(e.kind),
      runTask: async () => ({}),
      enqueue: () => {},
      log: silentLogger,
    };
    const first = decideRepair(input);
    applyRepairEffects(first.effects, input.memory, ports);
    expect(emitted).toEqual(['repair.held']);
    const second = decideRepair({ ...input, now: NOW + 10 * S });
    expect(second.effects).toEqual([]);
  });

  it('a reassignment applied counts against the budget of the next decision', () => {
    const input = build({
      nodes: { n1: 'Unreachable', n2: 'Ready', n3: 'Ready', n4: 'Ready', n5: 'Ready' },
      since: { n1: NOW - 6 * S },
      repair: { web: { maxReassignPerHour: 1 } },
    });
    // a preview: the decision alone, nothing applied — the budget is still there afterwards
    expect(summary(decideRepair(input).effects).rate).toEqual(['web']);
    expect(summary(decideRepair(input).effects).rate).toEqual(['web']);
    expect(input.memory.recentMoves.size).toBe(0);
    // the reconcile applies it; a second instance due within the hour is then held
    const ports = { emit: () => {}, runTask: async () => ({}), enqueue: () => {}, log: silentLogger };
    applyRepairEffects(decideRepair(input).effects, input.memory, ports);
    expect(input.memory.recentMoves.get('web')).toEqual([NOW]);
    const later = { ...input, current: [parse('web#1@n1')], now: NOW + 120 * S };
    const next = decideRepair(later);
    expect(next.evictions.evictInstances.size).toBe(0);
    expect(summary(next.effects).events).toEqual(['repair.held']);
  });

  it('a re-provision effect sends the task through the port; a failing task is logged, not thrown', async () => {
    const input = build({
      phase: { 'web#0': 'CrashLoop' },
      memory: (m) => m.trouble.set('web#0', { since: NOW - 30 * S }),
    });
    const tasks: unknown[] = [];
    const counted: string[] = [];
    applyRepairEffects(decideRepair(input).effects, input.memory, {
      emit: () => {},
      runTask: async (t) => {
        tasks.push(t);
        throw new Error('no answer');
      },
      onRepair: (r) => void counted.push(r),
      enqueue: () => {},
      log: silentLogger,
    });
    await new Promise((r) => setImmediate(r));
    expect(tasks).toEqual([{ nodeId: 'n1', kind: 'reprovision', instanceId: 'web#0' }]);
    expect(counted).toEqual(['reprovision']);
    expect(input.memory.trouble.get('web#0')?.reprovisionedAt).toBe(NOW);
  });
});

describe('`drover repair etcd --member NAME`, decided purely (coordinator/repair/etcd-member.ts)', () => {
  const etcd3 = ['etcd#0@n1', 'etcd#1@n2', 'etcd#2@n3'].map(parse);

  it('finds the member by etcd-N, etcd#N, N or its instance id, and nothing else', () => {
    const all = [...etcd3, parse('web#1@n4')];
    for (const name of ['etcd-1', 'etcd#1', '1'])
      expect(findEtcdMember(name, all)?.instanceId, name).toBe('etcd#1');
    for (const name of ['etcd-7', 'web#1', 'web-1', 'etcd', '', 'etcd-1x'])
      expect(findEtcdMember(name, all), name).toBeUndefined();
  });

  it.each([
    ['all three healthy', ['etcd#0@n1', 'etcd#1@n2', 'etcd#2@n3'], new Set<string>(), { replace: true }],
    [
      'two of three down: quorum',
      ['etcd#0@n1', 'etcd#1@n2', 'etcd#2@n3'],
      new Set(['etcd#1', 'etcd#2']),
      { replace: false, reason: expect.stringMatching(/quorum/) },
    ],
    [
      'another member still moving',
      ['etcd#0@n1', 'etcd#1@n4<n2', 'etcd#2@n3'],
      new Set(['etcd#1']),
      { replace: false, reason: expect.stringMatching(/one change at a time/) },
    ],
  ] as const)('%s → %j', (_what, specs, down, verdict) => {
    const current = specs.map(parse);
    const d = decideEtcdMemberRepair({
      member: current[0]!,
      current,
      healthy: (a) => !down.has(a.instanceId),
    });
    expect(d.verdict).toEqual(verdict);
    // the request itself is the same either way: the reconcile's gate has the last word
    expect(d.effects).toEqual([
      { type: 'mark', set: 'immediate', op: 'add', id: 'etcd#0' },
      {
        type: 'event',
        event: expect.objectContaining({ kind: 'etcd.repair-requested', instanceId: 'etcd#0', nodeId: 'n1' }),
      },
      { type: 'reconcile', cluster: 't' },
    ]);
  });

  it('its effects, applied: remembered, announced, the cluster queued', () => {
    const memory = emptyRepairMemory();
    const emitted: string[] = [];
    const queued: string[] = [];
    const d = decideEtcdMemberRepair({ member: etcd3[2]!, current: etcd3, healthy: () => true });
    applyRepairEffects(d.effects, memory, {
      emit: (e) => void emitted.push(e.kind),
      runTask: async () => ({}),
      enqueue: (k) => void queued.push(k),
      log: silentLogger,
    });
    expect([...memory.immediate]).toEqual(['etcd#2']);
    expect(emitted).toEqual(['etcd.repair-requested']);
    expect(queued).toEqual(['cluster:t']);
  });
});
