import { afterEach, describe, expect, it } from 'vitest';
import { buildApi } from '../../coordinator/api/index.js';
import { silentLogger } from '../../lib/logger.js';
import { waitFor } from '../helpers/proc.js';
import { droverCli, type SeedApi, startSeedApi } from '../helpers/seeds.js';

// biome-ignore lint/suspicious/noExplicitAny: response bodies are JSON checked by the assertions
type Body = any;

let t: SeedApi | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function call(method: 'GET' | 'PUT' | 'DELETE' | 'POST', url: string, token: string, body?: unknown) {
  const res = await t!.app.inject({
    method,
    url,
    headers: t!.auth(token),
    ...(body === undefined ? {} : { payload: body as object }),
  });
  let json: Body;
  try {
    json = res.json();
  } catch {}
  return { status: res.statusCode, json, body: res.body };
}

/** A super cluster: kubelets on every node labelled into it (API endpoint outside). */
const superCluster = (name: string) => ({
  apiVersion: 'drover.dev/v1',
  kind: 'Topology',
  metadata: { name },
  cluster: { name, apiEndpoint: { mode: 'external', address: '10.9.9.9' } },
  roles: { kubelet: { everywhere: true } },
});

/** r1 and r2, one node each (4 cores, 8 GiB: 3900m and 7936Mi allocatable after the reserve). */
async function twoSuperClusters(api: SeedApi): Promise<void> {
  await api.register('r1n1', { labels: { 'drover.dev/cluster': 'r1' } });
  await api.register('r2n1', { labels: { 'drover.dev/cluster': 'r2' } });
  for (const c of ['r1', 'r2'])
    expect((await call('PUT', '/v1/topology', api.admin, superCluster(c))).status).toBe(200);
  await api.settle();
}

const tenant = async (name: string) => (await call('GET', `/v1/tenants/${name}`, t!.viewer)).json;

describe('VirtualCluster: super clusters and tenant slices', () => {
  it('the seed\'s worked example: a 200m/200Mi quota is 2 slices, placed {"r1":1,"r2":1}', async () => {
    t = await startSeedApi();
    await twoSuperClusters(t);
    const sc = await call('GET', '/v1/superclusters', t.viewer);
    expect(sc.json.items).toEqual([
      expect.objectContaining({
        name: 'r1',
        nodes: 1,
        capacity: expect.objectContaining({ cpu: '3900m', memory: '7936Mi' }),
      }),
      expect.objectContaining({
        name: 'r2',
        nodes: 1,
        capacity: expect.objectContaining({ cpu: '3900m', memory: '7936Mi' }),
      }),
    ]);
    const r = await call('PUT', '/v1/tenants/default', t.operator, {
      quota: { cpu: '200m', memory: '200Mi' },
    });
    expect(r.status, r.body).toBe(200);
    expect(r.json).toMatchObject({
      name: 'default',
      slices: 2,
      slice: { cpu: '100m', memory: '100Mi' },
      placements: { r1: 1, r2: 1 },
      annotation: '{"r1":1,"r2":1}',
      unplaced: 0,
    });
    const after = await call('GET', '/v1/superclusters', t.viewer);
    expect(after.json.items.map((s: Body) => s.used.cpu)).toEqual(['100m', '100m']);
    // asking again changes nothing
    await call('PUT', '/v1/tenants/default', t.operator, { slices: 2 });
    expect((await tenant('default')).annotation).toBe('{"r1":1,"r2":1}');
    expect(t.engine.events.list({ kind: 'vc.slices-moved' })).toEqual([]);
  });

  it('placements are stable across calls and restarts, and move only when capacity goes', async () => {
    t = await startSeedApi();
    await twoSuperClusters(t);
    await t.register('r1n2', { labels: { 'drover.dev/cluster': 'r1' } });
    await t.settle();
    // 1-core/1Gi slices: 3 fit per node (3900m), so r1 holds 6 and r2 holds 3
    const big = await call('PUT', '/v1/tenants/big', t.operator, {
      slices: 6,
      slice: { cpu: '1', memory: '1Gi' },
    });
    expect(big.json.placements).toEqual({ r1: 4, r2: 2 });
    await call('PUT', '/v1/tenants/small', t.operator, { slices: 3 });
    const before = (await call('GET', '/v1/tenants', t.viewer)).json.items;
    // a new API (as after a coordinator restart) on the same store starts from the stored placement
    const again = buildApi({
      engine: t.engine,
      tokens: t.tokens,
      logger: silentLogger,
      store: t.store,
      natsConnected: () => true,
    });
    await again.ready();
    const reloaded = await again.inject({ method: 'GET', url: '/v1/tenants', headers: t.auth(t.viewer) });
    expect(reloaded.json().items).toEqual(before);
    await again.close();
    // r2's only node is drained away (capacity 0): its slices move to r1, where they still fit
    const r2 = before.find((x: Body) => x.name === 'big').placements.r2;
    expect(r2).toBe(2);
    expect((await call('POST', '/v1/nodes/r2n1/cordon', t.operator)).status).toBe(200);
    await waitFor('big moved off r2', async () => (await tenant('big')).annotation === '{"r1":6}');
    const moved = t.engine.events.list({ kind: 'vc.slices-moved' });
    expect(moved.map((e) => e.data?.tenant).sort()).toEqual(['big', 'small']);
    expect(moved.find((e) => e.data?.tenant === 'big')!.message).toMatch(
      /from \{"r1":4,"r2":2\} to \{"r1":6\}/,
    );
    // r1's slices never moved: only what no longer fit
    expect((await tenant('big')).placements.r1).toBe(6);
    // capacity back: nothing moves back (stable), new slices go to the free cluster
    await call('POST', '/v1/nodes/r2n1/uncordon', t.operator);
    await new Promise((r) => setTimeout(r, 400));
    expect((await tenant('big')).annotation).toBe('{"r1":6}');
    const more = await call('PUT', '/v1/tenants/big', t.operator, {
      slices: 8,
      slice: { cpu: '1', memory: '1Gi' },
    });
    expect(more.json.annotation).toBe('{"r1":6,"r2":2}');
  });

  it('what fits nowhere is reported, with an event; bad input is refused and changes nothing', async () => {
    t = await startSeedApi();
    await twoSuperClusters(t);
    const huge = await call('PUT', '/v1/tenants/huge', t.operator, {
      slices: 1,
      slice: { cpu: '64', memory: '1Gi' },
    });
    expect(huge.json).toMatchObject({ unplaced: 1, placements: {} });
    expect(huge.json.unplacedReason).toMatch(/larger than the capacity of every super cluster/);
    expect(t.engine.events.list({ kind: 'vc.slices-unplaced' })).toHaveLength(1);
    for (const [body, msg] of [
      [{ slices: 1, quota: { cpu: '1', memory: '1Gi' } }, /exactly one of slices/],
      [{ quota: { cpu: '1', memory: '100m' } }, /did you mean 100Mi/],
      [{ slices: 1, slice: { cpu: '0', memory: '1Mi' } }, /some cpu and some memory/],
    ] as const) {
      const r = await call('PUT', '/v1/tenants/bad', t.operator, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.json.message).toMatch(msg);
    }
    expect((await call('PUT', '/v1/tenants/Bad_Name', t.operator, { slices: 1 })).status).toBe(400);
    expect((await call('PUT', '/v1/tenants/x', t.operator, { slices: -1 })).status).toBe(400);
    expect((await call('PUT', '/v1/tenants/x', t.viewer, { slices: 1 })).status).toBe(403);
    expect((await call('GET', '/v1/tenants', t.viewer)).json.items.map((x: Body) => x.name)).toEqual([
      'huge',
    ]);
    expect((await call('GET', '/v1/tenants/bad', t.viewer)).json.code).toBe('DROVER_ERR_VC_TENANT_NOT_FOUND');
    expect((await call('DELETE', '/v1/tenants/huge', t.operator)).status).toBe(200);
    expect((await call('DELETE', '/v1/tenants/huge', t.operator)).status).toBe(404);
  });

  it('drover tenants / superclusters print the seed form', async () => {
    t = await startSeedApi();
    await twoSuperClusters(t);
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    const conn = ['--server', `http://127.0.0.1:${(t.app.server.address() as { port: number }).port}`];
    const op = [...conn, '--token', t.operator];
    const set = await droverCli(['tenants', 'set', 'default', '--quota', 'cpu=200m,memory=200Mi', ...op]);
    expect(set.code, set.stderr).toBe(0);
    const list = await droverCli(['tenants', ...conn, '--token', t.viewer]);
    expect(list.stdout).toMatch(/default\s+2\s+\{"cpu":"100m","memory":"100Mi"\}\s+\{"r1":1,"r2":1\}/);
    const sc = await droverCli(['superclusters', ...conn, '--token', t.viewer]);
    // human units in the table (cores, binary units with one decimal), exact quantities in json
    expect(sc.stdout).toMatch(/r1\s+1\s+3\.9\s+7\.8Gi\s+0\.1\s+100Mi\s+3\.8\s+7\.7Gi/);
    expect(sc.stdout).not.toMatch(/\d(Ki|m)\b/);
    const scj = JSON.parse(
      (await droverCli(['superclusters', '-o', 'json', ...conn, '--token', t.viewer])).stdout,
    );
    expect(scj.items[0].capacity).toMatchObject({ cpu: '3900m', memory: '7936Mi', cpuMilli: 3900 });
    // more slices than there is room for: the quota is kept, but the command fails and says why
    const huge = await droverCli(['tenants', 'set', 'big', '--slices', '100000', ...op]);
    expect(huge.code).toBe(1);
    expect(huge.stderr).toMatch(
      /error: \d+ of 100000 slice\(s\) of tenant big are unplaced: no super cluster has room for another slice \(cpu 100m, memory 100Mi\); free: r1 cpu 0 memory [\d.]+Gi; r2 cpu 0 memory [\d.]+Gi\n/,
    );
    const unplaced = Number(/error: (\d+) of/.exec(huge.stderr)![1]);
    expect(unplaced).toBeGreaterThan(99_900);
    await droverCli(['tenants', 'delete', 'big', ...op]);
    const bad = await droverCli(['tenants', 'set', 'x', '--quota', 'cpu=1', ...op]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/needs both cpu and memory/);
  });
});
