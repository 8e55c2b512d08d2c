// The repair policy on an injected clock: exact timings, the storm guard, the rate limit and the
// last-healthy rule, with a real Engine over a MemoryStore and a recording bus (a narrow port).
import { describe, expect, it } from 'vitest';
import { Engine } from '../../coordinator/engine.js';
import { DEFAULT_REPAIR_OPTIONS, RepairPolicy } from '../../coordinator/repair.js';
import { MemoryStore } from '../../coordinator/store/index.js';
import { parseTopology } from '../../coordinator/topology/index.js';
import { ManualClock } from '../../lib/clock.js';
import { silentLogger } from '../../lib/logger.js';
import { generateSigningKey, PROTOCOL_VERSION } from '../../protocol/index.js';
import { RecordingBus, TEST_TIMINGS } from '../helpers/api.js';
import { sampleFacts } from '../helpers/fixtures.js';

const TOPOLOGY = (replicas: number) => `
apiVersion: drover.dev/v1
kind: Topology
metadata: { name: t }
cluster: { name: t }
customRoles:
  web:
    command: /bin/sleep
    args: ["1000"]
roles:
  web: { replicas: ${replicas} }
`;

async function fleet(n: number, replicas: number) {
  const clock = new ManualClock(1_000_000);
  const engine = new Engine({
    store: new MemoryStore(),
    logger: silentLogger,
    signingKey: generateSigningKey(),
    timings: TEST_TIMINGS,
    joinToken: 'j',
    clock,
  });
  const repair = new RepairPolicy(engine, { ...DEFAULT_REPAIR_OPTIONS }, clock, silentLogger);
  engine.attachBus(new RecordingBus());
  await engine.start();
  const ids = Array.from({ length: n }, (_, i) => `n${i + 1}`);
  for (const id of ids) {
    const facts = sampleFacts({ hostname: id, machineId: id });
    await engine.handleRegister({
      v: PROTOCOL_VERSION,
      type: 'register',
      nodeId: id,
      hostname: id,
      address: `10.0.0.${ids.indexOf(id) + 1}`,
      labels: {},
      facts,
      fingerprint: { machineId: id, macs: [] },
      agentVersion: 't',
      joinToken: 'j',
    });
  }
  await engine.applyTopology(parseTopology(TOPOLOGY(replicas), 't.yaml'));
  await engine.queue.idle();
  const alive = new Set(ids);
  /** every live node heartbeats and reports its instances Healthy */
  const beat = () => {
    for (const id of alive) {
      const plan = engine.desiredPlan(id);
      const digest = {
        generation: plan?.generation ?? 0,
        checksum: plan?.checksum ?? '',
        coordinatorEpoch: engine.epoch,
        health: 'x',
        instances: plan?.instances.length ?? 0,
        unhealthy: 0,
      };
      engine.handleStatus({
        v: PROTOCOL_VERSION,
        type: 'status',
        nodeId: id,
        seq: 0,
        sentAt: 'now',
        plan: { ...digest, state: 'applied' },
        digest,
        instances: (plan?.instances ?? []).map((i) => ({
          id: i.id,
          role: i.role,
          epoch: i.epoch,
          checksum: i.checksum,
          phase: 'Healthy',
          health: 'healthy',
          restarts: 0,
          simulated: false,
        })),
      });
    }
  };
  /** advances time in heartbeat steps, letting queued reconciles run */
  const advance = async (ms: number) => {
    for (let t = 0; t < ms; t += 500) {
      beat();
      clock.advance(500);
      await engine.queue.idle();
    }
  };
  const where = (inst: string) => engine.currentAssignments('t').find((a) => a.instanceId === inst)?.nodeId;
  const kinds = () => engine.events.list().map((e) => e.kind);
  beat();
  await engine.queue.idle();
  return { engine, repair, clock, alive, advance, where, kinds };
}

describe('repair policy (injected clock)', () => {
  it("reassigns an Unreachable node's instance only after unreachableAfter + reassignAfter, bumping the epoch", async () => {
    const f = await fleet(4, 2);
    const victim = f.where('web#0')!;
    f.alive.delete(victim);
    await f.advance(24_000); // 10 s to Unreachable + 15 s reassignAfter = 25 s
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
