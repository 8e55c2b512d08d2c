import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, credsAuthenticator } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EtcdTls } from '../../coordinator/etcd/admin.js';
import { DirSnapshotBlobs, ObjectStoreSnapshotBlobs } from '../../coordinator/etcd/snapshot-blobs.js';
import { SnapshotBook, type SnapshotBookPorts } from '../../coordinator/etcd/snapshot-book.js';
import { renewingEtcdCredentials } from '../../coordinator/etcd/transport.js';
import type { EventInput } from '../../coordinator/events.js';
import { ClusterPki } from '../../coordinator/pki/index.js';
import { openJetStreamStore } from '../../coordinator/store/jetstream.js';
import { openLowdbStore } from '../../coordinator/store/lowdb.js';
import { systemClock } from '../../lib/clock.js';
import { silentLogger } from '../../lib/logger.js';
import { type EtcdTlsHandle, startPkiEtcd } from '../helpers/etcd-tls.js';
import { issueViaCsr } from '../helpers/pki.js';
import {
  autoCleanup,
  freePort,
  killAndWait,
  requireBinary,
  rmrf,
  spawnLogged,
  tempDir,
  waitFor,
} from '../helpers/proc.js';
import { startNats } from '../helpers/servers.js';

/**
 * etcd snapshots against a real 3-member etcd with mutual TLS (certificates from Drover's PKI),
 * taken with the coordinator's own etcd client certificate: the record names etcd's cluster id
 * and revision, the file is what `etcdctl snapshot restore` takes (a restored etcd has the keys),
 * a damaged file is refused before it is served, and the JetStream object store keeps one as
 * well as the data dir.
 */
let dir: string;
let pki: ClusterPki;
let etcd: EtcdTlsHandle;
let tls: EtcdTls;
let client: string[];

function etcdctl(args: string[], endpoints = etcd.endpoints) {
  const r = spawnSync(
    requireBinary('etcdctl'),
    [`--endpoints=${endpoints}`, '--dial-timeout=2s', '--command-timeout=8s', ...client, ...args],
    { encoding: 'utf8', env: { ...process.env, ETCDCTL_API: '3' }, timeout: 20_000 },
  );
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

beforeAll(async () => {
  dir = tempDir('etcd-snapshots');
  pki = await ClusterPki.open({ dir: join(dir, 'pki'), clusterName: 'snap' });
  const c = await issueViaCsr(
    pki,
    'etcd-client',
    { id: 'cp-1', hostname: 'cp-1', addresses: [] },
    'kube-apiserver',
  );
  writeFileSync(join(dir, 'ca.crt'), c.caPem);
  writeFileSync(join(dir, 'client.crt'), c.certPem);
  writeFileSync(join(dir, 'client.key'), c.keyPem, { mode: 0o600 });
  client = [
    `--cacert=${join(dir, 'ca.crt')}`,
    `--cert=${join(dir, 'client.crt')}`,
    `--key=${join(dir, 'client.key')}`,
  ];
  etcd = await startPkiEtcd(pki, { caPem: c.caPem, certPem: c.certPem, keyPem: c.keyPem });
  for (let i = 0; i < 50; i++) expect(etcdctl(['put', `/snap/key-${i}`, `value-${i}`]).code).toBe(0);
  // the coordinator's own etcd client certificate, as the daemon wires it
  tls = await renewingEtcdCredentials(() => pki.etcdClientCredentials(), systemClock)();
}, 120_000);
afterAll(() => rmrf(dir));

function bookOn(o: {
  store: SnapshotBookPorts['store'];
  blobs: SnapshotBookPorts['blobs'];
  endpoints: string[];
  events?: EventInput[];
}) {
  return new SnapshotBook({
    store: o.store,
    blobs: o.blobs,
    clusters: () => [{ cluster: 'snap', schedule: { every: 3600_000, keep: 2, enabled: true } }],
    members: async () => ({ endpoints: o.endpoints, tls }),
    emit: (e) => void o.events?.push(e),
    clock: systemClock,
    log: silentLogger,
  });
}

describe('etcd snapshots from a real etcd over mutual TLS', () => {
  it('a snapshot from a healthy member (a dead one tried first), recorded, restorable; a damaged file is refused', async () => {
    const data = tempDir('snap-data');
    const store = await openLowdbStore({ path: join(data, 'state.json') });
    autoCleanup(async () => {
      await store.close();
      rmrf(data);
    });
    const events: EventInput[] = [];
    const dead = `https://127.0.0.1:${await freePort()}`;
    const book = bookOn({
      store,
      blobs: new DirSnapshotBlobs(data),
      endpoints: [dead, ...etcd.members.map((m) => m.clientUrl)],
      events,
    });
    await book.load();
    const rec = await book.save('snap', 'operator', 'ops');
    // etcdctl prints the uint64 as a JSON number: read it as text (JSON.parse would round it)
    const status = etcdctl(['endpoint', 'status', '-w', 'json'], etcd.members[0]!.clientUrl).out;
    expect(rec.etcdClusterId).toBe(/"cluster_id":(\d+)/.exec(status)?.[1]);
    expect(rec.revision).toBeGreaterThanOrEqual(51);
    expect(rec.endpoint).toBe(etcd.members[0]!.clientUrl);
    expect(rec).toMatchObject({ cluster: 'snap', trigger: 'operator', by: 'ops' });
    expect(events.map((e) => e.kind)).toEqual(['etcd.snapshot-saved']);
    // kept in the data dir, readable by its owner only, and recorded in the store
    const file = join(data, 'etcd-snapshots', `${rec.id}.db`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(data, 'etcd-snapshots')).mode & 0o777).toBe(0o700);
    expect((await store.get(`etcd-snapshots/${rec.id}`))?.value).toEqual(rec);
    const { bytes } = await book.read(rec.id);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(rec.sha256);
    expect(bytes.length).toBe(rec.size);

    // the exported file is what etcdctl restores: a single etcd from it has every key
    const out = join(data, 'export.db');
    writeFileSync(out, bytes);
    const restored = join(data, 'restored');
    const peer = await freePort();
    const cport = await freePort();
    const r = spawnSync(
      requireBinary('etcdctl'),
      [
        'snapshot',
        'restore',
        out,
        `--data-dir=${restored}`,
        '--name=r1',
        `--initial-cluster=r1=http://127.0.0.1:${peer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${peer}`,
      ],
      { encoding: 'utf8', env: { ...process.env, ETCDCTL_API: '3' }, timeout: 30_000 },
    );
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
    const one = spawnLogged(requireBinary('etcd'), [
      '--name=r1',
      `--data-dir=${restored}`,
      `--listen-peer-urls=http://127.0.0.1:${peer}`,
      `--listen-client-urls=http://127.0.0.1:${cport}`,
      `--advertise-client-urls=http://127.0.0.1:${cport}`,
    ]);
    autoCleanup(() => killAndWait(one));
    const got = await waitFor(
      'the restored etcd answers',
      () => {
        const g = spawnSync(
          requireBinary('etcdctl'),
          [`--endpoints=http://127.0.0.1:${cport}`, 'get', '/snap/key-49', '--print-value-only'],
          { encoding: 'utf8', env: { ...process.env, ETCDCTL_API: '3' }, timeout: 5000 },
        );
        return g.status === 0 && g.stdout.trim() ? g.stdout.trim() : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 250 },
    );
    expect(got).toBe('value-49');

    // one byte changed on disk: refused before anyone gets it
    const damaged = Buffer.from(readFileSync(file));
    damaged[100] = damaged[100]! ^ 0xff;
    writeFileSync(file, damaged);
    await expect(book.read(rec.id)).rejects.toMatchObject({ code: 'DROVER_ERR_SNAPSHOT_DAMAGED' });
    // and a missing id is named
    await expect(book.read('snap-nope')).rejects.toMatchObject({ code: 'DROVER_ERR_SNAPSHOT_NOT_FOUND' });
  }, 120_000);

  it('no member answers: a clear error and an event, nothing recorded', async () => {
    const data = tempDir('snap-none');
    const store = await openLowdbStore({ path: join(data, 'state.json') });
    autoCleanup(async () => {
      await store.close();
      rmrf(data);
    });
    const events: EventInput[] = [];
    const book = bookOn({
      store,
      blobs: new DirSnapshotBlobs(data),
      endpoints: [`https://127.0.0.1:${await freePort()}`],
      events,
    });
    await expect(book.save('snap', 'operator')).rejects.toMatchObject({
      code: 'DROVER_ERR_ETCD_UNAVAILABLE',
      message: expect.stringMatching(
        /no etcd member gave a snapshot: https:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/,
      ),
    });
    expect(events.map((e) => e.kind)).toEqual(['etcd.snapshot-failed']);
    expect(book.list()).toEqual([]);
    expect(await store.list('etcd-snapshots/')).toEqual([]);
    // a client without the coordinator's certificate is refused by etcd: named too
    const noCert = new SnapshotBook({
      store,
      blobs: new DirSnapshotBlobs(data),
      clusters: () => [{ cluster: 'snap', schedule: { every: 3600_000, keep: 2, enabled: true } }],
      members: async () => ({ endpoints: [etcd.members[0]!.clientUrl], tls: { ca: tls.ca } }),
      emit: () => {},
      clock: systemClock,
      log: silentLogger,
    });
    await expect(noCert.save('snap', 'operator')).rejects.toMatchObject({
      code: 'DROVER_ERR_ETCD_UNAVAILABLE',
    });
  }, 60_000);

  it('in the JetStream object store when the JetStream store is in use', async () => {
    const nats = await startNats();
    const nc = await connect({
      servers: nats.url,
      authenticator: credsAuthenticator(readFileSync(nats.coordinatorCreds)),
      tls: { caFile: nats.caFile },
    });
    autoCleanup(() => nc.close());
    const store = await openJetStreamStore({ nc, bucket: 'snapstate', replicas: 1 });
    autoCleanup(() => store.close());
    const blobs = await ObjectStoreSnapshotBlobs.open(nc, 'snapstate', 1);
    expect(blobs.describe).toBe('the JetStream object store snapstate-snapshots (R1)');
    const book = bookOn({ store, blobs, endpoints: etcd.members.map((m) => m.clientUrl) });
    const rec = await book.save('snap', 'schedule');
    const again = bookOn({ store, blobs, endpoints: [] });
    await again.load();
    expect(again.list()).toEqual([rec]);
    const { bytes } = await again.read(rec.id);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(rec.sha256);
    await again.delete(rec.id);
    expect(await blobs.get(rec.id)).toBeUndefined();
    expect(again.list()).toEqual([]);
  }, 60_000);
});
