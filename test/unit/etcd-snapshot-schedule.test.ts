// The snapshot schedule decided from the records alone (SnapshotBook.due), and a pass acting on
// it (tick): due per cluster at its `every`, pruned to its `keep` newest scheduled snapshots,
// operator snapshots kept. The etcd side is a narrow port here (`take`); the files are real
// (data dir); test/integration/etcd-snapshots.test.ts takes them from a real etcd.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DirSnapshotBlobs } from '../../coordinator/etcd/snapshot-blobs.js';
import { SnapshotBook, type SnapshotSchedule } from '../../coordinator/etcd/snapshot-book.js';
import { etcdClusters, memberEndpoints, snapshotSchedule } from '../../coordinator/etcd/snapshot-sources.js';
import type { EventInput } from '../../coordinator/events.js';
import { MemoryStore } from '../../coordinator/store/index.js';
import { parseTopology } from '../../coordinator/topology/index.js';
import { ManualClock } from '../../lib/clock.js';
import { silentLogger } from '../../lib/logger.js';
import { rmrf, tempDir } from '../helpers/proc.js';

/** A file as etcd sends it: the database bytes, then their SHA-256. */
function etcdFile(text: string): Buffer {
  const db = Buffer.from(text);
  return Buffer.concat([db, createHash('sha256').update(db).digest()]);
}

function setup(schedule: Partial<SnapshotSchedule> = {}) {
  const clock = new ManualClock(Date.parse('2026-12-04T00:00:00Z'));
  const store = new MemoryStore();
  const dir = tempDir('snap-sched');
  const events: EventInput[] = [];
  let revision = 100;
  const book = new SnapshotBook({
    store,
    blobs: new DirSnapshotBlobs(dir),
    clusters: () => [{ cluster: 'c', schedule: { every: 3600_000, keep: 3, enabled: true, ...schedule } }],
    members: async () => ({ endpoints: ['https://10.0.0.1:2379'], tls: {} }),
    emit: (e) => void events.push(e),
    clock,
    log: silentLogger,
    take: async (endpoints) => {
      const bytes = etcdFile(`db at ${++revision}`);
      return {
        clusterId: '42',
        memberId: '7',
        revision,
        version: '3.4.23',
        dbSize: bytes.length - 32,
        endpoint: endpoints[0]!,
        bytes,
        sha256: createHash('sha256').update(bytes).digest('hex'),
      };
    },
  });
  return { clock, store, dir, events, book, close: () => rmrf(dir) };
}

describe('etcd snapshot schedule', () => {
  it('due at start, then every `every`; an operator snapshot does not reset the schedule', async () => {
    const { clock, book, close } = setup();
    expect(book.due(clock.now()).take).toEqual(['c']);
    await book.tick();
    expect(book.list().map((r) => r.trigger)).toEqual(['schedule']);
    expect(book.due(clock.now()).take).toEqual([]);
    clock.advance(30 * 60_000);
    await book.save('c', 'operator', 'ops');
    clock.advance(30 * 60_000 - 1);
    expect(book.due(clock.now()).take).toEqual([]);
    clock.advance(1);
    expect(book.due(clock.now()).take).toEqual(['c']);
    close();
  });

  it('keeps the newest `keep` scheduled snapshots, prunes the rest (files too), never an operator one', async () => {
    const { clock, book, store, events, close } = setup({ keep: 3 });
    await book.save('c', 'operator');
    const first: string[] = [];
    for (let i = 0; i < 5; i++) {
      await book.tick();
      first.push(book.list().find((r) => r.trigger === 'schedule')!.id);
      clock.advance(3600_000);
    }
    const left = book.list();
    expect(left.filter((r) => r.trigger === 'schedule').map((r) => r.id)).toEqual(first.slice(-3).reverse());
    expect(left.filter((r) => r.trigger === 'operator')).toHaveLength(1);
    expect((await store.list('etcd-snapshots/')).length).toBe(4);
    // the pruned files are gone
    await expect(book.read(first[0]!)).rejects.toMatchObject({ code: 'DROVER_ERR_SNAPSHOT_NOT_FOUND' });
    for (const r of left) expect((await book.read(r.id)).record).toEqual(r);
    expect(events.filter((e) => e.kind === 'etcd.snapshot-deleted')).toHaveLength(2);
    close();
  });

  it('a disabled schedule takes nothing; a cluster without etcd is refused on demand', async () => {
    const { clock, book, close } = setup({ enabled: false });
    expect(book.due(clock.now()).take).toEqual([]);
    await book.tick();
    expect(book.list()).toEqual([]);
    await expect(book.save('other', 'operator')).rejects.toMatchObject({
      code: 'DROVER_ERR_BAD_REQUEST',
      message: 'cluster "other" runs no etcd: nothing to snapshot',
    });
    close();
  });

  it('two requests at once get one snapshot', async () => {
    const { book, close } = setup();
    const [a, b] = await Promise.all([book.save('c', 'operator'), book.save('c', 'operator')]);
    expect(a).toEqual(b);
    expect(book.list()).toHaveLength(1);
    close();
  });

  it('a file whose trailing etcd hash is wrong is refused even when its recorded checksum matches', async () => {
    const { book, close, dir } = setup();
    const rec = await book.save('c', 'operator');
    const { writeFileSync } = await import('node:fs');
    const bad = Buffer.concat([Buffer.from('not a database'), Buffer.alloc(32)]);
    writeFileSync(`${dir}/etcd-snapshots/${rec.id}.db`, bad);
    await expect(book.read(rec.id)).rejects.toMatchObject({ code: 'DROVER_ERR_SNAPSHOT_DAMAGED' });
    close();
  });
});

describe('what the schedule reads of the topology and the members', () => {
  const topo = (extra = '') =>
    parseTopology(
      `apiVersion: drover.dev/v1
kind: Topology
metadata: { name: t }
cluster: { name: t${extra} }
roles:
  etcd: { replicas: 3 }
`,
      't.yaml',
    );

  it('defaults every 6 h and keep 10; the topology sets them; more often than once a minute is refused', () => {
    expect(snapshotSchedule(topo())).toEqual({ every: 6 * 3600_000, keep: 10, enabled: true });
    expect(snapshotSchedule(topo(', etcdSnapshots: { every: 12h, keep: 5 }'))).toEqual({
      every: 12 * 3600_000,
      keep: 5,
      enabled: true,
    });
    expect(() => topo(', etcdSnapshots: { every: 10s }')).toThrow(
      /etcdSnapshots\.every.*at most once a minute/s,
    );
    expect(() => topo(', etcdSnapshots: { keep: 0 }')).toThrow(/keep.*from 1 to 1000/s);
    expect(etcdClusters([topo()]).map((c) => c.cluster)).toEqual(['t']);
  });

  it('member endpoints: healthy first, none on an Unreachable node', () => {
    const node = (id: string, address: string) => ({ id, address }) as never;
    const a = (nodeId: string) => ({ instanceId: `etcd#${nodeId}`, role: 'etcd', nodeId }) as never;
    expect(
      memberEndpoints(
        [
          { assignment: a('1'), node: node('1', '10.0.0.1'), state: 'Ready', healthy: false },
          { assignment: a('2'), node: node('2', '10.0.0.2'), state: 'Unreachable', healthy: true },
          { assignment: a('3'), node: node('3', 'fd00::3'), state: 'Ready', healthy: true },
        ],
        'https',
      ),
    ).toEqual(['https://[fd00::3]:2379', 'https://10.0.0.1:2379']);
  });
});
