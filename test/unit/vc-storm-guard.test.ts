import { describe, expect, it } from 'vitest';
import { stormVerdict } from '../../coordinator/storm-guard.js';
import { VcService } from '../../coordinator/vc/index.js';
import { repairFleet } from '../helpers/repair-fleet.js';

describe('stormVerdict (pure)', () => {
  it.each([
    [[], 0.4, false],
    [['Ready', 'Ready', 'Unreachable'], 0.4, false], // 33 %
    [['Ready', 'Unreachable', 'Unreachable'], 0.4, true], // 67 %
    [['Ready', 'Suspect', 'Suspect', 'Unreachable', 'Unreachable'], 0.4, false], // Suspect is not dead: 40 %
    [['Unreachable', 'Unreachable'], 0.4, true],
    [['Unreachable'], 0.4, false], // one silent host is a host failure, not a partition
    [['Ready', 'Unreachable'], 0.4, false],
  ] as const)('%j at %s → storm %s', (states, threshold, storm) => {
    expect(stormVerdict(states, threshold).storm).toBe(storm);
  });
});

/** One super cluster `r1`: a kubelet on each of 7 nodes (4 cores each: 3900m allocatable). */
const SUPER = `apiVersion: drover.dev/v1
kind: Topology
metadata: { name: r1 }
cluster:
  name: r1
  apiEndpoint: { mode: external, address: 10.9.9.9 }
roles:
  kubelet: { everywhere: true }
`;

/** 26 one-core slices: they fit on 7 nodes (27.3 cores), not on 6 (23.4). */
const TENANT = { slices: 26, slice: { cpu: '1', memory: '1Gi' } };

async function setup() {
  const f = await repairFleet({ nodes: 7, address: (i) => `10.0.0.${i + 1}`, topology: SUPER });
  await f.advance(2000);
  const guarded = new VcService(f.engine, { stormGuard: (c) => f.repair.stormActive(c) });
  const unguarded = new VcService(f.engine);
  for (const vc of [guarded, unguarded]) {
    const r = await vc.setTenant('t1', TENANT);
    expect(r.placement.placements).toEqual({ t1: { r1: 26 } });
  }
  return { f, guarded, unguarded };
}

describe('VirtualCluster placement honours the storm guard', () => {
  it('all 7 nodes look dead at once (a coordinator-side partition): the slices stay on r1; without the guard they went to {}', async () => {
    const { f, guarded, unguarded } = await setup();
    f.alive.clear();
    await f.advance(12_000); // > unreachableAfter (10 s)
    expect(f.engine.placementNodes('r1').every((n) => n.state === 'Unreachable')).toBe(true);
    expect(f.repair.stormActive('r1')).toBe(true);
    const held = await guarded.replace('test');
    expect(held.placements).toEqual({ t1: { r1: 26 } });
    expect(held.unplaced).toEqual([]);
    expect(f.events('vc.placement-held')).toHaveLength(1);
    // the old behaviour, for contrast: every slice unplaced
    expect((await unguarded.replace('test')).placements).toEqual({ t1: {} });
    // the nodes come back: nothing moved, the hold ends
    for (const id of f.ids) f.alive.add(id);
    await f.advance(1000);
    expect((await guarded.replace('test')).placements).toEqual({ t1: { r1: 26 } });
    expect(f.events('vc.placement-resumed')).toHaveLength(1);
    expect(f.events('vc.slices-moved').filter((e) => e.message.includes('to {}'))).toHaveLength(1); // the unguarded one
    await f.engine.close();
  });

  it('one node really dead (below the storm threshold): the guard does not hold, its share of slices no longer fits', async () => {
    const { f, guarded } = await setup();
    f.alive.delete('n1');
    await f.advance(12_000);
    expect(f.repair.stormActive('r1')).toBe(false);
    const r = await guarded.replace('test');
    expect(r.placements).toEqual({ t1: { r1: 23 } });
    expect(r.unplaced).toEqual([expect.objectContaining({ tenant: 't1', slices: 3 })]);
    expect(f.events('vc.placement-held')).toEqual([]);
    await f.engine.close();
  });

  it('`drover repair --force` (the operator override) releases the hold', async () => {
    const { f, guarded } = await setup();
    f.alive.clear();
    await f.advance(12_000);
    expect((await guarded.replace('test')).placements).toEqual({ t1: { r1: 26 } });
    f.repair.force(60_000);
    expect(f.repair.stormActive('r1')).toBe(false);
    expect((await guarded.replace('test')).placements).toEqual({ t1: {} });
    await f.engine.close();
  });
});
