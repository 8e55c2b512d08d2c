import { describe, expect, it } from 'vitest';
import { lab, labApi, labLeftovers, labOk, readState } from '../helpers/lab-e2e.js';
import { FAST_LIVENESS, labDroverSync, labSession, labUp } from '../helpers/lab-session.js';
import { tempDir, waitFor } from '../helpers/proc.js';

/**
 * VirtualCluster's `{"r1":1,"r2":1}` in the lab, by the steps of docs/lab.md ("Two super
 * clusters"): `lab up --topology examples/superclusters.yaml --nodes 2` gives two clusters, r1 and
 * r2, one host each (labelled drover.dev/cluster at join), each running etcd, an API server and a
 * kubelet; a tenant's two slices go one to each super cluster.
 */
describe('lab: two super clusters (examples/superclusters.yaml)', () => {
  const dir = tempDir('lab-vc');
  const lock = labSession(dir);

  it('comes up converged with r1 and r2, spreads a tenant {"r1":1,"r2":1}, and goes down clean', async () => {
    await lock.take();
    const up = await labUp(dir, [
      '--topology',
      'examples/superclusters.yaml',
      '--nodes',
      '2',
      '--subnet',
      '127.0.84',
      ...FAST_LIVENESS,
    ]);
    expect(up.code).toBe(0);
    expect(up.stdout).toContain('clusters r1, r2');
    const state = readState(dir);
    expect(state.nodes.map((n) => `${n.name}:${n.labels['drover.dev/cluster']}`)).toEqual([
      'r1-1:r1',
      'r2-1:r2',
    ]);
    const st = await lab(dir, ['status']);
    expect(st.code, st.stdout).toBe(0);
    // instance ids repeat across clusters (etcd#0 in each): that is not "runs twice"
    expect(st.stdout).not.toContain('runs twice');
    expect(st.stdout).toContain('r1/kubelet');
    const drover = (...args: string[]) => labDroverSync(dir, ...args);
    const api = labApi(state);
    const sc = await waitFor(
      'two super clusters with a kubelet host each',
      async () => {
        const items = (
          await api.request<{ items: Array<{ name: string; nodes: number }> }>('GET', '/v1/superclusters')
        ).items;
        return items.length === 2 && items.every((s) => s.nodes === 1) ? items : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    expect(sc.map((s) => s.name)).toEqual(['r1', 'r2']);
    expect(drover('superclusters')).toMatch(/^r1\s+1\s/m);
    const set = drover('tenants', 'set', 'default', '--quota', 'cpu=200m,memory=200Mi');
    expect(set).toMatch(/default\s+2\s+\{"cpu":"100m","memory":"100Mi"\}\s+\{"r1":1,"r2":1\}/);
    expect(drover('tenants')).toContain('{"r1":1,"r2":1}');
    // r2's only host dies: once it is Unreachable its slice moves to r1
    await labOk(dir, ['kill-host', 'r2-1']);
    await waitFor(
      'the slice moved to r1',
      async () =>
        (await api.request<{ annotation?: string }>('GET', '/v1/tenants/default')).annotation === '{"r1":2}'
          ? true
          : undefined,
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    expect((await lab(dir, ['status'])).code).toBe(1);
    await labOk(dir, ['down']);
    expect(await labLeftovers(state)).toEqual([]);
  }, 240_000);
});
