// Issue 15, point 10: nothing the coordinator sends can look stale to an agent. The agent's side
// here is its real plan guard (agent/plan-guard.ts) behind a recording bus; the engine is real.
import type { KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type AppliedRef, checkPlan } from '../../agent/plan-guard.js';
import type { Engine } from '../../coordinator/engine.js';
import { MemoryStore } from '../../coordinator/store/index.js';
import { parseTopology } from '../../coordinator/topology/index.js';
import { ManualClock } from '../../lib/clock.js';
import {
  type DroverError,
  generateSigningKey,
  type PlanResult,
  PROTOCOL_VERSION,
  type SignedPlan,
  type SigningKeyPair,
} from '../../protocol/index.js';
import { RecordingBus } from '../helpers/api.js';
import { sampleFacts } from '../helpers/fixtures.js';
import { manualEngine, webTopology } from '../helpers/repair-fleet.js';

/** Answers pushes as an agent's plan guard does, and keeps what each node applied. */
class GuardedBus extends RecordingBus {
  readonly applied = new Map<string, AppliedRef>();
  readonly refusals: string[] = [];
  constructor(private readonly key: KeyObject) {
    super();
  }
  override async pushPlan(nodeId: string, signed: SignedPlan): Promise<PlanResult> {
    await super.pushPlan(nodeId, signed);
    const base = {
      v: PROTOCOL_VERSION,
      type: 'plan-result' as const,
      nodeId,
      generation: signed.plan.generation,
      checksum: signed.plan.checksum,
    };
    try {
      const { plan } = checkPlan(signed, { nodeId, key: this.key, applied: this.applied.get(nodeId) });
      this.applied.set(nodeId, {
        generation: plan.generation,
        checksum: plan.checksum,
        coordinatorEpoch: plan.coordinatorEpoch,
      });
      return { ...base, accepted: true };
    } catch (err) {
      const e = err as DroverError;
      this.refusals.push(`${e.code}: ${e.message}`);
      return { ...base, accepted: false, error: { code: e.code, message: e.message } };
    }
  }
}

const register = (engine: Engine, applied?: AppliedRef) =>
  engine.handleRegister({
    v: PROTOCOL_VERSION,
    type: 'register',
    nodeId: 'a',
    hostname: 'a',
    address: '10.0.0.1',
    labels: { 'drover.dev/cluster': 't' },
    facts: sampleFacts({ hostname: 'a', machineId: 'a' }),
    fingerprint: { machineId: 'a', macs: [] },
    agentVersion: 't',
    ...(applied ? { applied } : {}),
  });

const heartbeat = (engine: Engine, a: AppliedRef) =>
  engine.handleHeartbeat({
    v: PROTOCOL_VERSION,
    type: 'heartbeat',
    nodeId: 'a',
    seq: 1,
    sentAt: new Date().toISOString(),
    digest: { ...a, health: '', instances: 0, unhealthy: 0 },
  });

async function setup(o: { store?: MemoryStore; key?: SigningKeyPair } = {}) {
  const clock = new ManualClock(1_000_000);
  const key = o.key ?? generateSigningKey();
  const store = o.store ?? new MemoryStore();
  const engine = manualEngine(clock, { store, signingKey: key });
  const bus = new GuardedBus(key.publicKey);
  engine.attachBus(bus);
  await engine.start();
  /** time passes in heartbeat steps; the agent heartbeats what it applied (a refused push is retried) */
  const idle = async () => {
    for (let i = 0; i < 20; i++) {
      await engine.queue.idle();
      clock.advance(1000);
      const a = bus.applied.get('a');
      if (a && engine.nodes.get('a')) heartbeat(engine, a);
    }
    await engine.queue.idle();
  };
  return { clock, key, store, engine, bus, idle };
}

/** Several plan changes, so the agent's applied generation is well above 1. */
async function churn(engine: Engine, idle: () => Promise<void>) {
  for (const replicas of [1, 0, 1, 0]) {
    await engine.applyTopology(parseTopology(webTopology(replicas), 't.yaml'));
    await idle();
  }
}

describe('plan generations survive remove + re-add and an older store', () => {
  it('a removed and re-added node gets plans above the generation its agent applied', async () => {
    const { engine, bus, idle } = await setup();
    await register(engine);
    await churn(engine, idle);
    const before = bus.applied.get('a')!;
    expect(before.generation).toBeGreaterThan(2);
    await engine.remove('a');
    // the agent comes back (restarted, or with a new token) and reports what it still runs
    await register(engine, before);
    await engine.applyTopology(parseTopology(webTopology(1), 't.yaml'));
    await idle();
    expect(bus.refusals).toEqual([]);
    const after = bus.applied.get('a')!;
    expect(after.coordinatorEpoch).toBe(before.coordinatorEpoch);
    expect(after.generation).toBeGreaterThan(before.generation);
    expect(engine.desiredPlan('a')?.instances.map((i) => i.id)).toEqual(['web#0']);
    await engine.close();
  });

  it('an agent ahead of the desired generation in the same epoch: the plan is re-issued above it', async () => {
    const { engine, bus, idle } = await setup();
    await register(engine);
    await engine.applyTopology(parseTopology(webTopology(1), 't.yaml'));
    await idle();
    const desired = engine.desiredPlan('a')!;
    // what an agent of an incarnation that lost count would report: same epoch, higher generation
    const ahead = {
      generation: desired.generation + 5,
      checksum: 'f'.repeat(64),
      coordinatorEpoch: engine.epoch,
    };
    bus.applied.set('a', ahead);
    heartbeat(engine, ahead);
    await idle();
    expect(engine.desiredPlan('a')!.generation).toBe(ahead.generation + 1);
    expect(bus.applied.get('a')).toMatchObject({
      generation: ahead.generation + 1,
      checksum: desired.checksum,
    });
    await engine.close();
  });

  it('a coordinator on a lost or older store raises its epoch above the one its agents applied', async () => {
    const key = generateSigningKey();
    const old = new MemoryStore();
    await old.create('meta/epoch', 4);
    const first = await setup({ store: old, key });
    expect(first.engine.epoch).toBe(5);
    await register(first.engine);
    await churn(first.engine, first.idle);
    const applied = first.bus.applied.get('a')!;
    expect(applied.coordinatorEpoch).toBe(5);
    await first.engine.close();

    // the store is gone: the new coordinator starts at epoch 1, the agent applied epoch 5
    const second = await setup({ key });
    expect(second.engine.epoch).toBe(1);
    second.bus.applied.set('a', applied);
    await register(second.engine, applied);
    await second.engine.applyTopology(parseTopology(webTopology(1), 't.yaml'));
    await second.idle();
    expect(second.engine.epoch).toBe(6);
    expect((await second.store.get<number>('meta/epoch'))?.value).toBe(6);
    expect(second.bus.applied.get('a')).toMatchObject({ coordinatorEpoch: 6 });
    expect(second.engine.desiredPlan('a')?.instances.map((i) => i.id)).toEqual(['web#0']);
    expect(second.engine.events.list({ kind: 'coordinator.epoch-raised' })).toHaveLength(1);
    // a report far beyond any plausible epoch is not followed
    heartbeat(second.engine, { ...applied, coordinatorEpoch: 1_000_000 });
    await second.idle();
    expect(second.engine.epoch).toBe(6);
    await second.engine.close();
  });
});

describe('the start-up epoch is durable before it is used', () => {
  /** A store whose "disk" is what the last flush() saw. */
  class FlushedStore extends MemoryStore {
    durableEpoch = 0;
    override async flush(): Promise<void> {
      await super.flush();
      this.durableEpoch = ((await this.get<number>('meta/epoch'))?.value as number | undefined) ?? 0;
    }
  }

  it('every pushed plan carries an epoch that was flushed before the push', async () => {
    const store = new FlushedStore();
    await store.create('meta/epoch', 2);
    await store.flush();
    const { engine, bus, idle } = await setup({ store });
    const seen: Array<{ epoch: number; durable: number }> = [];
    const push = bus.pushPlan.bind(bus);
    bus.pushPlan = async (nodeId, signed) => {
      seen.push({ epoch: signed.plan.coordinatorEpoch, durable: store.durableEpoch });
      return push(nodeId, signed);
    };
    await register(engine);
    await engine.applyTopology(parseTopology(webTopology(1), 't.yaml'));
    await idle();
    expect(seen.length).toBeGreaterThan(0);
    for (const s of seen) expect(s).toEqual({ epoch: 3, durable: 3 });
    await engine.close();
  });
});
