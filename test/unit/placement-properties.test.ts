/**
 * Placement properties over random fleets, topologies, histories, evictions and operator moves:
 * - never two instances of a one-per-node role (or two holders of a port) on one node;
 * - never a new or moved instance on a cordoned, non-Ready, unapproved or evicted node;
 * - a second run on the output changes nothing;
 * - healthy assignments stay where they are; every ordinal is placed or explained;
 * - the result does not depend on input order.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { rolePorts } from '../../coordinator/catalog/index.js';
import type { Assignment, NodeRecord } from '../../coordinator/model.js';
import { type PlacementInput, type PlacementResult, place } from '../../coordinator/placement/index.js';
import { matchesSelector, type Topology, validateTopology } from '../../coordinator/topology/index.js';
import { NODE_STATES } from '../../protocol/index.js';
import { makeNode, T0, T1 } from '../helpers/cluster-fixtures.js';

type Gen<A> = A extends fc.Arbitrary<infer T> ? T : never;

const ROLES = ['alpha', 'beta', 'delta', 'gamma'] as const;
const CUSTOM = {
  alpha: { command: '/bin/a', ports: [8080] },
  beta: { command: '/bin/b', ports: [8080, 9090] },
  gamma: { command: '/bin/g' },
  delta: { command: '/bin/d', ports: [7070] },
};

const nodeArb = fc.record({
  pool: fc.constantFrom('a', 'b', undefined),
  zone: fc.constantFrom('z1', 'z2', 'z3', undefined),
  state: fc.constantFrom(...NODE_STATES, 'Ready', 'Ready', 'Ready'),
  cordoned: fc.boolean(),
  approved: fc.constantFrom(true, true, true, false),
  cores: fc.integer({ min: 1, max: 8 }),
});
type NodeGen = Gen<typeof nodeArb>;

function fleet(gens: NodeGen[]): NodeRecord[] {
  return gens.map((g, i) =>
    makeNode({
      id: `n${i}`,
      address: `10.9.0.${i + 1}`,
      pool: g.pool,
      labels: g.zone ? { zone: g.zone } : {},
      state: g.state,
      cordoned: g.cordoned,
      approved: g.approved,
      cores: g.cores,
    }),
  );
}

const roleArb = fc.record({
  replicas: fc.integer({ min: 0, max: 5 }),
  everywhere: fc.constantFrom(false, false, false, true),
  pool: fc.constantFrom('a', 'b', undefined),
  perNode: fc.boolean(),
  acrossZone: fc.constantFrom(false, false, true),
  minCores: fc.constantFrom(undefined, 2, 4),
  pins: fc.array(fc.constantFrom('n0', 'n1', 'n2', 'n3', 'ghost'), { maxLength: 3 }),
});

function topology(specs: Record<string, Gen<typeof roleArb> | null>): Topology {
  const roles: Record<string, unknown> = {};
  for (const r of ROLES) {
    const s = specs[r];
    if (!s) continue;
    const pins = s.everywhere ? [] : [...new Set(s.pins)].slice(0, s.replicas);
    roles[r] = {
      ...(s.everywhere ? { everywhere: true } : { replicas: s.replicas }),
      nodeSelector: s.pool ? { pool: s.pool } : {},
      spread: { perNode: s.perNode, ...(s.acrossZone ? { acrossLabel: 'zone' } : {}) },
      ...(s.minCores ? { resources: { cpuCores: s.minCores } } : {}),
      ...(pins.length ? { pins } : {}),
    };
  }
  return validateTopology({
    apiVersion: 'drover.dev/v1',
    kind: 'Topology',
    metadata: { name: 'p' },
    cluster: { name: 'p' },
    customRoles: CUSTOM,
    roles,
  });
}

const topoArb = fc
  .record({
    alpha: fc.option(roleArb, { nil: null }),
    beta: fc.option(roleArb, { nil: null }),
    gamma: fc.option(roleArb, { nil: null }),
    delta: fc.option(roleArb, { nil: null }),
  })
  .map(topology);

/** Random changes between two runs: node states, cordons, labels, removals, newcomers. */
const churnArb = fc.record({
  states: fc.array(fc.constantFrom(...NODE_STATES), { minLength: 8, maxLength: 8 }),
  change: fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }),
  drop: fc.array(fc.integer({ min: 0, max: 7 }), { maxLength: 2 }),
  newcomers: fc.array(nodeArb, { maxLength: 2 }),
  evict: fc.array(fc.integer({ min: 0, max: 9 }), { maxLength: 3 }),
  evictInstances: fc.array(fc.tuple(fc.constantFrom(...ROLES), fc.integer({ min: 0, max: 4 })), {
    maxLength: 2,
  }),
  moves: fc.array(
    fc.tuple(fc.constantFrom(...ROLES), fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: 9 })),
    {
      maxLength: 2,
    },
  ),
  garbage: fc.array(
    fc.tuple(
      fc.constantFrom(...ROLES, 'zeta'),
      fc.integer({ min: 0, max: 6 }),
      fc.integer({ min: 0, max: 9 }),
    ),
    {
      maxLength: 3,
    },
  ),
});

const scenarioArb = fc.record({
  nodes: fc.array(nodeArb, { minLength: 1, maxLength: 8 }),
  topology: topoArb,
  churn: churnArb,
});

function scenario(s: Gen<typeof scenarioArb>): { first: PlacementInput; second: PlacementInput } {
  const before = fleet(s.nodes);
  const firstRun = place({ topology: s.topology, nodes: before, current: [], now: T0 });
  const c = s.churn;
  let after = before
    .map((n, i) =>
      c.change[i] ? { ...n, state: c.states[i]!, cordoned: c.states[i] === 'Cordoned' || n.cordoned } : n,
    )
    .filter((_, i) => !c.drop.includes(i));
  after = [
    ...after,
    ...fleet(c.newcomers).map((n, i) => ({ ...n, id: `new${i}`, address: `10.9.1.${i + 1}` })),
  ];
  const garbage: Assignment[] = c.garbage.map(([role, ordinal, n]) => ({
    instanceId: `${role}#${ordinal}`,
    role,
    ordinal,
    nodeId: `n${n}`,
    epoch: 1,
    cluster: 'p',
    since: T0,
  }));
  return {
    first: { topology: s.topology, nodes: before, current: [], now: T0 },
    second: {
      topology: s.topology,
      nodes: after,
      current: [...firstRun.assignments, ...garbage],
      evictNodes: new Set(c.evict.map((i) => `n${i}`)),
      evictInstances: new Set(c.evictInstances.map(([r, o]) => `${r}#${o}`)),
      moveTo: new Map(c.moves.map(([r, o, n]) => [`${r}#${o}`, `n${n}`])),
      now: T1,
    },
  };
}

function checkInvariants(input: PlacementInput, r: PlacementResult): void {
  const t = input.topology;
  const nodes = new Map(input.nodes.map((n) => [n.id, n]));
  const evict = input.evictNodes ?? new Set<string>();
  // one per node for spread roles, and one holder per port per node
  const perNode = new Set<string>();
  const ports = new Set<string>();
  for (const a of r.assignments) {
    const spec = t.roles[a.role]!;
    if (spec.spread.perNode || spec.everywhere) {
      const k = `${a.nodeId}/${a.role}`;
      expect(perNode.has(k), `two ${a.role} on ${a.nodeId}`).toBe(false);
      perNode.add(k);
    }
    for (const p of rolePorts(a.role, t)) {
      const k = `${a.nodeId}:${p}`;
      expect(ports.has(k), `port ${p} twice on ${a.nodeId}`).toBe(false);
      ports.add(k);
    }
    // every assignment is on a node that exists and is not Removed
    const n = nodes.get(a.nodeId);
    expect(n && n.state !== 'Removed', `${a.instanceId} on a missing node ${a.nodeId}`).toBe(true);
  }
  // new and moved instances only on Ready, approved, uncordoned, non-evicted nodes
  for (const a of [...r.added, ...r.moved.map((m) => m.to)]) {
    const n = nodes.get(a.nodeId)!;
    expect(n.state).toBe('Ready');
    expect(n.cordoned).toBe(false);
    expect(n.approved).toBe(true);
    expect(evict.has(n.id)).toBe(false);
  }
  for (const m of r.moved) {
    expect(m.to.epoch).toBe(m.from.epoch + 1);
    expect(m.to.previousNodeId).toBe(m.from.nodeId);
    expect(m.to.nodeId).not.toBe(m.from.nodeId);
  }
  // every ordinal of a replicas role is placed or explained, exactly once
  for (const [role, spec] of Object.entries(t.roles)) {
    if (spec.everywhere) continue;
    const placed = r.assignments.filter((a) => a.role === role).map((a) => a.ordinal);
    expect(new Set(placed).size).toBe(placed.length);
    expect(placed.every((o) => o < spec.replicas!)).toBe(true);
    const explained = r.unplaced.filter((u) => u.role === role && !u.reason.includes('cannot move off'));
    expect(placed.length + explained.length).toBe(spec.replicas);
  }
  for (const u of r.unplaced) expect(u.reason.startsWith(`${u.instanceId}: `)).toBe(true);
}

function unchangedOnRerun(input: PlacementInput, r: PlacementResult): void {
  // evictInstances moves an instance off the node it is on; once moved, the caller drops it
  const again = place({ ...input, current: r.assignments, evictInstances: undefined });
  expect(again.assignments).toEqual(r.assignments);
  expect(again.added).toEqual([]);
  expect(again.moved).toEqual([]);
  expect(again.removed).toEqual([]);
  // the same instances stay unplaced (a reason may name a blocker placed later in the first run)
  // (an evicted instance that could not move is no longer asked to)
  const evicted = input.evictInstances ?? new Set<string>();
  expect(again.unplaced.map((u) => u.instanceId)).toEqual(
    r.unplaced
      .filter((u) => !(evicted.has(u.instanceId) && u.reason.includes(`(${u.instanceId} is being evicted)`)))
      .map((u) => u.instanceId),
  );
}

describe('placement properties (fast-check)', () => {
  it('first placement: invariants hold and a second run changes nothing', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const { first } = scenario(s);
        const r = place(first);
        checkInvariants(first, r);
        unchangedOnRerun(first, r);
      }),
      { numRuns: 400 },
    );
  });

  it('after churn, evictions, operator moves and garbage: invariants, stability, idempotence', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const { second } = scenario(s);
        const r = place(second);
        checkInvariants(second, r);
        unchangedOnRerun(second, r);
        // stability: a current assignment whose node still qualifies to keep it is untouched
        const nodes = new Map(second.nodes.map((n) => [n.id, n]));
        for (const a of second.current) {
          const n = nodes.get(a.nodeId);
          const spec = second.topology.roles[a.role];
          if (!n || !spec || n.state === 'Removed' || second.evictNodes!.has(n.id)) continue;
          if (second.evictInstances!.has(a.instanceId) || second.moveTo!.has(a.instanceId)) continue;
          if (a.epoch !== 1 || a.since !== T0) continue;
          if (s.churn.garbage.length > 0) continue; // garbage may legitimately displace (duplicates)
          if (spec.pins.length > a.ordinal || !matchesSelector(n.labels, spec.nodeSelector)) continue;
          if (!spec.everywhere && a.ordinal >= spec.replicas!) continue;
          expect(r.assignments, `${a.instanceId} should have stayed on ${a.nodeId}`).toContainEqual(a);
        }
      }),
      { numRuns: 400 },
    );
  });

  it('the result does not depend on the order of nodes and assignments', () => {
    fc.assert(
      fc.property(scenarioArb, fc.integer(), (s, seed) => {
        const { second } = scenario(s);
        const shuffle = <T>(xs: T[]) =>
          xs
            .map((x, i) => ({ x, k: (Math.imul(i + 1, 2654435761) ^ seed) >>> 0 }))
            .sort((a, b) => a.k - b.k)
            .map((e) => e.x);
        const a = place(second);
        const b = place({ ...second, nodes: shuffle(second.nodes), current: shuffle(second.current) });
        expect(b).toEqual(a);
      }),
      { numRuns: 200 },
    );
  });
});
