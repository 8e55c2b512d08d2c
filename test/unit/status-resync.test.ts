// A status lost on the way (NATS delivers at most once; a status is sent once, on change) is
// asked for again: heartbeats whose digest names instance states the held status does not, for
// two heartbeat intervals, bring one push of the unchanged plan, which an agent answers with its
// full status. The engine is real; the bus records pushes.
import { describe, expect, it } from 'vitest';
import { parseTopology } from '../../coordinator/topology/index.js';
import { ManualClock } from '../../lib/clock.js';
import { type NodeStatus, PROTOCOL_VERSION, type StatusDigest } from '../../protocol/index.js';
import { RecordingBus } from '../helpers/api.js';
import { manualEngine, registerNode, webTopology } from '../helpers/repair-fleet.js';

async function setup() {
  const clock = new ManualClock(1_000_000);
  const engine = manualEngine(clock);
  const bus = new RecordingBus();
  engine.attachBus(bus);
  await engine.start();
  await registerNode(engine, 'a', '10.0.0.1', { 'drover.dev/cluster': 't' });
  await engine.applyTopology(parseTopology(webTopology(1), 't.yaml'));
  await engine.queue.idle();
  const plan = engine.desiredPlan('a')!;
  const digest = (health: string): StatusDigest => ({
    generation: plan.generation,
    checksum: plan.checksum,
    coordinatorEpoch: engine.epoch,
    health,
    instances: 1,
    unhealthy: 0,
  });
  const status = (health: string): NodeStatus => ({
    v: PROTOCOL_VERSION,
    type: 'status',
    nodeId: 'a',
    seq: 1,
    sentAt: new Date(clock.now()).toISOString(),
    plan: {
      generation: plan.generation,
      checksum: plan.checksum,
      coordinatorEpoch: engine.epoch,
      state: 'applied',
    },
    digest: digest(health),
    instances: [
      {
        id: 'web#0',
        role: 'web',
        epoch: plan.instances[0]!.epoch,
        checksum: plan.instances[0]!.checksum,
        phase: 'Healthy',
        health: 'healthy',
        restarts: 0,
        startedAt: new Date(clock.now()).toISOString(),
        simulated: false,
      },
    ],
  });
  /** `n` heartbeats a second apart (the test timings' interval), each carrying `health` */
  const beat = async (n: number, health: string) => {
    for (let i = 0; i < n; i++) {
      clock.advance(1000);
      engine.handleHeartbeat({
        v: PROTOCOL_VERSION,
        type: 'heartbeat',
        nodeId: 'a',
        seq: i,
        sentAt: new Date(clock.now()).toISOString(),
        digest: digest(health),
      });
      await engine.queue.idle();
    }
  };
  const pushes = () => bus.pushes.filter((p) => p.nodeId === 'a').length;
  return { engine, bus, status, beat, pushes, plan };
}

describe('a lost status is asked for again', () => {
  it('heartbeats that agree with the held status bring no push', async () => {
    const { engine, status, beat, pushes } = await setup();
    engine.handleStatus(status('1111111111111111'));
    const before = pushes();
    await beat(30, '1111111111111111');
    expect(pushes()).toBe(before);
    await engine.close();
  });

  it('a disagreement for two intervals brings one push of the same plan, at most one per ten intervals', async () => {
    const { engine, bus, status, beat, pushes, plan } = await setup();
    engine.handleStatus(status('1111111111111111'));
    const before = pushes();
    // the status naming 2222… was lost; the heartbeats name it
    await beat(1, '2222222222222222');
    expect(pushes(), 'one interval may be a debounced status still on its way').toBe(before);
    await beat(2, '2222222222222222');
    expect(pushes()).toBe(before + 1);
    const again = bus.pushes.at(-1)!.signed.plan;
    expect({ generation: again.generation, checksum: again.checksum }).toEqual({
      generation: plan.generation,
      checksum: plan.checksum,
    });
    await beat(8, '2222222222222222');
    expect(pushes(), 'no second ask within ten intervals').toBe(before + 1);
    await beat(3, '2222222222222222');
    expect(pushes(), 'asked again after ten intervals').toBe(before + 2);
    // the status arrives: nothing more is asked
    engine.handleStatus(status('2222222222222222'));
    await beat(30, '2222222222222222');
    expect(pushes()).toBe(before + 2);
    expect(engine.nodes.liveness('a')!.status!.digest.health).toBe('2222222222222222');
    await engine.close();
  });

  it('no status at all while the heartbeats name instances: asked for too', async () => {
    const { engine, beat, pushes } = await setup();
    const before = pushes();
    await beat(4, '3333333333333333');
    expect(pushes()).toBe(before + 1);
    await engine.close();
  });
});
