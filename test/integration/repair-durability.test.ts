import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Engine } from '../../coordinator/engine.js';
import type { Assignment } from '../../coordinator/model.js';
import { DEFAULT_REPAIR_OPTIONS, RepairPolicy, repairPortsFrom } from '../../coordinator/repair.js';
import { openLowdbStore } from '../../coordinator/store/index.js';
import { parseTopology } from '../../coordinator/topology/index.js';
import { ManualClock } from '../../lib/clock.js';
import { silentLogger } from '../../lib/logger.js';
import {
  generateSigningKey,
  type PlanResult,
  PROTOCOL_VERSION,
  type SignedPlan,
} from '../../protocol/index.js';
import { RecordingBus, TEST_TIMINGS } from '../helpers/api.js';
import { sampleFacts } from '../helpers/fixtures.js';
import { rmrf, tempDir } from '../helpers/proc.js';

/**
 * Write-ahead for repairs: a moved assignment must be on disk before anything acts on it (the
 * plan that starts the instance on its new node, an etcd `member add`). Otherwise a coordinator
 * that crashes in between comes back with the old assignment, moves the instance again later and
 * hands out the same epoch twice — for etcd, the same data dir, holding a member id that was
 * removed meanwhile, so the new member can never start.
 *
 * The real lowdb store, with its batching timer on an injected clock that is never advanced: only
 * an explicit flush makes a write durable. The bus reads the store file at the moment of each push.
 */

const TOPOLOGY = `apiVersion: drover.dev/v1
kind: Topology
metadata: { name: d }
cluster: { name: d }
customRoles:
  web: { command: /bin/sleep, args: ["1000"] }
roles:
  web: { replicas: 1 }
`;

class DiskCheckingBus extends RecordingBus {
  readonly seen: Array<{ nodeId: string; instances: string[]; onDisk: Array<Assignment | undefined> }> = [];
  constructor(private readonly file: string) {
    super();
  }
  override async pushPlan(nodeId: string, signed: SignedPlan): Promise<PlanResult> {
    const text = (() => {
      try {
        return readFileSync(this.file, 'utf8');
      } catch {
        return '{}';
      }
    })();
    const onDisk = signed.plan.instances.map((i) => findAssignment(JSON.parse(text), i.id));
    this.seen.push({ nodeId, instances: signed.plan.instances.map((i) => `${i.id}@${i.epoch}`), onDisk });
    return super.pushPlan(nodeId, signed);
  }
}

/** The assignment value for `instanceId` anywhere in the store file. */
function findAssignment(doc: unknown, instanceId: string): Assignment | undefined {
  let found: Assignment | undefined;
  const walk = (v: unknown) => {
    if (found || v === null || typeof v !== 'object') return;
    const o = v as Record<string, unknown>;
    if (o.instanceId === instanceId && typeof o.nodeId === 'string' && typeof o.epoch === 'number') {
      found = o as unknown as Assignment;
      return;
    }
    for (const x of Object.values(o)) walk(x);
  };
  walk(doc);
  return found;
}

describe('repair durability (lowdb store, injected clock)', () => {
  it('a moved assignment is durable before the plan that starts it on the new node is pushed', async () => {
    const dir = tempDir('durability');
    const file = join(dir, 'state.json');
    const clock = new ManualClock(1_000_000);
    const store = await openLowdbStore({ path: file, clock, flushDelayMs: 1_000_000 });
    const bus = new DiskCheckingBus(file);
    const engine = new Engine({
      store,
      logger: silentLogger,
      signingKey: generateSigningKey(),
      timings: TEST_TIMINGS,
      clock,
      repair: (e) =>
        new RepairPolicy(repairPortsFrom(e, { clock, log: silentLogger }), { ...DEFAULT_REPAIR_OPTIONS }),
    });
    engine.attachBus(bus);
    try {
      await engine.start();
      for (const [i, id] of ['a', 'b'].entries())
        await engine.handleRegister({
          v: PROTOCOL_VERSION,
          type: 'register',
          nodeId: id,
          hostname: id,
          address: `10.0.0.${i + 1}`,
          labels: { 'drover.dev/cluster': 'd' },
          facts: sampleFacts({ hostname: id, machineId: id }),
          fingerprint: { machineId: id, macs: [] },
          agentVersion: 't',
        });
      await engine.applyTopology(parseTopology(TOPOLOGY, 'd.yaml'));
      await engine.queue.idle();
      const from = engine.currentAssignments('d')[0]!.nodeId;
      const to = from === 'a' ? 'b' : 'a';
      bus.seen.length = 0;
      await engine.moveInstance('web#0', to);
      await engine.queue.idle();
      const moved = engine.currentAssignments('d')[0]!;
      expect([moved.nodeId, moved.epoch]).toEqual([to, 2]);
      const push = bus.seen.find((s) => s.nodeId === to && s.instances.includes('web#0@2'));
      expect(push, JSON.stringify(bus.seen)).toBeDefined();
      expect(push!.onDisk.map((a) => a && [a.nodeId, a.epoch])).toEqual([[to, 2]]);
    } finally {
      await engine.close();
      await store.close();
      rmrf(dir);
    }
  });
});
