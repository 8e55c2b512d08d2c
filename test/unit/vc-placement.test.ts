import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  capacityFromNodes,
  type PlaceSlicesInput,
  type PlaceSlicesResult,
  parseCpuMilli,
  parseMemoryBytes,
  parseSliceAnnotation,
  placementAnnotation,
  placeSlices,
  type SlicePlacements,
  type SliceSize,
  slicesForQuota,
} from '../../coordinator/vc/index.js';
import { sampleFacts } from '../helpers/fixtures.js';

const Mi = 1024 * 1024;
const Gi = 1024 * Mi;

describe('seed 002 worked example', () => {
  it('places the default namespace’s two 100m/100Mi slices as {"r1":1,"r2":1}', () => {
    // two minikube super clusters, r1 and r2, one node each
    const minikube = () => [
      {
        facts: sampleFacts({
          cpu: { cores: 2, physicalCores: 2, model: 'x' },
          memory: { totalBytes: 4 * Gi },
        }),
        state: 'Ready' as const,
      },
    ];
    const slice = parseSliceAnnotation('{"cpu":"100m", "memory":"100Mi"}');
    const slices = slicesForQuota({ cpu: '200m', memory: '200Mi' }, slice);
    expect(slices).toBe(2);
    const r = placeSlices({
      superClusters: [
        { name: 'r1', capacity: capacityFromNodes(minikube()) },
        { name: 'r2', capacity: capacityFromNodes(minikube()) },
      ],
      tenants: [{ name: 'default', slices, slice }],
    });
    expect(placementAnnotation(r.placements.default!)).toBe('{"r1":1,"r2":1}');
    expect(r.unplaced).toEqual([]);
  });
});

describe('placeSlices policy', () => {
  const cap = (cpuMilli: number, memoryBytes: number) => ({ cpuMilli, memoryBytes });

  it('spreads by free capacity: equal clusters split evenly, a 3× cluster takes 3×', () => {
    const even = placeSlices({
      superClusters: [
        { name: 'a', capacity: cap(4000, 8 * Gi) },
        { name: 'b', capacity: cap(4000, 8 * Gi) },
      ],
      tenants: [{ name: 't', slices: 10 }],
    });
    expect(even.placements.t).toEqual({ a: 5, b: 5 });
    const skew = placeSlices({
      superClusters: [
        { name: 'big', capacity: cap(3000, 30 * Gi) },
        { name: 'small', capacity: cap(1000, 10 * Gi) },
      ],
      tenants: [{ name: 't', slices: 20 }],
    });
    expect(skew.placements.t).toEqual({ big: 15, small: 5 });
  });

  it('reports what does not fit, with the reason', () => {
    const r = placeSlices({
      superClusters: [{ name: 'r1', capacity: cap(250, Gi) }],
      tenants: [{ name: 'a', slices: 5 }],
    });
    expect(r.placements.a).toEqual({ r1: 2 });
    expect(r.unplaced).toEqual([
      {
        tenant: 'a',
        slices: 3,
        reason: expect.stringMatching(
          /no super cluster has room for another slice \(cpu 100m, memory 100Mi\); free: r1 cpu 0.05 memory/,
        ),
      },
    ]);
    expect(placeSlices({ superClusters: [], tenants: [{ name: 'a', slices: 1 }] }).unplaced[0]!.reason).toBe(
      'no super clusters are defined',
    );
    expect(
      placeSlices({
        superClusters: [{ name: 'r1', capacity: cap(50, Gi) }],
        tenants: [{ name: 'a', slices: 1 }],
      }).unplaced[0]!.reason,
    ).toMatch(/larger than the capacity of every super cluster/);
  });

  it('shares scarce capacity round-robin instead of draining it into the first tenant', () => {
    const r = placeSlices({
      superClusters: [{ name: 'r1', capacity: cap(400, 4 * Gi) }],
      tenants: [
        { name: 'a', slices: 4 },
        { name: 'b', slices: 4 },
      ],
    });
    expect(r.placements).toEqual({ a: { r1: 2 }, b: { r1: 2 } });
  });

  it('when a super cluster loses capacity, only the slices that no longer fit move', () => {
    const before = placeSlices({
      superClusters: [
        { name: 'r1', capacity: cap(1000, 10 * Gi) },
        { name: 'r2', capacity: cap(1000, 10 * Gi) },
        { name: 'r3', capacity: cap(1000, 10 * Gi) },
      ],
      tenants: [
        { name: 'a', slices: 6 },
        { name: 'b', slices: 6 },
      ],
    });
    expect(before.placements).toEqual({ a: { r1: 2, r2: 2, r3: 2 }, b: { r1: 2, r2: 2, r3: 2 } });
    // a node in r2 dies: r2 can now hold only 3 slices
    const after = placeSlices({
      superClusters: [
        { name: 'r1', capacity: cap(1000, 10 * Gi) },
        { name: 'r2', capacity: cap(300, 10 * Gi) },
        { name: 'r3', capacity: cap(1000, 10 * Gi) },
      ],
      tenants: [
        { name: 'a', slices: 6 },
        { name: 'b', slices: 6 },
      ],
      previous: before.placements,
    });
    expect(after.placements).toEqual({ a: { r1: 2, r2: 2, r3: 2 }, b: { r1: 3, r2: 1, r3: 2 } });
  });

  it('a removed super cluster’s slices are placed elsewhere; a shrunk quota is trimmed in place', () => {
    const r = placeSlices({
      superClusters: [{ name: 'r1', capacity: cap(1000, 10 * Gi) }],
      tenants: [
        { name: 'a', slices: 2 },
        { name: 'b', slices: 1 },
      ],
      previous: { a: { r1: 1, gone: 1 }, b: { r1: 3 }, deleted: { r1: 5 } },
    });
    expect(r.placements).toEqual({ a: { r1: 2 }, b: { r1: 1 } });
  });

  it('refuses bad input with a message naming the field, and never throws anything else', () => {
    const sc = [{ name: 'r1', capacity: cap(1000, Gi) }];
    expect(() => placeSlices({ superClusters: [...sc, ...sc], tenants: [] })).toThrow(/duplicate name "r1"/);
    expect(() => placeSlices({ superClusters: sc, tenants: [{ name: 't', slices: -1 }] })).toThrow(
      /tenants\[0\] \(t\)\.slices/,
    );
    expect(() => placeSlices({ superClusters: sc, tenants: [{ name: 't', slices: 1.5 }] })).toThrow(
      /integer/,
    );
    expect(() =>
      placeSlices({
        superClusters: sc,
        tenants: [{ name: 't', slices: 1, slice: { cpu: '1x', memory: '1Mi' } }],
      }),
    ).toThrow(/tenants\[0\] \(t\)\.slice\.cpu "1x"/);
    expect(() =>
      placeSlices({
        superClusters: sc,
        tenants: [{ name: 't', slices: 1, slice: { cpu: '0', memory: '1Mi' } }],
      }),
    ).toThrow(/must ask for some cpu/);
    expect(() =>
      placeSlices({ superClusters: [{ name: 'r1', capacity: cap(-1, Gi) }], tenants: [] }),
    ).toThrow(/capacity\.cpuMilli/);
    expect(() =>
      placeSlices({ superClusters: sc, tenants: [{ name: 't', slices: 1 }], previous: { t: { r1: -2 } } }),
    ).toThrow(/previous\.t\.r1/);
  });
});

// ---------------------------------------------------------------- properties

const SLICES: SliceSize[] = [
  { cpu: '100m', memory: '100Mi' },
  { cpu: '250m', memory: '64Mi' },
  { cpu: '1', memory: '1Gi' },
];

const clusterArb = fc.record({
  name: fc.constantFrom('r1', 'r2', 'r3', 'r4', 'r5'),
  capacity: fc.record({
    cpuMilli: fc.integer({ min: 0, max: 4000 }),
    memoryBytes: fc.integer({ min: 0, max: 8 }).map((g) => g * 512 * Mi),
  }),
});
const tenantArb = fc.record(
  {
    name: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'),
    slices: fc.integer({ min: 0, max: 40 }),
    slice: fc.constantFrom(...SLICES),
  },
  { requiredKeys: ['name', 'slices'] },
);
const previousArb: fc.Arbitrary<SlicePlacements> = fc.dictionary(
  fc.constantFrom('a', 'b', 'c', 'x'),
  fc.dictionary(fc.constantFrom('r1', 'r2', 'r3', 'gone'), fc.integer({ min: 0, max: 20 })),
);
const inputArb: fc.Arbitrary<PlaceSlicesInput> = fc.record({
  superClusters: fc.uniqueArray(clusterArb, { selector: (c) => c.name, maxLength: 5 }),
  tenants: fc.uniqueArray(tenantArb, { selector: (t) => t.name, maxLength: 6 }),
  previous: fc.option(previousArb, { nil: undefined }),
});

function sizeOf(input: PlaceSlicesInput, tenant: string) {
  const s = input.tenants.find((t) => t.name === tenant)!.slice ?? { cpu: '100m', memory: '100Mi' };
  return { cpu: parseCpuMilli(s.cpu), mem: parseMemoryBytes(s.memory) };
}

function usage(input: PlaceSlicesInput, placements: SlicePlacements) {
  const used: Record<string, { cpu: number; mem: number }> = {};
  for (const [t, row] of Object.entries(placements)) {
    const { cpu, mem } = sizeOf(input, t);
    for (const [c, n] of Object.entries(row)) {
      used[c] ??= { cpu: 0, mem: 0 };
      used[c].cpu += n * cpu;
      used[c].mem += n * mem;
    }
  }
  return used;
}

function fitsCapacity(input: PlaceSlicesInput, placements: SlicePlacements): boolean {
  const used = usage(input, placements);
  return Object.entries(used).every(([c, u]) => {
    const sc = input.superClusters.find((s) => s.name === c);
    return sc !== undefined && u.cpu <= sc.capacity.cpuMilli && u.mem <= sc.capacity.memoryBytes;
  });
}

function total(row: Record<string, number> | undefined): number {
  return Object.values(row ?? {}).reduce((a, b) => a + b, 0);
}

describe('placeSlices properties', () => {
  it('never exceeds any super cluster’s capacity, and free capacity adds up', () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const r = placeSlices(input);
        expect(fitsCapacity(input, r.placements)).toBe(true);
        const used = usage(input, r.placements);
        for (const sc of input.superClusters) {
          expect(r.free[sc.name]!.cpuMilli).toBe(sc.capacity.cpuMilli - (used[sc.name]?.cpu ?? 0));
          expect(r.free[sc.name]!.memoryBytes).toBe(sc.capacity.memoryBytes - (used[sc.name]?.mem ?? 0));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('placed + unplaced = requested, for every tenant', () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const r = placeSlices(input);
        for (const t of input.tenants) {
          const un = r.unplaced.find((u) => u.tenant === t.name)?.slices ?? 0;
          expect(total(r.placements[t.name]) + un).toBe(t.slices);
        }
        expect(Object.keys(r.placements).sort()).toEqual(input.tenants.map((t) => t.name).sort());
      }),
      { numRuns: 300 },
    );
  });

  it('is deterministic: same input twice, or in another order, gives the same output', () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const a: PlaceSlicesResult = placeSlices(input);
        const b = placeSlices(structuredClone(input));
        expect(b).toEqual(a);
        const shuffled = {
          ...input,
          superClusters: [...input.superClusters].reverse(),
          tenants: [...input.tenants].reverse(),
        };
        expect(JSON.stringify(placeSlices(shuffled))).toBe(JSON.stringify(a));
      }),
      { numRuns: 200 },
    );
  });

  it('is stable: feeding the result back as previous changes nothing', () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const first = placeSlices(input);
        const second = placeSlices({ ...input, previous: first.placements });
        expect(second.placements).toEqual(first.placements);
      }),
      { numRuns: 200 },
    );
  });

  it('keeps any previous placement that still fits and matches the quota', () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const prev = input.previous ?? {};
        // restrict previous to known tenants and clusters, and ask for exactly what it holds
        const known = new Set(input.superClusters.map((s) => s.name));
        const cleaned: SlicePlacements = {};
        for (const t of input.tenants) {
          const row: Record<string, number> = {};
          for (const [c, n] of Object.entries(prev[t.name] ?? {})) if (known.has(c) && n > 0) row[c] = n;
          cleaned[t.name] = row;
        }
        const tenants = input.tenants.map((t) => ({ ...t, slices: total(cleaned[t.name]) }));
        const asked = { ...input, tenants, previous: cleaned };
        fc.pre(fitsCapacity(asked, cleaned));
        expect(placeSlices(asked).placements).toEqual(cleaned);
      }),
      { numRuns: 300 },
    );
  });

  it('when one super cluster shrinks, no slice moves off any other cluster', () => {
    fc.assert(
      fc.property(inputArb, fc.nat(), fc.integer({ min: 0, max: 100 }), (input, pick, pct) => {
        fc.pre(input.superClusters.length > 0);
        const before = placeSlices({ ...input, previous: undefined });
        const victim = input.superClusters[pick % input.superClusters.length]!;
        const shrunk = input.superClusters.map((s) =>
          s === victim
            ? {
                name: s.name,
                capacity: {
                  cpuMilli: Math.floor((s.capacity.cpuMilli * pct) / 100),
                  memoryBytes: Math.floor((s.capacity.memoryBytes * pct) / 100),
                },
              }
            : s,
        );
        const after = placeSlices({ ...input, superClusters: shrunk, previous: before.placements });
        for (const t of input.tenants)
          for (const sc of input.superClusters)
            if (sc !== victim)
              expect(after.placements[t.name]![sc.name] ?? 0).toBeGreaterThanOrEqual(
                before.placements[t.name]![sc.name] ?? 0,
              );
      }),
      { numRuns: 200 },
    );
  });
});
