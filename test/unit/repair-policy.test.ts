// The repair policy on an injected clock: exact timings, the storm guard, the rate limit and the
// last-healthy rule, with a real Engine over a MemoryStore and a recording bus (a narrow port).
import { describe, expect, it } from 'vitest';
import { DEFAULT_REPAIR_OPTIONS } from '../../coordinator/repair.js';
import { beatenRepairFleet, webTopology } from '../helpers/repair-fleet.js';

const fleet = (n: number, replicas: number) =>
  beatenRepairFleet({ nodes: n, address: (i) => `10.0.0.${i + 1}`, topology: webTopology(replicas) });

describe('repair policy (injected clock)', () => {
  it("reassigns an Unreachable node's instance only after unreachableAfter + reassignAfter, bumping the epoch", async () => {
    const f = await fleet(4, 2);
    const victim = f.where('web#0')!;
    f.alive.delete(victim);
    await f.advance(14_000); // 10 s to Unreachable + 5 s reassignAfter = 15 s
    expect(f.where('web#0')).toBe(victim);
    expect(f.kinds()).toContain('node.unreachable');
    expect(f.kinds()).not.toContain('role.moved');
    await f.advance(2000);
    expect(f.where('web#0')).not.toBe(victim);
    const a = f.engine.currentAssignments('t').find((x) => x.instanceId === 'web#0')!;
    expect(a.epoch).toBe(2);
    expect(a.previousNodeId).toBe(victim);
    // fencing: the dead node's desired plan no longer holds the moved instance
    expect(f.engine.desiredPlan(victim)?.instances.map((i) => i.id)).not.toContain('web#0');
    await f.engine.close();
  });

  it('a blip shorter than the grace period reassigns nothing', async () => {
    const f = await fleet(4, 2);
    const victim = f.where('web#0')!;
    f.alive.delete(victim);
    await f.advance(5000);
    f.alive.add(victim);
    await f.advance(30_000);
    expect(f.where('web#0')).toBe(victim);
    expect(f.kinds()).not.toContain('role.moved');
    await f.engine.close();
  });

  it('the storm guard pauses reassignment when > 40 % of nodes are Unreachable; force proceeds', async () => {
    const f = await fleet(4, 2);
    const a = f.where('web#0')!;
    const b = f.where('web#1')!;
    f.alive.delete(a);
    f.alive.delete(b); // 2 of 4 = 50 %
    await f.advance(40_000);
    expect(f.where('web#0')).toBe(a);
    expect(f.where('web#1')).toBe(b);
    expect(f.kinds()).toContain('repair.paused');
    expect(f.repair.isPaused('t')).toBe(true);
    await f.engine.repairNode(a, { force: true });
    await f.advance(1000);
    expect(f.where('web#0')).not.toBe(a);
    expect(f.kinds()).toContain('repair.forced');
    await f.engine.close();
  });

  it('rate-limits reassignments per role', async () => {
    const f = await fleet(10, 6);
    const first = ['web#0', 'web#1', 'web#2', 'web#3'].map((i) => f.where(i)!);
    // 4 of 10 nodes die: 40 % is not above the threshold, so no storm
    for (const n of first) f.alive.delete(n);
    await f.advance(27_000);
    const moved = ['web#0', 'web#1', 'web#2', 'web#3'].filter((i, k) => f.where(i) !== first[k]);
    expect(moved).toHaveLength(DEFAULT_REPAIR_OPTIONS.maxReassignPerRolePerMinute);
    expect(f.kinds()).toContain('repair.held');
    await f.advance(61_000);
    expect(['web#0', 'web#1', 'web#2', 'web#3'].filter((i, k) => f.where(i) !== first[k])).toHaveLength(4);
    await f.engine.close();
  });

  it('drain never moves the last healthy instance off a live node until another is healthy', async () => {
    const f = await fleet(3, 1);
    const only = f.where('web#0')!;
    await f.engine.drain(only);
    await f.advance(3000);
    expect(f.where('web#0')).toBe(only);
    expect(f.kinds()).toContain('repair.held');
    // an operator can still force a move
    const target = ['n1', 'n2', 'n3'].find((n) => n !== only)!;
    await f.engine.moveInstance('web#0', target, { force: true });
    await f.advance(1000);
    expect(f.where('web#0')).toBe(target);
    await f.engine.close();
  });
});
