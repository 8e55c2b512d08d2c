import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileCoordinatorOptions } from '../../coordinator/config.js';
import { type HaCoordinatorHandle, startHaCoordinator } from '../../coordinator/ha/runner.js';
import { createLogger, silentLogger } from '../../lib/logger.js';
import { type NatsCluster, startNatsCluster } from '../helpers/nats-cluster.js';
import { autoCleanup, freePort, tempDir, waitFor } from '../helpers/proc.js';

const DIST = new URL('../../dist/', import.meta.url).pathname;
function drover(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(DIST, 'drover.mjs'), ...args],
      { timeout: 30_000, env: { ...process.env, ...env, DROVER_CONFIG: '/dev/null' } },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/**
 * Three coordinators in HA on a three-server JetStream cluster (R3), in this process: one leads
 * by lease, the others follow (reads served, writes answered with the leader's address); a leader
 * that stops hands over at once, and a new leader runs under a higher epoch.
 */
describe('coordinator HA: lease, followers, hand-over (3 coordinators, 3 nats-servers, R3)', () => {
  let cluster: NatsCluster;
  const handles = new Map<string, HaCoordinatorHandle>();
  const apis = new Map<string, string>();
  let token = '';
  const dirs = new Map<string, string>();

  const start = async (id: string) => {
    const opts = compileCoordinatorOptions({
      flags: {
        'data-dir': dirs.get(id)!,
        'nats-servers': cluster.urls.join(','),
        'bus-dir': cluster.busDir,
        'store-backend': 'jetstream',
        'store-replicas': '3',
        'store-bucket': 'ha-test',
        'ha-enabled': 'true',
        'ha-id': id,
        'ha-lease': '1500ms',
        'api-listen': apis.get(id)!.replace('http://', ''),
      },
    });
    const h = await startHaCoordinator(
      opts,
      process.env.HA_LOG
        ? createLogger({ name: id, level: 'info', destination: `${process.env.HA_LOG}-${id}.log` } as never)
        : silentLogger,
    );
    handles.set(id, h);
    return h;
  };

  const get = (id: string, path: string) =>
    fetch(`${apis.get(id)}${path}`, { headers: { authorization: `Bearer ${token}` } });

  beforeAll(async () => {
    cluster = await startNatsCluster(3);
    for (const id of ['c1', 'c2', 'c3']) {
      dirs.set(id, tempDir(`ha-${id}`));
      apis.set(id, `http://127.0.0.1:${await freePort('127.0.0.1')}`);
    }
    // the first coordinator makes the seed material; the others get copies (docs/operations.md)
    const first = await start('c1');
    await waitFor('c1 leads', () => first.isLeader(), { timeoutMs: 20_000 });
    const d1 = dirs.get('c1')!;
    for (const id of ['c2', 'c3']) {
      const d = dirs.get(id)!;
      mkdirSync(d, { recursive: true });
      for (const f of ['plan-signing-key.pem', 'pki', 'tokens.json', 'admin-token'])
        if (existsSync(join(d1, f))) cpSync(join(d1, f), join(d, f), { recursive: true });
    }
    token = (await import('node:fs')).readFileSync(join(d1, 'admin-token'), 'utf8').trim();
    await start('c2');
    await start('c3');
    autoCleanup(async () => {
      for (const h of handles.values()) await h.close().catch(() => {});
    });
  }, 120_000);
  afterAll(async () => {
    for (const h of handles.values()) await h.close().catch(() => {});
  });

  it('one leader; every coordinator lists all three with the leader, its epoch and lease age', async () => {
    expect([...handles.values()].filter((h) => h.isLeader()).map((h) => h.id)).toEqual(['c1']);
    // the new leader's epoch shows once it has started its engine: asked until every view has it
    await waitFor('three members and the leader with its epoch, in every view', async () => {
      for (const id of ['c1', 'c2', 'c3']) {
        const r = await (await get(id, '/v1/coordinators')).json();
        const l = r.items?.find((i: { role: string }) => i.role === 'leader');
        if (r.items?.length !== 3 || typeof l?.epoch !== 'number') return false;
      }
      return true;
    });
    for (const id of ['c1', 'c2', 'c3']) {
      const body = await (await get(id, '/v1/coordinators')).json();
      expect(body.mode).toBe('ha');
      expect(body.self).toBe(id);
      const leader = body.items.find((i: { role: string }) => i.role === 'leader');
      expect(leader).toMatchObject({ id: 'c1', api: apis.get('c1') });
      expect(leader.epoch).toBeGreaterThanOrEqual(1);
      expect(leader.leaseAgeMs).toBeLessThan(1500);
      expect(
        body.items
          .filter((i: { role: string }) => i.role === 'follower')
          .map((i: { id: string }) => i.id)
          .sort(),
      ).toEqual(['c1', 'c2', 'c3'].filter((x) => x !== 'c1'));
    }
  });

  it('a follower serves reads and answers a write with 421 naming the leader; nothing is written', async () => {
    const topo = `apiVersion: drover.dev/v1\nkind: Topology\nmetadata: { name: t }\ncluster: { name: t }\nroles: {}\n`;
    const r = await fetch(`${apis.get('c2')}/v1/topology`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/yaml' },
      body: topo,
    });
    expect(r.status).toBe(421);
    expect(r.headers.get('x-drover-leader')).toBe(apis.get('c1'));
    const body = await r.json();
    expect(body.code).toBe('DROVER_ERR_NOT_LEADER');
    expect(body.message).toMatch(/c2 is a follower.*leader c1 at http/);
    expect((await (await get('c2', '/v1/topologies')).json()).items ?? []).toEqual([]);
    // the same write to the leader lands, and the follower's read model shows it
    const ok = await fetch(`${apis.get('c1')}/v1/topology`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/yaml' },
      body: topo,
    });
    expect(ok.status, await ok.clone().text()).toBeLessThan(300);
    await waitFor('follower sees the topology', async () => {
      const items = (await (await get('c3', '/v1/topologies')).json()).items ?? [];
      return items.some(
        (t: { metadata?: { name?: string }; cluster?: { name?: string } }) => t.cluster?.name === 't',
      );
    });
  });

  it('the CLI finds the leader among its --server URLs, skips a dead one, and never follows a leader outside its list', async () => {
    const dead = `http://127.0.0.1:${await freePort('127.0.0.1')}`;
    const all = [dead, apis.get('c2'), apis.get('c3'), apis.get('c1')].join(',');
    const env = { DROVER_TOKEN: token };
    const list = await drover(['get', 'coordinators', '--server', all], env);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/^ID\s+ADDRESS\s+ROLE\s+EPOCH\s+LEASE AGE/);
    expect(list.stdout).toMatch(new RegExp(`c1\\s+${apis.get('c1')}\\s+leader\\s+\\d+\\s+\\d+\\.\\ds`));
    expect(list.stdout).toMatch(/c2\s+\S+\s+follower/);
    const file = join(tempDir('ha-cli'), 't2.yaml');
    writeFileSync(
      file,
      `apiVersion: drover.dev/v1\nkind: Topology\nmetadata: { name: t2 }\ncluster: { name: t2 }\nroles: {}\n`,
    );
    const applied = await drover(['apply', '-f', file, '--server', all], env);
    expect(applied.code, applied.stderr).toBe(0);
    // only followers in the list: the write is refused, naming the leader and what to do
    const refused = await drover(
      ['apply', '-f', file, '--server', `${apis.get('c2')},${apis.get('c3')}`],
      env,
    );
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/is a follower; PUT \/v1\/topology goes to the leader c1 at http/);
    expect(refused.stderr).toMatch(/add the leader's API URL/);
  });

  it('an API token made on the leader is good on every coordinator; deleted, on none', async () => {
    const made = await fetch(`${apis.get('c1')}/v1/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'alice', role: 'viewer' }),
    });
    expect(made.status, await made.clone().text()).toBeLessThan(300);
    const alice = ((await made.json()) as { token: string }).token;
    const as = (id: string) =>
      fetch(`${apis.get(id)}/v1/nodes`, { headers: { authorization: `Bearer ${alice}` } }).then(
        (r) => r.status,
      );
    await waitFor('alice is let in on every coordinator', async () =>
      (await Promise.all(['c1', 'c2', 'c3'].map(as))).every((s) => s === 200),
    );
    const del = await fetch(`${apis.get('c1')}/v1/tokens/alice`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(del.status).toBeLessThan(300);
    await waitFor('alice is refused on every coordinator', async () =>
      (await Promise.all(['c1', 'c2', 'c3'].map(as))).every((s) => s === 401),
    );
  });

  it('the leader stops: another takes over within the lease, under a higher epoch and term', async () => {
    const before = (await (await get('c2', '/v1/coordinators')).json()).items.find(
      (i: { role: string }) => i.role === 'leader',
    );
    const t0 = Date.now();
    await handles.get('c1')!.close();
    handles.delete('c1');
    const next = await waitFor('a new leader', () => [...handles.values()].find((h) => h.isLeader()), {
      timeoutMs: 10_000,
      intervalMs: 50,
    });
    const took = Date.now() - t0;
    await waitFor('its epoch published', async () => {
      const items = (await (await get(next.id, '/v1/coordinators')).json()).items;
      const l = items.find((i: { role: string }) => i.role === 'leader');
      return l?.id === next.id && l.epoch > before.epoch;
    });
    const after = (await (await get(next.id, '/v1/coordinators')).json()).items.find(
      (i: { role: string }) => i.role === 'leader',
    );
    expect(after.term).toBeGreaterThan(before.term);
    expect(after.epoch).toBeGreaterThan(before.epoch);
    expect([...handles.values()].filter((h) => h.isLeader())).toHaveLength(1);
    process.stdout.write(`\nFIGURES (HA hand-over): a stopping leader handed over in ${took} ms\n`);
  });

  it('a second coordinator with a live id refuses to start and names the first', async () => {
    const live = [...handles.keys()][0]!;
    const dir = tempDir('ha-dup');
    cpSync(dirs.get(live)!, dir, { recursive: true });
    const opts = compileCoordinatorOptions({
      flags: {
        'data-dir': dir,
        'nats-servers': cluster.urls.join(','),
        'bus-dir': cluster.busDir,
        'store-backend': 'jetstream',
        'store-replicas': '3',
        'store-bucket': 'ha-test',
        'ha-enabled': 'true',
        'ha-id': live,
        'api-listen': `127.0.0.1:${await freePort('127.0.0.1')}`,
      },
    });
    await expect(startHaCoordinator(opts, silentLogger)).rejects.toThrow(
      new RegExp(`coordinator id ${live} is in use by a running coordinator \\(host .*, pid ${process.pid}`),
    );
  });

  it('a coordinator that cannot reach its store exits naming the servers and the reason; it never runs empty', async () => {
    const dead = `tls://127.0.0.1:${await freePort('127.0.0.1')}`;
    const opts = compileCoordinatorOptions({
      flags: {
        'data-dir': tempDir('ha-nostore'),
        'nats-servers': dead,
        'bus-dir': cluster.busDir,
        'store-backend': 'jetstream',
        'ha-enabled': 'true',
        'ha-id': 'c8',
        'api-listen': `127.0.0.1:${await freePort('127.0.0.1')}`,
      },
    });
    await expect(startHaCoordinator(opts, silentLogger)).rejects.toThrow(
      new RegExp(`cannot reach the NATS servers ${dead.replace(/[.]/g, '\\.')}: .+`),
    );
  }, 30_000);

  it("a coordinator whose plan-signing key is not the fleet's refuses to start", async () => {
    const opts = compileCoordinatorOptions({
      flags: {
        'data-dir': tempDir('ha-stranger'),
        'nats-servers': cluster.urls.join(','),
        'bus-dir': cluster.busDir,
        'store-backend': 'jetstream',
        'store-replicas': '3',
        'store-bucket': 'ha-test',
        'ha-enabled': 'true',
        'ha-id': 'c9',
        'api-listen': `127.0.0.1:${await freePort('127.0.0.1')}`,
      },
    });
    await expect(startHaCoordinator(opts, silentLogger)).rejects.toThrow(
      /plan-signing key .* is not the fleet's/,
    );
  });
});
