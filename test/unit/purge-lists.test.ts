import { afterEach, describe, expect, it } from 'vitest';
import { PurgeLists } from '../../coordinator/engine/purge-lists.js';
import { Engine } from '../../coordinator/engine.js';
import { NodeRegistry } from '../../coordinator/nodes.js';
import { ClusterState } from '../../coordinator/state/cluster-state.js';
import { systemClock } from '../../lib/clock.js';
import { silentLogger } from '../../lib/logger.js';
import { generateSigningKey } from '../../protocol/index.js';
import { echoTopology, RecordingBus, startTestApi, TEST_TIMINGS, type TestApi } from '../helpers/api.js';

let t: TestApi | undefined;
let again: Engine | undefined;
afterEach(async () => {
  await again?.close();
  await t?.close();
  t = again = undefined;
});

describe('purge lists (drover clean --purge) are a port of the plan book, not of the HTTP layer', () => {
  it('an engine restarted on the same store, with no REST API built, puts the purge list in the plan', async () => {
    t = await startTestApi();
    for (const id of ['n1', 'n2']) await t.register(id);
    const put = await t.app.inject({
      method: 'PUT',
      url: '/v1/topology',
      headers: t.auth(t.admin),
      payload: echoTopology(1),
    });
    expect(put.statusCode, put.body).toBe(200);
    await t.settle();
    const owner = t.engine.allAssignments().find((a) => a.instanceId === 'echo#0')!.nodeId;
    const clean = await t.app.inject({
      method: 'POST',
      url: '/v1/clean',
      headers: t.auth(t.admin),
      payload: { purge: true },
    });
    expect(clean.statusCode, clean.body).toBe(200);
    await t.settle();
    const purge = t.engine.desiredPlan(owner)!.purge;
    expect(purge).toEqual([{ instanceId: 'echo#0', paths: ['/opt/echo.cjs'] }]);
    await t.app.close();
    await t.engine.close();

    // the composition root's order (coordinator/daemon.ts): read model, purge lists, engine — no buildApi
    const state = new ClusterState(new NodeRegistry(t.store, systemClock, TEST_TIMINGS));
    const lists = new PurgeLists(state, t.store);
    again = new Engine({
      store: t.store,
      logger: silentLogger,
      signingKey: generateSigningKey(),
      timings: TEST_TIMINGS,
      state,
      planAddons: (nodeId) => lists.addons(nodeId),
    });
    await lists.load();
    again.attachBus(new RecordingBus());
    await again.start();
    await again.queue.idle();
    expect(again.desiredPlan(owner)?.instances).toEqual([]);
    expect(again.desiredPlan(owner)?.purge).toEqual(purge);
    const other = owner === 'n1' ? 'n2' : 'n1';
    expect(again.desiredPlan(other)?.purge).toBeUndefined();
  });
});
