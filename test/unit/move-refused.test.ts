import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { validateTopology } from '../../coordinator/topology/index.js';
import { echoTopology, startTestApi, type TestApi } from '../helpers/api.js';

let t: TestApi;
beforeEach(async () => {
  t = await startTestApi();
});
afterEach(async () => {
  await t.close();
});

const move = (to: string, force = false) =>
  t.app.inject({
    method: 'POST',
    url: '/v1/assignments/echo%230/move',
    headers: t.auth(t.operator),
    payload: { to, ...(force ? { force } : {}) },
  });

describe('operator moves: refused up front, or dropped loudly when the target stops fitting', () => {
  it('a held move whose target got cordoned meanwhile is dropped with role.move-refused, not kept for later', async () => {
    for (const id of ['n1', 'n2']) await t.register(id);
    await t.engine.applyTopology(validateTopology(echoTopology(1)));
    await t.settle();
    for (const id of ['n1', 'n2']) t.report(id);
    const from = t.engine.allAssignments().find((a) => a.instanceId === 'echo#0')!.nodeId;
    const to = from === 'n1' ? 'n2' : 'n1';
    // feasible, but echo#0 is the last healthy instance on a live node: the repair policy holds it
    const r = await move(to);
    expect(r.statusCode).toBe(200);
    await t.settle();
    expect(t.engine.events.list({ kind: 'repair.held' }).map((e) => e.instanceId)).toEqual(['echo#0']);
    // the target is cordoned meanwhile: placement refuses the move, the request is dropped
    await t.engine.setCordon(to, true);
    await t.settle();
    expect(t.engine.events.list({ kind: 'role.move-refused' })).toEqual([]);
    // the hold ends (the instance is no longer healthy where it is): placement gets the move now
    t.report(from, { phase: 'CrashLoop', lastError: 'exit status 1' });
    // the held move is looked at again on its own (every 2 s while held)
    const deadline = Date.now() + 8000;
    while (t.engine.events.list({ kind: 'role.move-refused' }).length === 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    const refused = t.engine.events.list({ kind: 'role.move-refused' });
    expect(refused).toHaveLength(1);
    expect(refused[0]!.message).toMatch(
      new RegExp(`^move dropped: echo#0: cannot move to ${to}: ${to} is (C|c)ordoned`),
    );
    expect(t.engine.allAssignments().find((a) => a.instanceId === 'echo#0')!.nodeId).toBe(from);
    // dropped means dropped: uncordoning does not revive it
    await t.engine.setCordon(to, false);
    t.engine.queue.add('cluster:default');
    await t.settle();
    expect(t.engine.allAssignments().find((a) => a.instanceId === 'echo#0')!.nodeId).toBe(from);
    expect(t.engine.events.list({ kind: 'role.move-refused' })).toHaveLength(1);
    // and asking again for a cordoned node is refused at once
    await t.engine.setCordon(to, true);
    const again = await move(to, true);
    expect(again.statusCode).toBe(409);
    expect(again.json()).toMatchObject({ code: 'DROVER_ERR_MOVE_REFUSED' });
  });
});
