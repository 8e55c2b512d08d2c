import { describe, expect, it } from 'vitest';
import { detectStall, LivenessRebase, stallThresholdMs } from '../../coordinator/liveness-rebase.js';
import { NodeRegistry } from '../../coordinator/nodes.js';
import { ClusterState } from '../../coordinator/state/cluster-state.js';
import { MemoryStore } from '../../coordinator/store/index.js';
import { ManualClock } from '../../lib/clock.js';
import { PROTOCOL_VERSION } from '../../protocol/index.js';
import { RecordingBus, TEST_TIMINGS } from '../helpers/api.js';
import { manualEngine, registerNode } from '../helpers/repair-fleet.js';

describe('detectStall (pure)', () => {
  it.each([
    ['first sweep', undefined, 1000, 4000, undefined],
    ['on time', 1000, 1250, 4000, undefined],
    ['late, below the threshold', 1000, 4999, 4000, undefined],
    ['at the threshold', 1000, 5000, 4000, { gapMs: 4000 }],
    ['a 40 s pause', 1000, 41_000, 4000, { gapMs: 40_000 }],
    ['clock stepped back', 5000, 1000, 4000, undefined],
  ])('%s', (_what, prev, now, after, want) => {
    expect(detectStall(prev, now, after)).toEqual(want);
  });

  it('the threshold is 2 heartbeats, at least 8 sweeps', () => {
    expect(stallThresholdMs({ heartbeatIntervalMs: 2000 })).toBe(4000);
    expect(stallThresholdMs({ heartbeatIntervalMs: 500 })).toBe(1000);
    expect(stallThresholdMs({ heartbeatIntervalMs: 100 })).toBe(800); // sweeps are ≥ 100 ms apart
  });
});

/** A real engine on a manual clock (heartbeat 1 s, Suspect after 3 s, Unreachable after 10 s). */
async function engineWithRebase(o: { rebase?: boolean } = {}) {
  const clock = new ManualClock(1_000_000);
  const store = new MemoryStore();
  // as in coordinator/daemon.ts: the read model first, the re-base on its nodes, then the engine
  const state = new ClusterState(new NodeRegistry(store, clock, TEST_TIMINGS));
  const stalls: number[] = [];
  const rebase = new LivenessRebase(clock, state.nodes, {
    stallAfterMs: stallThresholdMs(TEST_TIMINGS),
    onStall: ({ gapMs }) => stalls.push(gapMs),
  });
  const engine = manualEngine(clock, {
    store,
    state,
    beforeSweep: o.rebase === false ? undefined : () => void rebase.beforeSweep(),
  });
  engine.attachBus(new RecordingBus());
  await engine.start();
  const ids = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
  for (const id of ids) await registerNode(engine, id, `10.0.0.${ids.indexOf(id) + 1}`, {});
  const beat = (id: string) =>
    engine.handleHeartbeat({
      v: PROTOCOL_VERSION,
      type: 'heartbeat',
      nodeId: id,
      seq: 0,
      sentAt: 'now',
      digest: {
        generation: 0,
        checksum: '',
        coordinatorEpoch: engine.epoch,
        health: 'x',
        instances: 0,
        unhealthy: 0,
      },
    } as never);
  const states = () =>
    Object.fromEntries(engine.nodes.all().map((n) => [n.id, engine.nodes.effectiveState(n)]));
  return { clock, engine, ids, beat, states, stalls };
}

describe('liveness re-base after a coordinator stall (injected clock)', () => {
  it('a 40 s stall marks no node Unreachable; silence counts from the resume, so a node that stays silent is Unreachable 10 s later', async () => {
    const f = await engineWithRebase();
    const live = f.ids.filter((id) => id !== 'g');
    // steady state: every node beats each second
    for (let i = 0; i < 5; i++) {
      for (const id of f.ids) f.beat(id);
      f.clock.advance(1000);
    }
    // g goes silent 1 s before the coordinator is paused for 40 s
    for (const id of live) f.beat(id);
    f.clock.advance(1000);
    f.clock.stall(40_000);
    f.clock.advance(0); // the resumed process runs its overdue sweep first
    expect(f.stalls).toHaveLength(1);
    expect(f.stalls[0]).toBeGreaterThanOrEqual(40_000);
    expect(f.engine.events.list({ kind: 'node.unreachable' })).toEqual([]);
    expect(f.engine.events.list({ kind: 'node.suspect' })).toEqual([]);
    expect(Object.values(f.states()).every((s) => s === 'Ready')).toBe(true);
    // after the resume the others beat again; g does not
    for (let t = 0; t < 12_000; t += 500) {
      if (t % 1000 === 0) for (const id of live) f.beat(id);
      f.clock.advance(500);
    }
    const unreachable = f.engine.events.list({ kind: 'node.unreachable' });
    expect(unreachable.map((e) => e.nodeId)).toEqual(['g']);
    expect(unreachable[0]!.message).toMatch(/no heartbeat for 10\.\ds/);
    expect(f.states()).toMatchObject({ a: 'Ready', f: 'Ready', g: 'Unreachable' });
    await f.engine.close();
  });

  it('a node Unreachable before the stall stays Unreachable (its silence is not forgiven)', async () => {
    const f = await engineWithRebase();
    for (let t = 0; t < 12_000; t += 500) {
      if (t % 1000 === 0) for (const id of f.ids.filter((x) => x !== 'g')) f.beat(id);
      f.clock.advance(500);
    }
    expect(f.states().g).toBe('Unreachable');
    f.clock.stall(30_000);
    f.clock.advance(0);
    expect(f.stalls).toHaveLength(1);
    expect(f.states().g).toBe('Unreachable');
    expect(f.engine.events.list({ kind: 'node.unreachable' }).map((e) => e.nodeId)).toEqual(['g']);
    await f.engine.close();
  });

  it('without the re-base the same stall marks all 7 nodes Unreachable (the bug)', async () => {
    const f = await engineWithRebase({ rebase: false });
    for (const id of f.ids) f.beat(id);
    f.clock.advance(500);
    f.clock.stall(40_000);
    f.clock.advance(0);
    expect(f.engine.events.list({ kind: 'node.unreachable' })).toHaveLength(7);
    await f.engine.close();
  });
});
