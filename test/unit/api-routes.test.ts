import type { TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { schemas } from '../../coordinator/api/index.js';
import { echoTopology, startTestApi, type TestApi } from '../helpers/api.js';

// biome-ignore lint/suspicious/noExplicitAny: response bodies are JSON checked by the assertions
type Body = any;

let t: TestApi;
beforeEach(async () => {
  t = await startTestApi();
});
afterEach(async () => {
  await t.close();
});

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';
async function call(
  method: Method,
  url: string,
  token?: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  const res = await t.app.inject({
    method,
    url,
    headers: { ...(token ? t.auth(token) : {}), ...headers },
    ...(body === undefined ? {} : typeof body === 'string' ? { payload: body } : { payload: body as object }),
  });
  let json: Body;
  try {
    json = res.json();
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, json, body: res.body, headers: res.headers };
}

function conforms(schema: TSchema, value: unknown): void {
  const errs = [...Value.Errors(schema, value)].slice(0, 3).map((e) => `${e.path}: ${e.message}`);
  expect(errs).toEqual([]);
}

/** Three approved nodes and the echo topology (2 replicas) applied and reported healthy. */
async function fleet(replicas = 2): Promise<void> {
  for (const id of ['n1', 'n2', 'n3']) await t.register(id);
  const r = await call('PUT', '/v1/topology', t.admin, echoTopology(replicas));
  expect(r.status).toBe(200);
  await t.settle();
  for (const id of ['n1', 'n2', 'n3']) t.report(id);
}

function nodesOf(role = 'echo'): string[] {
  return t.engine
    .allAssignments()
    .filter((a) => a.role === role)
    .map((a) => a.nodeId)
    .sort();
}

describe('health, readiness, docs', () => {
  it('/healthz and /readyz need no token; /readyz is 503 until NATS is connected', async () => {
    expect(await call('GET', '/healthz')).toMatchObject({ status: 200, json: { status: 'ok' } });
    expect(await call('GET', '/readyz')).toMatchObject({
      status: 200,
      json: { status: 'ready', checks: { engine: true, nats: true } },
    });
    const down = await startTestApi({ natsConnected: () => false });
    try {
      const r = await down.app.inject({ method: 'GET', url: '/readyz' });
      expect(r.statusCode).toBe(503);
      expect(r.json()).toMatchObject({ status: 'not ready', checks: { nats: false } });
    } finally {
      await down.close();
    }
  });

  it('serves the OpenAPI document with every route of the issue, and the dashboard page', async () => {
    const r = await call('GET', '/docs/json');
    expect(r.status).toBe(200);
    const paths = Object.keys(r.json.paths);
    for (const p of [
      '/healthz',
      '/readyz',
      '/metrics',
      '/v1/topology',
      '/v1/nodes',
      '/v1/nodes/{id}',
      '/v1/nodes/{id}/approve',
      '/v1/nodes/{id}/cordon',
      '/v1/nodes/{id}/uncordon',
      '/v1/nodes/{id}/drain',
      '/v1/nodes/{id}/repair',
      '/v1/roles',
      '/v1/assignments',
      '/v1/assignments/{instance}/move',
      '/v1/events',
      '/v1/tasks',
      '/v1/tasks/{id}',
      '/v1/tokens',
    ])
      expect(paths).toContain(p);
    expect(r.json.paths['/v1/topology'].put.description).toMatch(/Needs a token with role viewer/);
    expect(r.json.paths['/v1/tokens'].post.description).toMatch(/role admin/);
    const docs = await call('GET', '/docs');
    expect(docs.status).toBe(200);
    expect(docs.body).toContain('/docs/json');
    const page = await call('GET', '/');
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.body).toContain('simulated');
  });

  it('answers unknown routes with DROVER_ERR_NOT_FOUND', async () => {
    expect(await call('GET', '/v1/nope', t.viewer)).toMatchObject({
      status: 404,
      json: { code: 'DROVER_ERR_NOT_FOUND' },
    });
  });
});

describe('authentication and roles', () => {
  const mutating: Array<[Method, string, unknown?]> = [
    ['PUT', '/v1/topology', echoTopology()],
    ['POST', '/v1/nodes/n1/approve'],
    ['POST', '/v1/nodes/n1/cordon'],
    ['POST', '/v1/nodes/n1/uncordon'],
    ['POST', '/v1/nodes/n1/drain'],
    ['POST', '/v1/nodes/n1/repair', {}],
    ['DELETE', '/v1/nodes/n1'],
    ['POST', '/v1/assignments/echo%230/move', { to: 'n2' }],
    ['POST', '/v1/tasks', { nodeId: 'n1', kind: 'restart' }],
    ['POST', '/v1/tokens', { name: 'x', role: 'viewer' }],
    ['POST', '/v1/etcd/members/etcd-0/replace', {}],
  ];

  it('refuses a missing token with 401 and does not tell an unauthenticated caller where the admin token is', async () => {
    for (const url of ['/v1/nodes', '/v1/roles', '/v1/events', '/metrics', '/v1/status']) {
      const r = await call('GET', url);
      expect(r.status, url).toBe(401);
      expect(r.json.code).toBe('DROVER_ERR_UNAUTHORIZED');
    }
    const m = (await call('GET', '/v1/nodes')).json.message;
    expect(m).toMatch(/missing bearer token/);
    expect(m).not.toMatch(/admin-token|data ?dir|\//);
  });

  it('refuses a wrong token and a malformed header with 401', async () => {
    expect((await call('GET', '/v1/nodes', 'drv_wrong')).status).toBe(401);
    const r = await t.app.inject({
      method: 'GET',
      url: '/v1/nodes',
      headers: { authorization: `Basic ${t.admin}` },
    });
    expect(r.statusCode).toBe(401);
  });

  it('refuses a viewer token on every mutating route with 403 and changes nothing', async () => {
    await t.register('n1');
    await t.register('n2');
    const before = JSON.stringify(t.engine.nodes.all());
    for (const [m, url, body] of mutating) {
      const r = await call(m, url, t.viewer, body);
      expect(r.status, `${m} ${url}`).toBe(403);
      expect(r.json.code).toBe('DROVER_ERR_FORBIDDEN');
      expect(r.json.message).toMatch(/role viewer/);
    }
    expect(JSON.stringify(t.engine.nodes.all())).toBe(before);
    expect(t.engine.listTopologies()).toEqual([]);
    expect(t.bus.tasks).toEqual([]);
  });

  it('lets operators act on nodes but not change the topology or tokens', async () => {
    await t.register('n1');
    expect((await call('POST', '/v1/nodes/n1/cordon', t.operator)).status).toBe(200);
    const put = await call('PUT', '/v1/topology', t.operator, echoTopology());
    expect(put.status).toBe(403);
    expect(put.json.message).toMatch(/applying a topology needs admin/);
    expect((await call('GET', '/v1/tokens', t.operator)).status).toBe(403);
    expect(t.engine.listTopologies()).toEqual([]);
  });

  it('rate-limits failed authentication per client: 429 after 10 failures, but a good token still passes', async () => {
    for (let i = 0; i < 10; i++) expect((await call('GET', '/v1/nodes', `drv_guess${i}`)).status).toBe(401);
    const r = await call('GET', '/v1/nodes', 'drv_guess10');
    expect(r.status).toBe(429);
    expect(r.json.code).toBe('DROVER_ERR_RATE_LIMITED');
    expect(Number(r.headers['retry-after'])).toBeGreaterThan(0);
    expect((await call('GET', '/v1/nodes')).status).toBe(429);
    expect((await call('GET', '/v1/nodes', t.admin)).status).toBe(200);
    // public endpoints stay reachable
    expect((await call('GET', '/healthz')).status).toBe(200);
  });
});

describe('validation errors name the field and change nothing', () => {
  it('body fields (JSON pointer), unknown fields, path and query parameters', async () => {
    await t.register('n1');
    let r = await call('POST', '/v1/tasks', t.operator, { nodeId: 'n1' });
    expect(r).toMatchObject({
      status: 400,
      json: { code: 'DROVER_ERR_BAD_REQUEST', details: { field: '/kind', in: 'body' } },
    });
    r = await call('POST', '/v1/tasks', t.operator, { nodeId: 'n1', kind: 'explode' });
    expect(r.json.details.field).toBe('/kind');
    r = await call('POST', '/v1/tasks', t.operator, { nodeId: 'n1', kind: 'restart', colour: 'red' });
    expect(r.json).toMatchObject({ code: 'DROVER_ERR_BAD_REQUEST', details: { field: '/colour' } });
    expect(r.json.message).toMatch(/not an allowed field/);
    r = await call('POST', '/v1/assignments/echo%230/move', t.operator, { to: 'bad node!' });
    expect(r.json.details.field).toBe('/to');
    r = await call('GET', '/v1/nodes/bad.id', t.viewer);
    expect(r.json).toMatchObject({ code: 'DROVER_ERR_BAD_REQUEST', details: { field: '/id', in: 'params' } });
    r = await call('GET', '/v1/events?limit=0', t.viewer);
    expect(r.json).toMatchObject({
      code: 'DROVER_ERR_BAD_REQUEST',
      details: { field: '/limit', in: 'querystring' },
    });
    r = await call('POST', '/v1/tokens', t.admin, { name: 'x', role: 'root' });
    expect(r.json.details.field).toBe('/role');
    expect(t.bus.tasks).toEqual([]);
    expect(t.tokens.list()).toHaveLength(3);
  });

  it('malformed JSON and unsupported content types', async () => {
    let r = await call('POST', '/v1/tasks', t.operator, '{"nodeId":', { 'content-type': 'application/json' });
    expect(r).toMatchObject({ status: 400, json: { code: 'DROVER_ERR_BAD_JSON' } });
    r = await call('POST', '/v1/tasks', t.operator, 'nodeId: n1', { 'content-type': 'application/yaml' });
    expect(r).toMatchObject({ status: 415, json: { code: 'DROVER_ERR_UNSUPPORTED_MEDIA_TYPE' } });
  });

  it('an invalid topology (JSON or YAML) is refused with its path as details.field; nothing is applied', async () => {
    await t.register('n1');
    const bad = echoTopology();
    (bad.roles as Body).echo.replicas = -1;
    let r = await call('PUT', '/v1/topology', t.admin, bad);
    expect(r.status).toBe(400);
    expect(r.json.code).toBe('DROVER_ERR_TOPOLOGY_INVALID');
    expect(r.json.details.field).toBe('roles.echo.replicas');
    r = await call('PUT', '/v1/topology', t.admin, toYaml(bad), { 'content-type': 'application/yaml' });
    expect(r.json.details.field).toBe('roles.echo.replicas');
    expect(r.json.message).toMatch(/line \d+/);
    r = await call('PUT', '/v1/topology', t.admin, 'roles: [unclosed', {
      'content-type': 'application/yaml',
    });
    expect(r).toMatchObject({ status: 400, json: { code: 'DROVER_ERR_TOPOLOGY_INVALID' } });
    r = await call('PUT', '/v1/topology?dryRun=maybe', t.admin, echoTopology());
    expect(r.json).toMatchObject({ code: 'DROVER_ERR_BAD_REQUEST', details: { field: '/dryRun' } });
    expect(t.engine.listTopologies()).toEqual([]);
    expect((await call('GET', '/v1/topology', t.viewer)).json.code).toBe('DROVER_ERR_TOPOLOGY_NOT_FOUND');
    expect(t.engine.events.list({ kind: 'topology' })).toEqual([]);
  });
});

describe('topology', () => {
  it('dry run returns the diff and applies nothing; apply then diffs against what is applied', async () => {
    for (const id of ['n1', 'n2', 'n3']) await t.register(id);
    await t.settle();
    const pushesBefore = t.bus.pushes.length;
    const dry = await call('PUT', '/v1/topology?dryRun=true', t.viewer, echoTopology(2));
    expect(dry.status).toBe(200);
    conforms(schemas.TopologyDiff, dry.json);
    expect(dry.json).toMatchObject({
      dryRun: true,
      cluster: 'default',
      moved: [],
      removed: [],
      unplaced: [],
    });
    expect(dry.json.added.map((a: Body) => a.instanceId).sort()).toEqual(['echo#0', 'echo#1']);
    expect(dry.json.nodesChanged).toHaveLength(2);
    await t.settle();
    expect(t.engine.listTopologies()).toEqual([]);
    expect(t.engine.allAssignments()).toEqual([]);
    expect(t.bus.pushes.length).toBe(pushesBefore);

    const applied = await call('PUT', '/v1/topology', t.admin, toYaml(echoTopology(2)), {
      'content-type': 'application/yaml',
    });
    expect(applied.status).toBe(200);
    expect(applied.json.dryRun).toBe(false);
    await t.settle();
    expect(nodesOf()).toHaveLength(2);
    expect((await call('GET', '/v1/topology', t.viewer)).json.metadata.name).toBe('default');
    expect((await call('GET', '/v1/topologies', t.viewer)).json.items).toHaveLength(1);

    const up = await call('PUT', '/v1/topology?dryRun=true', t.viewer, echoTopology(3));
    expect(up.json.added.map((a: Body) => a.instanceId)).toEqual(['echo#2']);
    expect(up.json.removed).toEqual([]);
    const down = await call('PUT', '/v1/topology?dryRun=true', t.viewer, echoTopology(1));
    expect(down.json.removed.map((a: Body) => a.instanceId)).toEqual(['echo#1']);
    expect(down.json.added).toEqual([]);
    const many = await call('PUT', '/v1/topology?dryRun=true', t.viewer, echoTopology(5));
    expect(many.json.unplaced.length).toBe(2);
    expect(many.json.unplaced[0].reason).toBeTruthy();
    expect(nodesOf()).toHaveLength(2);
  });
});

describe('etcd members', () => {
  const ETCD = {
    apiVersion: 'drover.dev/v1',
    kind: 'Topology',
    metadata: { name: 'default' },
    cluster: { name: 'default' },
    roles: { etcd: { replicas: 3 } },
  };

  it('replace?dryRun=true (a viewer may ask) answers the verdict and changes nothing: store, events, queue, repair memory', async () => {
    for (const id of ['n1', 'n2', 'n3']) await t.register(id);
    expect((await call('PUT', '/v1/topology', t.admin, ETCD)).status).toBe(200);
    await t.settle();
    for (const id of ['n1', 'n2', 'n3']) t.report(id);
    await t.settle();
    const repair = t.engine.repair as unknown as { memoryView(): { immediate: ReadonlySet<string> } };
    const state = () => ({
      revision: t.store.revision(),
      events: t.engine.events.list().length,
      queued: t.engine.queue.length + t.engine.queue.active,
      immediate: [...repair.memoryView().immediate],
      pushes: t.bus.pushes.length,
      tasks: t.bus.tasks.length,
    });
    const before = state();
    const dry = await call('POST', '/v1/etcd/members/etcd-1/replace?dryRun=true', t.viewer, {});
    expect(dry.status).toBe(200);
    conforms(schemas.EtcdMemberReplaceResult, dry.json);
    const on = t.engine.allAssignments().find((a) => a.instanceId === 'etcd#1')!.nodeId;
    expect(dry.json).toMatchObject({
      ok: true,
      data: {
        cluster: 'default',
        instanceId: 'etcd#1',
        nodeId: on,
        dryRun: true,
        verdict: { replace: true },
      },
    });
    expect(dry.json.message).toMatch(/^dry run: .*would be replaced now; nothing was done$/);
    expect(state()).toEqual(before);
    await t.settle();
    expect(state()).toEqual(before);
    // no such member: 404, dry run or not
    const none = await call('POST', '/v1/etcd/members/etcd-9/replace?dryRun=true', t.viewer, {});
    expect(none.status).toBe(404);
    expect(none.json.code).toBe('DROVER_ERR_INSTANCE_NOT_FOUND');
    expect((await call('POST', '/v1/etcd/members/etcd-1/replace?dryRun=nope', t.viewer, {})).status).toBe(
      400,
    );
    expect(state()).toEqual(before);
    // the real request (operator): announced, carried out by the reconcile
    const real = await call('POST', '/v1/etcd/members/etcd-1/replace', t.operator, {});
    expect(real.status).toBe(200);
    conforms(schemas.EtcdMemberReplaceResult, real.json);
    expect(real.json.data).toMatchObject({ instanceId: 'etcd#1', dryRun: false, verdict: { replace: true } });
    expect(real.json.message).toMatch(/^replacing etcd member etcd#1/);
    expect(t.engine.events.list().map((e) => e.kind)).toContain('etcd.repair-requested');
  });
});

describe('nodes', () => {
  it('lists nodes with state, instances and heartbeat; shows one with facts and events', async () => {
    await fleet();
    const list = await call('GET', '/v1/nodes', t.viewer);
    expect(list.status).toBe(200);
    conforms(schemas.List(schemas.NodeView), list.json);
    expect(list.json.items.map((n: Body) => [n.id, n.state])).toEqual([
      ['n1', 'Ready'],
      ['n2', 'Ready'],
      ['n3', 'Ready'],
    ]);
    const withEcho = list.json.items.filter((n: Body) => n.instances.length);
    expect(withEcho).toHaveLength(2);
    expect(withEcho[0].instances[0]).toMatchObject({ role: 'echo', phase: 'Healthy', assigned: true });
    expect(withEcho[0].plan.converged).toBe(true);
    expect(list.json.items[0].lastHeartbeat).toMatch(/^\d{4}-/);
    const one = await call('GET', '/v1/nodes/n1', t.viewer);
    conforms(schemas.NodeDetail, one.json);
    expect(one.json.facts.cpu.cores).toBe(4);
    expect(one.json.events.some((e: Body) => e.kind === 'node.joined')).toBe(true);
    expect((await call('GET', '/v1/nodes?state=ready', t.viewer)).json.items).toHaveLength(3);
    expect(await call('GET', '/v1/nodes/ghost', t.viewer)).toMatchObject({
      status: 404,
      json: { code: 'DROVER_ERR_NODE_NOT_FOUND' },
    });
  });

  it('approves a pending node', async () => {
    await t.register('n8');
    // a host name n8 has already: held Pending until an operator approves it
    await t.register('n9', { hostname: 'host-n8' });
    expect((await call('GET', '/v1/nodes/n9', t.viewer)).json.state).toBe('Pending');
    const r = await call('POST', '/v1/nodes/n9/approve', t.operator);
    expect(r).toMatchObject({ status: 200, json: { ok: true, node: { id: 'n9', approved: true } } });
    expect(t.engine.nodes.get('n9')?.approved).toBe(true);
  });

  it('cordon keeps new instances off; drain moves instances off; uncordon ends it', async () => {
    await fleet();
    const victim = nodesOf()[0]!;
    let r = await call('POST', `/v1/nodes/${victim}/cordon`, t.operator);
    expect(r.json.node.state).toBe('Cordoned');
    await t.settle();
    expect(nodesOf()).toContain(victim); // cordon moves nothing
    r = await call('POST', `/v1/nodes/${victim}/drain`, t.operator);
    expect(r.status).toBe(200);
    expect(r.json.message).toMatch(/1 instance\(s\) will move/);
    await t.settle();
    expect(nodesOf()).not.toContain(victim);
    expect(nodesOf()).toHaveLength(2);
    expect((await call('GET', `/v1/nodes/${victim}`, t.viewer)).json.state).toBe('Draining');
    expect(t.engine.events.list({ kind: 'role.moved' }).length).toBe(1);
    r = await call('POST', `/v1/nodes/${victim}/uncordon`, t.operator);
    expect(r.json.node).toMatchObject({ state: 'Ready', cordoned: false });
  });

  it('remove of a live node running instances is refused (409 DROVER_ERR_NODE_LIVE) and changes nothing', async () => {
    await fleet();
    const victim = nodesOf()[0]!;
    const before = t.engine.currentAssignments('default').map((a) => `${a.instanceId}@${a.nodeId}`);
    const r = await call('DELETE', `/v1/nodes/${victim}`, t.operator);
    expect(r.status).toBe(409);
    expect(r.json).toMatchObject({ code: 'DROVER_ERR_NODE_LIVE', details: { nodeId: victim } });
    expect(r.json.message).toMatch(/drain it first.*--force/);
    await t.settle();
    expect(t.engine.nodes.get(victim)).toBeDefined();
    expect(t.engine.currentAssignments('default').map((a) => `${a.instanceId}@${a.nodeId}`)).toEqual(before);
    expect((await call('DELETE', `/v1/nodes/${victim}?force=maybe`, t.operator)).status).toBe(400);
  });

  it('remove --force fences the live node first (its agent applies an empty plan), then forgets it and places its instances elsewhere', async () => {
    await fleet();
    const victim = nodesOf()[0]!;
    const r = await call('DELETE', `/v1/nodes/${victim}?force=true&timeout=5`, t.operator);
    expect(r).toMatchObject({ status: 200, json: { ok: true } });
    expect(r.json.message).toMatch(/after its agent stopped its instances/);
    const last = t.bus.pushes.filter((p) => p.nodeId === victim).at(-1)!;
    expect(last.signed.plan.instances).toEqual([]); // the fence: an empty plan, acknowledged
    expect(t.engine.events.list({ kind: 'node.removed' })[0]!.message).toMatch(/fenced first/);
    await t.settle();
    expect(t.engine.nodes.get(victim)).toBeUndefined();
    expect(nodesOf()).not.toContain(victim);
    expect(nodesOf()).toHaveLength(2);
    expect((await call('DELETE', `/v1/nodes/${victim}`, t.operator)).status).toBe(404);
  });

  it('repair and move answer 501 until the engine supports them, or act when it does', async () => {
    await fleet();
    const repair = await call('POST', '/v1/nodes/n1/repair', t.operator, { force: true });
    if (
      typeof (t.engine as Body).repairNode === 'function' ||
      typeof (t.engine as Body).repair === 'function'
    )
      expect(repair.status).toBe(200);
    else expect(repair.json).toMatchObject({ code: 'DROVER_ERR_NOT_IMPLEMENTED' });
    const from = t.engine.allAssignments().find((a) => a.instanceId === 'echo#0')!.nodeId;
    const free = ['n1', 'n2', 'n3'].find((n) => !nodesOf().includes(n))!;
    const move = await call('POST', '/v1/assignments/echo%230/move', t.operator, { to: free });
    if (typeof (t.engine as Body).moveInstance === 'function') {
      expect(move.status).toBe(200);
      await t.settle();
      expect(t.engine.allAssignments().find((a) => a.instanceId === 'echo#0')!.nodeId).toBe(free);
    } else {
      expect(move).toMatchObject({ status: 501, json: { code: 'DROVER_ERR_NOT_IMPLEMENTED' } });
      expect(t.engine.allAssignments().find((a) => a.instanceId === 'echo#0')!.nodeId).toBe(from);
    }
    expect((await call('POST', '/v1/assignments/echo%2399/move', t.operator, { to: 'n1' })).json.code).toBe(
      'DROVER_ERR_INSTANCE_NOT_FOUND',
    );
    expect((await call('POST', '/v1/assignments/echo%230/move', t.operator, { to: 'ghost' })).json.code).toBe(
      'DROVER_ERR_NODE_NOT_FOUND',
    );
  });
});

describe('roles, assignments, status', () => {
  it('reports desired and healthy counts, and Degraded or Unschedulable reasons', async () => {
    await fleet();
    let roles = await call('GET', '/v1/roles', t.viewer);
    conforms(schemas.List(schemas.RoleView), roles.json);
    expect(roles.json.items).toHaveLength(1);
    expect(roles.json.items[0]).toMatchObject({
      name: 'echo',
      desired: 2,
      placed: 2,
      healthy: 2,
      status: 'Healthy',
      reasons: [],
    });
    let st = await call('GET', '/v1/status', t.viewer);
    conforms(schemas.StatusView, st.json);
    expect(st.json).toMatchObject({ converged: true, nodes: { Ready: 3 } });

    // a role without a probe is healthy while Running; Starting is progress, not degradation
    const [bad, other] = nodesOf();
    t.report(other!, { phase: 'Running' });
    expect((await call('GET', '/v1/roles/echo', t.viewer)).json).toMatchObject({
      status: 'Healthy',
      healthy: 2,
    });
    t.report(other!, { phase: 'Starting' });
    roles = await call('GET', '/v1/roles/echo', t.viewer);
    expect(roles.json).toMatchObject({ status: 'Progressing', healthy: 1 });
    expect(roles.json.reasons).toEqual([
      expect.stringMatching(new RegExp(`^echo#\\d on ${other}: Starting$`)),
    ]);
    t.report(other!);
    t.report(bad!, { phase: 'CrashLoop', lastError: 'exit status 1' });
    roles = await call('GET', '/v1/roles/echo', t.viewer);
    expect(roles.json).toMatchObject({ status: 'Degraded', healthy: 1 });
    expect(roles.json.reasons[0]).toMatch(/CrashLoop: exit status 1/);
    st = await call('GET', '/v1/status', t.viewer);
    expect(st.json.converged).toBe(false);

    await call('PUT', '/v1/topology', t.admin, echoTopology(5));
    await t.settle();
    for (const id of ['n1', 'n2', 'n3']) t.report(id, { simulated: true });
    roles = await call('GET', '/v1/roles/echo', t.viewer);
    expect(roles.json).toMatchObject({
      status: 'Unschedulable',
      desired: 5,
      placed: 3,
      healthy: 3,
      simulated: 3,
    });
    // the two unplaced instances share one reason, so they share one line
    expect(roles.json.reasons.filter((r: string) => /unschedulable/.test(r))).toEqual([
      expect.stringMatching(
        /^echo#3 and echo#4 unschedulable: none of the 3 nodes can take it: n1, n2 and n3 /,
      ),
    ]);
    const asg = await call('GET', '/v1/assignments', t.viewer);
    expect(asg.json.items).toHaveLength(3);
    expect(asg.json.items[0]).toMatchObject({ role: 'echo', simulated: true, phase: 'Healthy' });
    expect(asg.json.unplaced).toHaveLength(2);
    expect(
      (await call('GET', '/v1/assignments?node=n1', t.viewer)).json.items.every(
        (a: Body) => a.nodeId === 'n1',
      ),
    ).toBe(true);
    expect((await call('GET', '/v1/roles/nope', t.viewer)).json.code).toBe('DROVER_ERR_ROLE_NOT_FOUND');
  });
});

describe('events', () => {
  it('lists with filters and since', async () => {
    await fleet();
    const all = await call('GET', '/v1/events', t.viewer);
    conforms(schemas.List(schemas.Event), all.json);
    expect(all.json.items.length).toBeGreaterThan(3);
    const nodes = await call('GET', '/v1/events?kind=node', t.viewer);
    expect(nodes.json.items.length).toBeGreaterThan(0);
    expect(nodes.json.items.every((e: Body) => e.kind.startsWith('node.'))).toBe(true);
    const n1 = await call('GET', '/v1/events?node=n1&limit=1', t.viewer);
    expect(n1.json.items).toHaveLength(1);
    expect(n1.json.items[0].nodeId).toBe('n1');
    const last = all.json.items.at(-1).seq;
    expect((await call('GET', `/v1/events?since=${last}`, t.viewer)).json.items).toEqual([]);
  });
});

describe('tasks', () => {
  it('runs a task: 202 running, then succeeded with the agent result; wait=true answers when done', async () => {
    await t.register('n1');
    const r = await call('POST', '/v1/tasks', t.operator, {
      nodeId: 'n1',
      kind: 'diagnostics',
      tailLines: 10,
    });
    expect(r.status).toBe(202);
    conforms(schemas.TaskRecord, r.json);
    expect(r.json).toMatchObject({
      state: 'running',
      createdBy: 'ops',
      request: { nodeId: 'n1', kind: 'diagnostics' },
    });
    await new Promise((res) => setTimeout(res, 20));
    const got = await call('GET', `/v1/tasks/${r.json.id}`, t.viewer);
    expect(got.json).toMatchObject({ state: 'succeeded', result: { ok: true } });
    expect(t.bus.tasks[0]).toMatchObject({ kind: 'diagnostics', nodeId: 'n1', tailLines: 10 });
    const w = await call('POST', '/v1/tasks?wait=true', t.operator, {
      nodeId: 'n1',
      kind: 'restart',
      instanceId: 'echo#0',
    });
    expect(w).toMatchObject({
      status: 200,
      json: { state: 'succeeded', result: { output: 'restart echo#0 done' } },
    });
    const list = await call('GET', '/v1/tasks', t.viewer);
    expect(list.json.items).toHaveLength(2);
    expect((await call('GET', '/v1/tasks?node=n2', t.viewer)).json.items).toHaveLength(0);
  });

  it('records an unreachable node as a failed task; unknown nodes and tasks are 404', async () => {
    await t.register('n1');
    t.bus.failTasks = true;
    const w = await call('POST', '/v1/tasks?wait=true', t.operator, { nodeId: 'n1', kind: 'restart' });
    expect(w.json).toMatchObject({ state: 'failed', error: { code: 'DROVER_ERR_NODE_UNREACHABLE' } });
    expect(
      (await call('POST', '/v1/tasks', t.operator, { nodeId: 'ghost', kind: 'restart' })).json.code,
    ).toBe('DROVER_ERR_NODE_NOT_FOUND');
    expect((await call('GET', '/v1/tasks/nope', t.viewer)).json.code).toBe('DROVER_ERR_TASK_NOT_FOUND');
  });
});

describe('tokens (admin)', () => {
  it('lists without secrets, creates a usable token, deletes it', async () => {
    const list = await call('GET', '/v1/tokens', t.admin);
    expect(list.json.items.map((x: Body) => x.name).sort()).toEqual(['ops', 'root', 'watcher']);
    expect(list.body).not.toMatch(/sha256|drv_/);
    const c = await call('POST', '/v1/tokens', t.admin, { name: 'ci-bot', role: 'operator' });
    expect(c.status).toBe(201);
    expect(c.json.token).toMatch(/^drv_/);
    await t.register('n1');
    expect((await call('POST', '/v1/nodes/n1/cordon', c.json.token)).status).toBe(200);
    expect((await call('DELETE', `/v1/tokens/${c.json.id}`, t.admin)).status).toBe(200);
    expect((await call('GET', '/v1/nodes', c.json.token)).status).toBe(401);
    expect((await call('DELETE', '/v1/tokens/nope', t.admin)).json.code).toBe('DROVER_ERR_TOKEN_NOT_FOUND');
    expect(t.engine.events.list({ kind: 'token' }).map((e) => e.kind)).toEqual([
      'token.created',
      'token.deleted',
    ]);
  });
});

describe('metrics', () => {
  it('exports nodes by state, instances by phase, reconciles, pushes and NATS status', async () => {
    await fleet();
    expect((await call('GET', '/metrics')).status).toBe(401);
    const r = await call('GET', '/metrics', t.viewer);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/text\/plain/);
    expect(r.body).toMatch(/drover_nodes\{state="Ready"\} 3/);
    expect(r.body).toMatch(/drover_instances\{phase="Healthy",simulated="false"\} 2/);
    expect(r.body).toMatch(/drover_reconcile_total\{kind="cluster",outcome="success"\} \d+/);
    expect(r.body).toMatch(/drover_reconcile_duration_seconds_bucket\{le="0.1",kind="node"\} \d+/);
    expect(r.body).toMatch(/drover_plan_pushes_total\{result="ok"\} [1-9]/);
    expect(r.body).toMatch(/drover_nats_connected 1/);
    expect(r.body).toMatch(/drover_converged 1/);
    expect(r.body).toMatch(/drover_api_auth_failures_total\{reason="missing"\} 1/);
    t.metrics.repairs.inc({ result: 'succeeded' });
    expect((await call('GET', '/metrics', t.viewer)).body).toMatch(
      /drover_repairs_total\{result="succeeded"\} 1/,
    );
  });
});
