// A leader cut off by a partition keeps its subscriptions on the server until its UNSUB gets
// through (the link must come back first). The leader that took over must still get every
// agent report: its subscriptions are no queue group a ghost could take a share of. Real
// nats-server and coordinator; the ghost is a raw connection as the coordinator's identity
// subscribed as the old leader was (queue group `drover-coordinator`) that never answers.
import { describe, expect, it } from 'vitest';
import { compileCoordinatorOptions } from '../../coordinator/config.js';
import { startCoordinator } from '../../coordinator/daemon.js';
import { silentLogger } from '../../lib/logger.js';
import { encode, PROTOCOL_VERSION, subjects } from '../../protocol/index.js';
import { sampleFacts } from '../helpers/fixtures.js';
import { autoCleanup, rmrf, tempDir } from '../helpers/proc.js';
import { startNats, waitFor } from '../helpers/servers.js';

describe('a ghost subscriber on the bus takes nothing from the leader', () => {
  it('every heartbeat reaches the coordinator while a queue-group ghost listens', async () => {
    const nats = await startNats();
    const dataDir = tempDir('coord-ghost');
    const h = await startCoordinator(
      compileCoordinatorOptions({
        flags: {
          'data-dir': dataDir,
          'nats-servers': nats.url,
          'bus-dir': nats.bus.auth.dir,
          'api-listen': '127.0.0.1:0',
        },
      }),
      silentLogger,
    );
    const ghost = await nats.connectAs({ coordinator: true });
    const node = await nats.connectAs({ nodeId: 'n1' });
    autoCleanup(async () => {
      await ghost.close();
      await node.close();
      await h.close();
      rmrf(dataDir);
    });
    let stolen = 0;
    for (const s of [subjects.heartbeatAll(), subjects.statusAll(), subjects.registerAll()])
      ghost.subscribe(s, { queue: 'drover-coordinator', callback: () => void stolen++ });
    await ghost.flush();
    // registration is a request: with the ghost in a queue group beside the leader, some would go unanswered
    for (let i = 0; i < 10; i++) {
      const r = await node.request(
        subjects.register('n1'),
        encode({
          v: PROTOCOL_VERSION,
          type: 'register',
          nodeId: 'n1',
          hostname: 'n1',
          address: '10.0.0.1',
          labels: {},
          facts: sampleFacts({ hostname: 'n1' }),
          fingerprint: { machineId: 'm1', macs: [] },
          agentVersion: 't',
        }),
        { timeout: 3000 },
      );
      expect(JSON.parse(new TextDecoder().decode(r.data))).toMatchObject({ accepted: true });
    }
    const before = h.bus.counters.heartbeats;
    for (let i = 0; i < 40; i++)
      node.publish(
        subjects.heartbeat('n1'),
        encode({
          v: PROTOCOL_VERSION,
          type: 'heartbeat',
          nodeId: 'n1',
          seq: i,
          sentAt: new Date().toISOString(),
          digest: {
            generation: 0,
            checksum: '',
            coordinatorEpoch: 0,
            health: '',
            instances: 0,
            unhealthy: 0,
          },
        }),
      );
    await node.flush();
    await waitFor(
      'all 40 heartbeats at the coordinator',
      () => h.bus.counters.heartbeats - before >= 40 || undefined,
      {
        timeoutMs: 5000,
      },
    );
    expect(h.bus.counters.heartbeats - before).toBe(40);
    // the ghost heard every one too (in a queue group shared with the leader it would have taken about half away)
    await ghost.flush();
    await waitFor('the ghost heard them too', () => stolen >= 50 || undefined, { timeoutMs: 5000 });
  });
});
