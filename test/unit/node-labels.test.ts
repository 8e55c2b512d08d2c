import { afterEach, describe, expect, it } from 'vitest';
import { parseLabelArgs } from '../../cli/commands/label.js';
import { labelKeyError, labelValueError } from '../../coordinator/labels.js';
import { echoTopology, startTestApi, type TestApi } from '../helpers/api.js';

let t: TestApi;
afterEach(async () => {
  await t?.close();
});

interface Reply {
  code?: string;
  message: string;
  details: { field?: string };
  node: { labels: Record<string, string>; cluster: string };
  data: { operatorLabels: Record<string, string>; moving: string[] };
}

async function patch(id: string, body: unknown, token = t.operator) {
  const r = await t.app.inject({
    method: 'PATCH',
    url: `/v1/nodes/${id}/labels`,
    headers: t.auth(token),
    payload: body as object,
  });
  return { status: r.statusCode, json: r.json() as Reply };
}

const put = (topology: unknown) =>
  t.app.inject({ method: 'PUT', url: '/v1/topology', headers: t.auth(t.admin), payload: topology as object });

describe('label syntax (Kubernetes rules)', () => {
  it('accepts valid keys and values, names what is wrong with the others', () => {
    for (const k of ['pool', 'drover.dev/cluster', 'example.com/zone-a', 'a_b.c-d', 'A1'])
      expect(labelKeyError(k)).toBeUndefined();
    expect(labelKeyError('')).toMatch(/empty/);
    expect(labelKeyError('/x')).toMatch(/empty prefix/);
    expect(labelKeyError('Example.com/x')).toMatch(/prefix must be a DNS subdomain/);
    expect(labelKeyError('-x')).toMatch(/name must be 1–63 characters/);
    expect(labelKeyError('x'.repeat(64))).toMatch(/1–63/);
    expect(labelKeyError('a/b/c')).toMatch(/name must be/);
    for (const v of ['', 'v', 'control-plane', 'a.b_c']) expect(labelValueError('k', v)).toBeUndefined();
    expect(labelValueError('k', 'a b')).toMatch(/at most 63 characters/);
    expect(labelValueError('k', '-a')).toMatch(/starting and ending/);
    expect(labelValueError('k', 3)).toMatch(/must be a string/);
    expect(labelValueError('drover.dev/cluster', '')).toMatch(/must name a cluster/);
  });
});

describe('drover label arguments', () => {
  it('KEY=VALUE sets (the value may be empty or hold "="), KEY- removes; anything else is a usage error', () => {
    expect(parseLabelArgs(['pool=cp', 'zone-', 'empty=', 'a=b=c'])).toEqual({
      set: { pool: 'cp', empty: '', a: 'b=c' },
      remove: ['zone'],
    });
    for (const bad of [['pool'], ['=x'], ['-'], ['pool=a', 'pool-'], ['a=1', 'a=2']]) {
      let code: unknown;
      try {
        parseLabelArgs(bad);
      } catch (err) {
        code = (err as { exitCode?: number }).exitCode;
      }
      expect(code, bad.join(' ')).toBe(2);
    }
  });
});

describe('PATCH /v1/nodes/:id/labels (drover label)', () => {
  it('sets and removes operator labels, persistently; agent registrations do not wipe them', async () => {
    t = await startTestApi();
    await t.register('n1', { labels: { pool: 'a', zone: 'z1' } });
    const r = await patch('n1', { set: { pool: 'b', tier: 'gold' } });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(r.json.node.labels).toMatchObject({ pool: 'b', zone: 'z1', tier: 'gold' });
    expect(r.json.data.operatorLabels).toEqual({ pool: 'b', tier: 'gold' });
    expect(t.engine.events.list({ kind: 'node.labelled' }).map((e) => e.message)).toEqual([
      'node n1 labels: pool=b tier=gold',
    ]);
    // persisted in the node record
    const stored = await t.store.get<{ operatorLabels: Record<string, string> }>('nodes/n1');
    expect(stored?.value.operatorLabels).toEqual({ pool: 'b', tier: 'gold' });
    const detail = await t.app.inject({ method: 'GET', url: '/v1/nodes/n1', headers: t.auth(t.viewer) });
    expect(detail.json().operatorLabels).toEqual({ pool: 'b', tier: 'gold' });
    // the agent registers again (a restart) with its own, changed labels: the operator's stay and win
    await t.register('n1', { labels: { pool: 'a', zone: 'z2' } });
    expect(t.engine.nodes.get('n1')!.labels).toMatchObject({ pool: 'b', zone: 'z2', tier: 'gold' });
    expect(t.engine.nodes.get('n1')!.labels['drover.dev/arch']).toBeDefined();
    // removing the operator's override returns to the agent's value
    const rm = await patch('n1', { remove: ['pool', 'tier'] });
    expect(rm.status).toBe(200);
    expect(t.engine.nodes.get('n1')!.labels).toMatchObject({ pool: 'a', zone: 'z2' });
    expect(t.engine.nodes.get('n1')!.labels.tier).toBeUndefined();
    // the same change again changes nothing
    expect((await patch('n1', { set: { zone: 'z2' } })).status).toBe(200);
    expect((await patch('n1', { set: { zone: 'z2' } })).json.message).toBe('node n1 unchanged');
  });

  it('refuses bad input with the field named, changing nothing; viewers may not label', async () => {
    t = await startTestApi();
    await t.register('n1', { labels: { pool: 'a' } });
    const before = JSON.stringify(t.engine.nodes.get('n1'));
    const cases: Array<[unknown, RegExp, string]> = [
      [{ set: { 'Bad Key': 'x' } }, /invalid label: key "Bad Key"/, '/set/Bad Key'],
      [{ set: { ok: 'x', zone: 'not valid!' } }, /value "not valid!" of "zone"/, '/set/zone'],
      [{ set: { 'drover.dev/arch': 'arm64' } }, /derived from the node's facts/, '/set/drover.dev/arch'],
      [{ remove: ['pool'] }, /comes from the agent's configuration on n1/, '/remove/0'],
      [{ remove: ['nope'] }, /node n1 has no label nope/, '/remove/0'],
      [{ set: { a: '1' }, remove: ['a'] }, /both set and removed/, '/remove/0'],
      [{}, /nothing to change/, '/'],
      [{ set: { 'drover.dev/cluster': '' } }, /must name a cluster/, '/set/drover.dev/cluster'],
    ];
    for (const [body, msg, field] of cases) {
      const r = await patch('n1', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.json.code).toBe('DROVER_ERR_BAD_REQUEST');
      expect(r.json.message).toMatch(msg);
      expect(r.json.details.field).toBe(field);
    }
    expect((await patch('n1', { set: { a: '1' }, other: 1 })).status).toBe(400);
    expect((await patch('n1', { set: { a: 1 } })).json.message).toMatch(/value of "a" must be a string/);
    expect((await patch('n1', { set: { a: ['x'] } })).status).toBe(400);
    expect((await patch('n1', { remove: 'a' })).json.details.field).toBe('/remove');
    expect((await patch('n1', { set: { a: 'x' }, force: 'yes' })).json.details.field).toBe('/force');
    expect((await patch('n1', { set: { a: '1' } }, t.viewer)).status).toBe(403);
    expect((await patch('nope', { set: { a: '1' } })).status).toBe(404);
    expect(JSON.stringify(t.engine.nodes.get('n1'))).toBe(before);
    expect(t.engine.events.list({ kind: 'node.labelled' })).toEqual([]);
  });
});

describe('cluster membership is explicit', () => {
  it('unlabelled nodes are in cluster default; a topology of another name takes none of them', async () => {
    t = await startTestApi();
    for (const id of ['n1', 'n2']) await t.register(id);
    const other = await put(echoTopology(1, 'other'));
    expect(other.statusCode).toBe(200);
    await t.settle();
    expect(t.engine.currentAssignments('other')).toEqual([]);
    expect(t.engine.nodes.all().map((n) => t.engine.clusterOf(n))).toEqual(['default', 'default']);
    // the default topology gets them, and another topology appearing changes nothing
    expect((await put(echoTopology(2))).statusCode).toBe(200);
    await t.settle();
    const before = t.engine.currentAssignments('default');
    expect(before).toHaveLength(2);
    expect((await put(echoTopology(1, 'third'))).statusCode).toBe(200);
    await t.settle();
    expect(t.engine.currentAssignments('default')).toEqual(before);
    expect(t.engine.nodes.all().map((n) => t.engine.clusterOf(n))).toEqual(['default', 'default']);
  });

  it('a pin to a node of another cluster says which cluster it is in and how to move it', async () => {
    t = await startTestApi();
    await t.register('n1', { labels: { 'drover.dev/cluster': 'a' } });
    const topo = echoTopology(1, 'b') as {
      roles?: Record<string, unknown>;
      customRoles: Record<string, unknown>;
    };
    topo.roles = { echo: { replicas: 1, pins: ['n1'] } };
    const r = await t.app.inject({
      method: 'PUT',
      url: '/v1/topology?dryRun=true',
      headers: t.auth(t.admin),
      payload: topo,
    });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json().unplaced[0].reason).toBe(
      'echo#0: pinned to node n1, which is in cluster a, not b: a node joins a cluster only explicitly (`drover label n1 drover.dev/cluster=b`)',
    );
  });

  it('moving a node that runs instances is refused unless forced; forced, they leave it and the move is an event', async () => {
    t = await startTestApi();
    for (const id of ['n1', 'n2']) await t.register(id);
    expect((await put(echoTopology(2))).statusCode).toBe(200);
    await t.settle();
    const refused = await patch('n1', { set: { 'drover.dev/cluster': 'b' } });
    expect(refused.status).toBe(409);
    expect(refused.json.message).toMatch(/node n1 still runs 1 instance\(s\) of cluster default \(echo#\d\)/);
    expect(t.engine.clusterOf(t.engine.nodes.get('n1')!)).toBe('default');
    const forced = await patch('n1', { set: { 'drover.dev/cluster': 'b' }, force: true });
    expect(forced.status).toBe(200);
    expect(forced.json.node.cluster).toBe('b');
    expect(forced.json.data.moving).toHaveLength(1);
    await t.settle();
    expect(t.engine.currentAssignments('default').every((a) => a.nodeId === 'n2')).toBe(true);
    // n1 is in a cluster without a topology: an empty plan, and an event says what it stops
    expect(t.engine.desiredPlan('n1')!.instances).toEqual([]);
    expect(t.engine.events.list({ kind: 'node.orphaned' }).map((e) => e.nodeId)).toEqual(['n1']);
    expect(t.engine.events.list({ kind: 'node.cluster-changed' })).toHaveLength(1);
    // back to default by removing the operator's label (no instances of b run on it: allowed)
    expect((await patch('n1', { remove: ['drover.dev/cluster'] })).json.node.cluster).toBe('default');
  });
});
