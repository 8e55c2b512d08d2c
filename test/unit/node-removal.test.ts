import { describe, expect, it } from 'vitest';
import {
  prepareRemoval,
  type RemovalInput,
  type RemovalPort,
  removalVerdict,
} from '../../coordinator/node-removal.js';
import { ManualClock } from '../../lib/clock.js';
import type { NodeState } from '../../protocol/index.js';

describe('removalVerdict (pure)', () => {
  const base: RemovalInput = { state: 'Ready', assigned: 2, runsNothing: false, force: false };
  it.each([
    ['a dead node is forgotten', { state: 'Unreachable' }, 'forget'],
    ['a pending node is forgotten', { state: 'Pending' }, 'forget'],
    ['a live node running instances is refused', {}, 'refuse'],
    ['… Suspect too (it still heartbeats now and then)', { state: 'Suspect' }, 'refuse'],
    ['… Cordoned too', { state: 'Cordoned' }, 'refuse'],
    ['… Draining with instances left', { state: 'Draining' }, 'refuse'],
    [
      'a drained node (no assignments, empty plan applied) is forgotten',
      { state: 'Draining', assigned: 0, runsNothing: true },
      'forget',
    ],
    ['no assignments but its plan not yet applied: refused', { assigned: 0 }, 'refuse'],
    ['--force on a live node fences it first', { force: true }, 'fence'],
    ['--force on a dead node just forgets it', { state: 'Unreachable', force: true }, 'forget'],
  ] as Array<[string, Partial<RemovalInput>, string]>)('%s', (_what, over, kind) => {
    expect(removalVerdict({ ...base, ...over }).kind).toBe(kind);
  });
});

/** A fake engine port: `ackAfterMs` is when the agent confirms the empty plan (never: undefined). */
function fakePort(o: { state?: NodeState; assigned?: number; ackAfterMs?: number; runsNothing?: boolean }) {
  const clock = new ManualClock(0);
  const fences: boolean[] = [];
  let fencedAt: number | undefined;
  const port: RemovalPort = {
    clock,
    state: () => o.state ?? 'Ready',
    assigned: () => o.assigned ?? 2,
    runsNothing: () =>
      o.runsNothing === true ||
      (fencedAt !== undefined && o.ackAfterMs !== undefined && clock.now() - fencedAt >= o.ackAfterMs),
    fence: (_n, on) => {
      fences.push(on);
      fencedAt = on ? clock.now() : undefined;
    },
  };
  /** drives the manual clock while the removal waits */
  const run = async <T>(p: Promise<T>): Promise<T> => {
    let done = false;
    const guarded = p.finally(() => {
      done = true;
    });
    guarded.catch(() => {});
    for (let i = 0; i < 1000 && !done; i++) {
      await new Promise((r) => setImmediate(r));
      clock.advance(100);
    }
    return guarded;
  };
  return { port, fences, run, clock };
}

describe('prepareRemoval', () => {
  it('refuses a live node without --force with DROVER_ERR_NODE_LIVE, naming drain and --force, and fences nothing', async () => {
    const f = fakePort({});
    await expect(prepareRemoval(f.port, 'cp-2')).rejects.toMatchObject({
      code: 'DROVER_ERR_NODE_LIVE',
      status: 409,
      message: expect.stringMatching(
        /not removing node cp-2: it is Ready .*drover drain cp-2 --wait.*drover remove cp-2 --force/,
      ),
    });
    expect(f.fences).toEqual([]);
  });

  it('--force: fences the node and resolves once its agent applied the empty plan', async () => {
    const f = fakePort({ ackAfterMs: 700 });
    const r = await f.run(prepareRemoval(f.port, 'cp-2', { force: true, timeoutMs: 5000 }));
    expect(r).toEqual({ how: 'fenced', instances: 2 });
    expect(f.fences).toEqual([true]); // the fence stays on until the engine forgets the node
    expect(f.clock.now()).toBeLessThan(2000);
  });

  it('--force: no confirmation within the timeout → DROVER_ERR_FENCE_TIMEOUT, the fence is lifted, nothing removed', async () => {
    const f = fakePort({});
    await expect(
      f.run(prepareRemoval(f.port, 'cp-2', { force: true, timeoutMs: 3000 })),
    ).rejects.toMatchObject({
      code: 'DROVER_ERR_FENCE_TIMEOUT',
      status: 504,
      message: expect.stringMatching(/did not confirm within 3s .*nothing was removed/),
    });
    expect(f.fences).toEqual([true, false]);
    expect(f.clock.now()).toBeGreaterThanOrEqual(3000);
  });

  it('a dead node, or a live one that runs nothing, is forgotten without fencing', async () => {
    for (const o of [{ state: 'Unreachable' as const }, { assigned: 0, runsNothing: true }]) {
      const f = fakePort(o);
      expect((await prepareRemoval(f.port, 'n')).how).toBe('forgotten');
      expect(f.fences).toEqual([]);
    }
  });
});
