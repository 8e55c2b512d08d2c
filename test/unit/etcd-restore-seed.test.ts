import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SnapshotSeeder } from '../../agent/seed.js';
import { EtcdRestore } from '../../coordinator/etcd/restore.js';
import type { RestoreRecord } from '../../coordinator/etcd/restore-decide.js';
import { MemoryStore } from '../../coordinator/store/memory.js';
import { ManualClock } from '../../lib/clock.js';
import { silentLogger } from '../../lib/logger.js';
import {
  type InstanceSpec,
  type NodePlan,
  PROTOCOL_VERSION,
  SNAPSHOT_CHUNK_BYTES,
  type SnapshotChunkRequest,
} from '../../protocol/index.js';
import { tempDir } from '../helpers/proc.js';

/**
 * The two ends of a restore's snapshot delivery: the coordinator serves chunks only to the node
 * whose plan seeds that instance from that snapshot during a running restore; the agent checks
 * size and SHA-256 before it runs a restore tool, never restores an instance epoch twice, and
 * leaves nothing half-made. The restore tool here is a script (the real etcdutl/etcdctl run in
 * test/integration/etcd-restore.test.ts).
 */

const BYTES = randomBytes(SNAPSHOT_CHUNK_BYTES * 2 + 1234);
const SHA = createHash('sha256').update(BYTES).digest('hex');
const SNAP = 'prod-20261204T060000Z-abcdef';

function coordinator(rec: Partial<RestoreRecord> = {}, plan?: NodePlan) {
  const store = new MemoryStore();
  const restores = new EtcdRestore({
    store,
    snapshots: {
      record: () => {
        throw new Error('unused');
      },
      read: async (id: string) => {
        if (id !== SNAP)
          throw Object.assign(new Error(`no snapshot ${id}`), { code: 'DROVER_ERR_SNAPSHOT_NOT_FOUND' });
        return { record: {} as never, bytes: BYTES };
      },
    },
    assignments: () => [],
    node: () => undefined,
    liveness: () => undefined,
    transport: async () => ({ scheme: 'https', tls: {} }),
    admin: () => {
      throw new Error('unused');
    },
    desiredPlan: (id) => (id === 'n0' ? plan : undefined),
    enqueue: () => {},
    emit: () => {},
    clock: new ManualClock(Date.parse('2026-12-04T07:00:00Z')),
    log: silentLogger,
  });
  const record: RestoreRecord = {
    id: 'r1',
    cluster: 'prod',
    snapshotId: SNAP,
    sha256: SHA,
    size: BYTES.length,
    revision: 5,
    snapshotClusterId: '1',
    target: { instanceId: 'etcd#0', nodeId: 'n0', epoch: 2, initialCluster: 'etcd-0=https://10.0.0.1:2380' },
    parked: [],
    released: [],
    rejoined: [],
    phase: 'seeding',
    forced: false,
    startedAt: '2026-12-04T07:00:00.000Z',
    lineage: [],
    ...rec,
  };
  return { store, restores, record };
}

const seedSpec = (tool: string): InstanceSpec =>
  ({
    id: 'etcd#0',
    role: 'etcd',
    epoch: 2,
    checksum: 'c'.repeat(64),
    simulated: false,
    files: [],
    run: { command: '/nonexistent/etcd', args: [], env: {} },
    restart: { policy: 'always', backoffMs: 100, maxBackoffMs: 1000 },
    dataPaths: ['/var/lib/etcd/etcd-0-e2'],
    seed: {
      kind: 'etcd-snapshot',
      snapshotId: SNAP,
      sha256: SHA,
      size: BYTES.length,
      dataPath: '/var/lib/etcd/etcd-0-e2',
      tools: [
        {
          command: 'etcdutl-missing-here',
          args: ['snapshot', 'restore', '@SNAPSHOT@', '--data-dir=@TARGET@'],
        },
        { command: tool, args: ['@SNAPSHOT@', '@TARGET@'] },
      ],
    },
  }) as unknown as InstanceSpec;

const planFor = (spec: InstanceSpec): NodePlan =>
  ({ v: PROTOCOL_VERSION, type: 'plan', nodeId: 'n0', instances: [spec] }) as unknown as NodePlan;

const req = (o: Partial<SnapshotChunkRequest> = {}): SnapshotChunkRequest => ({
  v: PROTOCOL_VERSION,
  type: 'snapshot-chunk',
  nodeId: 'n0',
  instanceId: 'etcd#0',
  snapshotId: SNAP,
  offset: 0,
  ...o,
});

/** A stand-in restore tool: copies the snapshot to <target>/member/snap/db. */
function fakeTool(dir: string, exit = 0): string {
  const p = join(dir, 'fake-restore');
  writeFileSync(p, `#!/bin/sh\nmkdir -p "$2/member/snap" && cp "$1" "$2/member/snap/db" && exit ${exit}\n`);
  chmodSync(p, 0o755);
  return p;
}

describe('snapshot chunks (coordinator side)', () => {
  it('serves the restoring node, chunk by chunk, and no one else', async () => {
    const spec = seedSpec('x');
    const { store, restores, record } = coordinator({}, planFor(spec));
    await store.put(`etcd-restores/prod`, record);
    await restores.load();
    let got = Buffer.alloc(0);
    for (let off = 0; off < BYTES.length; ) {
      const r = await restores.serveChunk(req({ offset: off }));
      expect(r).toMatchObject({ ok: true, offset: off, size: BYTES.length });
      const b = Buffer.from(r.data!, 'base64');
      expect(b.length).toBeLessThanOrEqual(SNAPSHOT_CHUNK_BYTES);
      got = Buffer.concat([got, b]);
      off += b.length;
    }
    expect(got.equals(BYTES)).toBe(true);
    // another node, another instance, another snapshot: refused
    for (const bad of [
      req({ nodeId: 'n1' }),
      req({ instanceId: 'etcd#1' }),
      req({ snapshotId: 'prod-other' }),
    ])
      expect((await restores.serveChunk(bad)).error?.code).toBe('DROVER_ERR_FORBIDDEN');
    expect((await restores.serveChunk(req({ offset: BYTES.length }))).error?.message).toMatch(
      /past the snapshot/,
    );
  });

  it('serves nothing once the restore ended, or when the plan does not seed from it', async () => {
    const spec = seedSpec('x');
    const done = coordinator({ phase: 'complete' }, planFor(spec));
    await done.store.put('etcd-restores/prod', done.record);
    await done.restores.load();
    expect((await done.restores.serveChunk(req())).error?.code).toBe('DROVER_ERR_FORBIDDEN');
    const unseeded = coordinator({}, planFor({ ...spec, seed: undefined } as InstanceSpec));
    await unseeded.store.put('etcd-restores/prod', unseeded.record);
    await unseeded.restores.load();
    expect((await unseeded.restores.serveChunk(req())).error?.code).toBe('DROVER_ERR_FORBIDDEN');
  });
});

describe('SnapshotSeeder (agent side)', () => {
  const setup = async (mutate?: (b: Buffer) => Buffer) => {
    const dir = tempDir('seed-agent');
    const root = join(dir, 'root');
    mkdirSync(root, { recursive: true });
    const tool = fakeTool(dir);
    const spec = seedSpec(tool);
    const { store, restores, record } = coordinator({}, planFor(spec));
    await store.put('etcd-restores/prod', record);
    await restores.load();
    let fetches = 0;
    const seeder = new SnapshotSeeder({
      rootDir: root,
      dataDir: join(dir, 'data'),
      expand: (s) => s,
      logger: silentLogger,
      fetch: () => async (r) => {
        fetches++;
        const reply = await restores.serveChunk({
          v: PROTOCOL_VERSION,
          type: 'snapshot-chunk',
          nodeId: 'n0',
          ...r,
        });
        if (mutate && reply.data) reply.data = mutate(Buffer.from(reply.data, 'base64')).toString('base64');
        return reply;
      },
    });
    return { dir, root, spec, seeder, target: join(root, 'var/lib/etcd/etcd-0-e2'), fetches: () => fetches };
  };

  it('fetches, checks and restores into the data dir once; a restart finds it there', async () => {
    const s = await setup();
    expect(await s.seeder.ensure(s.spec)).toBe('seeded');
    expect(readFileSync(join(s.target, 'member/snap/db')).equals(BYTES)).toBe(true);
    expect(existsSync(`${s.target}.restoring`)).toBe(false);
    expect(existsSync(join(s.dir, 'data/seeds', `${SNAP}.db`))).toBe(false);
    expect(s.fetches()).toBe(3);
    expect(await s.seeder.ensure(s.spec)).toBe('present');
    expect(s.fetches()).toBe(3);
    // the data dir vanished after the restore: not restored a second time (that would fork the cluster)
    rmSync(s.target, { recursive: true });
    await expect(s.seeder.ensure(s.spec)).rejects.toThrow(
      /restored from etcd snapshot .* already.*drover repair etcd/,
    );
    expect(existsSync(s.target)).toBe(false);
  });

  it('refuses a snapshot whose bytes do not match the plan, and leaves nothing behind', async () => {
    const s = await setup((b) => {
      b[0] = b[0]! ^ 1;
      return b;
    });
    await expect(s.seeder.ensure(s.spec)).rejects.toMatchObject({ code: 'DROVER_ERR_SEED' });
    await expect(s.seeder.ensure(s.spec)).rejects.toThrow(/SHA-256 .* the plan says/);
    expect(existsSync(s.target)).toBe(false);
    expect(existsSync(join(s.dir, 'data/seeds', `${SNAP}.db`))).toBe(false);
  });

  it('refuses without a restore tool, and when the tool fails, and for a data path the instance does not own', async () => {
    const s = await setup();
    const none = { ...s.spec, seed: { ...s.spec.seed!, tools: [{ command: 'no-such-tool-x', args: [] }] } };
    await expect(s.seeder.ensure(none)).rejects.toThrow(
      /none of the restore tools is installed.*no-such-tool-x/,
    );
    const failing = fakeTool(join(s.dir), 3);
    const broken = {
      ...s.spec,
      seed: { ...s.spec.seed!, tools: [{ command: failing, args: ['@SNAPSHOT@', '@TARGET@'] }] },
    };
    await expect(s.seeder.ensure(broken)).rejects.toThrow(/snapshot restore .* failed \(exit 3\)/);
    expect(existsSync(s.target)).toBe(false);
    expect(existsSync(`${s.target}.restoring`)).toBe(false);
    const elsewhere = { ...s.spec, seed: { ...s.spec.seed!, dataPath: '/etc' } };
    await expect(s.seeder.ensure(elsewhere)).rejects.toThrow(/not one of the instance's data paths/);
  });
});
