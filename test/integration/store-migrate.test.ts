import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileCoordinatorOptions } from '../../coordinator/config.js';
import { openLowdbStore } from '../../coordinator/store/index.js';
import { migrateStore, openConfiguredStore } from '../../coordinator/store/open.js';
import { DIST } from '../helpers/lab-e2e.js';
import { tempDir } from '../helpers/proc.js';
import { startNats } from '../helpers/servers.js';

/**
 * `drover-coordinator migrate`: a lowdb state copied into a JetStream bucket and back, verified;
 * a non-empty target and bad flags are refused and change nothing; an unreachable bus is named.
 */
function coordinatorCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(DIST, 'drover-coordinator.mjs'), ...args],
      { timeout: 60_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('store migration between lowdb and JetStream', () => {
  it('copies a state there and back, verified; refuses a non-empty target', async () => {
    const dataDir = tempDir('migrate');
    const nats = await startNats({ jetstream: true, busDir: join(dataDir, 'bus') });
    const src = await openLowdbStore({ path: join(dataDir, 'state.json') });
    const state: Record<string, unknown> = {
      'topology/c': { cluster: { name: 'c' }, roles: { etcd: { replicas: 3 } } },
      'assignments/c/etcd#0': { instanceId: 'etcd#0', nodeId: 'n1', epoch: 2 },
      'nodes/n1': { id: 'n1', labels: { 'drover.dev/cluster': 'c' } },
      'meta/epoch': 7,
    };
    for (const [k, v] of Object.entries(state)) await src.put(k, v);
    await src.close();
    const flags = {
      'data-dir': dataDir,
      'nats-servers': nats.url,
      'store-bucket': `m-${process.pid}`,
    };
    const args = Object.entries(flags).flatMap(([k, v]) => [`--${k}`, v]);
    const there = await coordinatorCli(['migrate', '--from', 'lowdb', '--to', 'jetstream', ...args]);
    expect(there.code, there.stderr).toBe(0);
    expect(there.stdout).toMatch(
      /copied 4 key\(s\) from lowdb file .* to JetStream bucket m-\d+ .* and verified them/,
    );
    // the copy, read through the configured store
    const opts = compileCoordinatorOptions({ flags: { ...flags, 'store-backend': 'jetstream' } });
    const js = await openConfiguredStore({
      backend: 'jetstream',
      dataDir,
      bucket: opts.store.bucket,
      replicas: 1,
      nats: { servers: [nats.url], credsFile: nats.coordinatorCreds, tls: { ca: nats.caFile } },
    });
    try {
      for (const [k, v] of Object.entries(state)) expect((await js.store.get(k))?.value).toEqual(v);
    } finally {
      await js.close();
    }
    // again into the same bucket: refused, nothing changed
    const again = await coordinatorCli(['migrate', '--from', 'lowdb', '--to', 'jetstream', ...args]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already holds 4 key\(s\).*empty store only/);
    // and back into a fresh data dir's lowdb file
    const back = tempDir('migrate-back');
    // the same bus (its keys and CA), another data dir whose lowdb file is still empty
    const backArgs = [...args.map((a) => (a === dataDir ? back : a)), '--bus-dir', join(dataDir, 'bus')];
    const r = await coordinatorCli(['migrate', '--from', 'jetstream', '--to', 'lowdb', ...backArgs]);
    expect(r.code, r.stderr).toBe(0);
    const lowdb = await openLowdbStore({ path: join(back, 'state.json') });
    try {
      for (const [k, v] of Object.entries(state)) expect((await lowdb.get(k))?.value).toEqual(v);
    } finally {
      await lowdb.close();
    }
  }, 120_000);

  it('bad flags and an unreachable bus get clear errors', async () => {
    const dataDir = tempDir('migrate-bad');
    const same = await coordinatorCli(['migrate', '--from', 'lowdb', '--to', 'lowdb', '--data-dir', dataDir]);
    expect(same.code).toBe(2);
    expect(same.stderr).toMatch(/both lowdb: nothing to migrate/);
    const unknown = await coordinatorCli([
      'migrate',
      '--from',
      'etcd',
      '--to',
      'jetstream',
      '--data-dir',
      dataDir,
    ]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/--from must be one of lowdb, jetstream \(got "etcd"\)/);
    const down = await coordinatorCli([
      'migrate',
      '--from',
      'lowdb',
      '--to',
      'jetstream',
      '--data-dir',
      dataDir,
      '--nats-servers',
      'nats://127.0.0.1:1',
    ]);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/cannot reach the NATS servers nats:\/\/127\.0\.0\.1:1/);
  }, 60_000);
});

describe('migrateStore', () => {
  it('refuses to merge into a non-empty target', async () => {
    const { MemoryStore } = await import('../../coordinator/store/index.js');
    const a = new MemoryStore();
    const b = new MemoryStore();
    await a.put('k', 1);
    await b.put('other', 2);
    const wrap = (s: InstanceType<typeof MemoryStore>, d: string) => ({
      store: s,
      close: () => s.close(),
      describe: d,
    });
    await expect(migrateStore(wrap(a, 'a'), wrap(b, 'b'))).rejects.toMatchObject({
      code: 'DROVER_ERR_STORE_EXISTS',
    });
    expect(await b.list('')).toEqual([{ key: 'other', value: 2, revision: expect.any(Number) }]);
  });
});
