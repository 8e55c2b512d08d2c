import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet, poolNodes } from '../helpers/fleet.js';
import { webTopology } from '../helpers/repair-fleet.js';

/**
 * The coordinator on the JetStream store (`store.backend: jetstream`): real nats-server with
 * JetStream, the coordinator as a child process that is SIGKILLed and restarted, real agents. The
 * state lives in the bucket, not in a file: after the restart the assignments are the same and
 * the fleet converges again.
 */
describe('the coordinator on the JetStream store (child coordinator, real agents)', () => {
  let fleet: Fleet;
  beforeAll(async () => {
    fleet = await Fleet.start({
      subnet: '127.0.117',
      cluster: 't',
      coordinator: 'child',
      store: 'jetstream',
      nodes: poolNodes('web', 'w-1', 'w-2'),
    });
    await fleet.applyTopology(webTopology(2));
    await fleet.converged(60_000);
  }, 120_000);
  afterAll(() => fleet?.close());

  it('keeps its state in the bucket across a kill -9 and restart', async () => {
    const before = (await fleet.assignments()).map((a) => `${a.instanceId}@${a.nodeId}`).sort();
    expect(before).toHaveLength(2);
    expect(existsSync(join(fleet.coordinatorDataDir, 'state.json'))).toBe(false);
    await fleet.killCoordinator();
    await fleet.startCoordinator();
    await fleet.converged(60_000);
    const after = (await fleet.assignments()).map((a) => `${a.instanceId}@${a.nodeId}`).sort();
    expect(after).toEqual(before);
    expect(existsSync(join(fleet.coordinatorDataDir, 'state.json'))).toBe(false);
  }, 120_000);
});
