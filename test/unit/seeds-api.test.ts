import { afterEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { CLEANED_LABEL } from '../../coordinator/clean.js';
import { echoTopology } from '../helpers/api.js';
import { opensslSubject, opensslVerify } from '../helpers/pki.js';
import { type SeedApi, startSeedApi } from '../helpers/seeds.js';

let t: SeedApi | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

// biome-ignore lint/suspicious/noExplicitAny: response bodies are JSON checked by the assertions
type Body = any;
async function call(
  api: SeedApi,
  method: 'GET' | 'POST' | 'PUT',
  url: string,
  token: string,
  body?: unknown,
) {
  const res = await api.app.inject({
    method,
    url,
    headers: api.auth(token),
    ...(body === undefined ? {} : { payload: body as object }),
  });
  let json: Body;
  try {
    json = res.json();
  } catch {}
  return { status: res.statusCode, json, body: res.body, type: String(res.headers['content-type']) };
}

const controlPlane = (apiEndpoint?: Record<string, unknown>) => ({
  apiVersion: 'drover.dev/v1',
  kind: 'Topology',
  metadata: { name: 'cp' },
  cluster: { name: 'cp', ...(apiEndpoint ? { apiEndpoint } : {}) },
  roles: { etcd: { replicas: 1 }, 'kube-apiserver': { replicas: 1 } },
});

describe('GET /v1/kubeconfig/admin (drover kubeconfig admin)', () => {
  it('admin gets a kubeconfig for the API endpoint whose embedded cert chains to the cluster CA', async () => {
    t = await startSeedApi();
    await t.register('n1', { labels: { 'drover.dev/cluster': 'cp' } });
    expect((await call(t, 'PUT', '/v1/topology', t.admin, controlPlane())).status).toBe(200);
    await t.settle();
    const r = await call(t, 'GET', '/v1/kubeconfig/admin', t.admin);
    expect(r.status, r.body).toBe(200);
    expect(r.type).toMatch(/application\/yaml/);
    const kc = parseYaml(r.body);
    // direct mode: the single API server's node on 6443
    expect(kc.clusters[0].cluster.server).toBe('https://127.0.0.2:6443');
    const ca = Buffer.from(kc.clusters[0].cluster['certificate-authority-data'], 'base64').toString();
    const cert = Buffer.from(kc.users[0].user['client-certificate-data'], 'base64').toString();
    expect(ca).toBe(t.pki.caPem('cluster'));
    expect(opensslVerify(ca, cert, 'sslclient').code).toBe(0);
    expect(opensslSubject(cert)).toMatch(/CN=drover-admin,O=system:masters/);
    expect(kc.users[0].user['client-key-data']).toBeTruthy();
    expect(t.engine.events.list({ kind: 'pki.admin-kubeconfig' })).toHaveLength(1);
  });

  it('follows the endpoint mode: an external load-balancer address', async () => {
    t = await startSeedApi();
    await t.register('n1', { labels: { 'drover.dev/cluster': 'cp' } });
    await call(t, 'PUT', '/v1/topology', t.admin, controlPlane({ mode: 'external', address: '10.9.9.9' }));
    await t.settle();
    const kc = parseYaml((await call(t, 'GET', '/v1/kubeconfig/admin?cluster=cp', t.admin)).body);
    expect(kc.clusters[0].cluster.server).toBe('https://10.9.9.9:6443');
  });

  it('only admins; 404 without a topology; 409 before any API server is placed; 501 without a PKI', async () => {
    t = await startSeedApi();
    for (const tok of [t.viewer, t.operator])
      expect((await call(t, 'GET', '/v1/kubeconfig/admin', tok)).status).toBe(403);
    const none = await call(t, 'GET', '/v1/kubeconfig/admin', t.admin);
    expect(none).toMatchObject({ status: 404, json: { code: 'DROVER_ERR_TOPOLOGY_NOT_FOUND' } });
    // no node to place the API server on yet
    await call(t, 'PUT', '/v1/topology', t.admin, controlPlane());
    await t.settle();
    const unplaced = await call(t, 'GET', '/v1/kubeconfig/admin', t.admin);
    expect(unplaced).toMatchObject({ status: 409, json: { code: 'DROVER_ERR_ILLEGAL_STATE' } });
    expect(unplaced.json.message).toMatch(/no kube-apiserver is placed/);
    await t.close();
    t = await startSeedApi({ pki: false });
    expect((await call(t, 'GET', '/v1/kubeconfig/admin', t.admin)).json.code).toBe(
      'DROVER_ERR_NOT_IMPLEMENTED',
    );
  });
});

describe('POST /v1/clean (drover clean)', () => {
  async function deployed(api: SeedApi): Promise<void> {
    for (const id of ['n1', 'n2', 'n3']) await api.register(id);
    expect((await call(api, 'PUT', '/v1/topology', api.admin, echoTopology(2))).status).toBe(200);
    await api.settle();
    for (const id of ['n1', 'n2', 'n3']) api.report(id);
  }

  it('empties every plan, keeps the topology as the record, and carries no purge list without --purge', async () => {
    t = await startSeedApi();
    await deployed(t);
    expect((await call(t, 'POST', '/v1/clean', t.operator, {})).status).toBe(403);
    const r = await call(t, 'POST', '/v1/clean', t.admin, {});
    expect(r.status, r.body).toBe(200);
    expect(r.json).toMatchObject({ cluster: 'default', purge: false, purging: [] });
    expect(r.json.stopping.flatMap((s: Body) => s.instances).sort()).toEqual(['echo#0', 'echo#1']);
    await t.settle();
    expect(t.engine.allAssignments()).toEqual([]);
    for (const n of ['n1', 'n2', 'n3']) {
      expect(t.engine.desiredPlan(n)!.instances).toEqual([]);
      expect(t.engine.desiredPlan(n)!.purge).toBeUndefined();
    }
    expect(t.engine.topology('default')!.metadata.labels?.[CLEANED_LABEL]).toBe('true');
    expect(t.engine.topology('default')!.roles).toEqual({});
    const stored = await t.store.get<Body>('clean/default');
    expect(stored!.value.previous.roles.echo.replicas).toBe(2);
    expect(t.engine.events.list({ kind: 'cluster.cleaned' })).toHaveLength(1);
  });

  it('--purge (even after a plain clean) puts each node its removed instances’ paths; a real apply drops them', async () => {
    t = await startSeedApi();
    await deployed(t);
    const owner = t.engine.allAssignments().find((a) => a.instanceId === 'echo#0')!.nodeId;
    const spare = ['n1', 'n2', 'n3'].find((n) => !t!.engine.allAssignments().some((a) => a.nodeId === n))!;
    await call(t, 'POST', '/v1/clean', t.admin, {});
    await t.settle();
    const gen = t.engine.desiredPlan(owner)!.generation;
    const r = await call(t, 'POST', '/v1/clean', t.admin, { purge: true });
    expect(r.status, r.body).toBe(200);
    expect(r.json.purge).toBe(true);
    expect(r.json.stopping).toEqual([]);
    expect(r.json.purging.map((p: Body) => p.nodeId).sort()).toHaveLength(2);
    await t.settle();
    const plan = t.engine.desiredPlan(owner)!;
    expect(plan.instances).toEqual([]);
    expect(plan.purge).toEqual([{ instanceId: 'echo#0', paths: ['/opt/echo.cjs'] }]);
    // same (empty) content, but a new generation so the agent gets the purge list
    expect(plan.generation).toBeGreaterThan(gen);
    expect(t.engine.desiredPlan(spare)!.purge).toBeUndefined();
    // a real topology ends the clean: the purge list goes away before anything runs again
    await call(t, 'PUT', '/v1/topology', t.admin, echoTopology(2));
    await t.settle();
    for (const n of ['n1', 'n2', 'n3']) expect(t.engine.desiredPlan(n)!.purge).toBeUndefined();
    expect(await t.store.get('clean/default')).toBeUndefined();
    expect(t.engine.allAssignments()).toHaveLength(2);
  });

  it('refuses unknown fields and unknown clusters, changing nothing', async () => {
    t = await startSeedApi();
    await deployed(t);
    const bad = await call(t, 'POST', '/v1/clean', t.admin, { purge: true, force: 1 });
    expect(bad).toMatchObject({ status: 400, json: { code: 'DROVER_ERR_BAD_REQUEST' } });
    const missing = await call(t, 'POST', '/v1/clean', t.admin, { cluster: 'nope' });
    expect(missing).toMatchObject({ status: 404, json: { code: 'DROVER_ERR_TOPOLOGY_NOT_FOUND' } });
    await t.settle();
    expect(t.engine.allAssignments()).toHaveLength(2);
  });
});
