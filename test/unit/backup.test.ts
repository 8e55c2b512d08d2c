// A cluster backup (coordinator/backup.ts) made from a real PKI dir and signing key, checked and
// restored into an empty data dir with a real lowdb store: the same CAs load from it, the topology
// and the snapshot are there, modes are kept; damaged or foreign input changes nothing.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkBackup, makeBackup, restoreBackup } from '../../coordinator/backup.js';
import { DirSnapshotBlobs } from '../../coordinator/etcd/snapshot-blobs.js';
import type { SnapshotRecord } from '../../coordinator/etcd/snapshot-book.js';
import { loadOrCreateSigningKey } from '../../coordinator/keys.js';
import { ClusterPki } from '../../coordinator/pki/index.js';
import { openLowdbStore } from '../../coordinator/store/lowdb.js';
import { parseTopology } from '../../coordinator/topology/index.js';
import { tempDir } from '../helpers/proc.js';

const TOPOLOGY = parseTopology(
  'apiVersion: drover.dev/v1\nkind: Topology\nmetadata: { name: prod }\ncluster: { name: prod }\nroles:\n  etcd: { replicas: 3 }\n',
  't.yaml',
);

async function made() {
  const src = tempDir('backup-src');
  const pki = await ClusterPki.open({ dir: join(src, 'pki') });
  await loadOrCreateSigningKey(src);
  const db = Buffer.from('an etcd database');
  const bytes = Buffer.concat([db, createHash('sha256').update(db).digest()]);
  const record: SnapshotRecord = {
    id: 'prod-20261204T000000Z-abcdef',
    cluster: 'prod',
    etcdClusterId: '42',
    memberId: '7',
    endpoint: 'https://10.0.0.1:2379',
    revision: 99,
    etcdVersion: '3.6.16',
    size: bytes.length,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    takenAt: '2026-12-04T00:00:00.000Z',
    trigger: 'operator',
  };
  const b = makeBackup({
    cluster: 'prod',
    topology: TOPOLOGY,
    dataDir: src,
    pkiDir: join(src, 'pki'),
    snapshot: { record, bytes },
    now: Date.parse('2026-12-04T00:00:00Z'),
  });
  return { src, pki, b, bytes, record };
}

describe('cluster backups', () => {
  it('restores into an empty data dir: the same CAs and signing key, the topology, the snapshot; modes kept', async () => {
    const { src, pki, b, bytes, record } = await made();
    // a round trip through JSON, as the file is
    const checked = checkBackup(JSON.parse(JSON.stringify(b)));
    const dst = tempDir('backup-dst');
    const store = await openLowdbStore({ path: join(dst, 'state.json') });
    const r = await restoreBackup(checked, dst, store, new DirSnapshotBlobs(dst));
    expect(r.files).toBeGreaterThanOrEqual(9);
    const again = await ClusterPki.open({ dir: join(dst, 'pki') });
    for (const ca of ['cluster', 'etcd', 'front-proxy'] as const) expect(again.caPem(ca)).toBe(pki.caPem(ca));
    expect(again.serviceAccountKeys()).toEqual(pki.serviceAccountKeys());
    expect(statSync(join(dst, 'pki', 'ca.key')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dst, 'plan-signing-key.pem'), 'utf8')).toBe(
      readFileSync(join(src, 'plan-signing-key.pem'), 'utf8'),
    );
    expect(statSync(join(dst, 'plan-signing-key.pem')).mode & 0o777).toBe(0o600);
    expect((await store.get('topology/prod'))?.value).toEqual(TOPOLOGY);
    expect((await store.get(`etcd-snapshots/${record.id}`))?.value).toEqual(record);
    expect(readFileSync(join(dst, 'etcd-snapshots', `${record.id}.db`))).toEqual(bytes);
    // a second restore into the same place is refused, changing nothing
    await expect(restoreBackup(checked, dst, store, new DirSnapshotBlobs(dst))).rejects.toMatchObject({
      code: 'DROVER_ERR_STORE_EXISTS',
    });
    await store.close();
  });

  it('a damaged, foreign or newer backup is refused before anything is written', async () => {
    const { b } = await made();
    expect(() => checkBackup({ ...b, topology: { ...b.topology, metadata: { name: 'other' } } })).toThrow(
      /the backup is damaged: its SHA-256 does not match/,
    );
    expect(() => checkBackup({ kind: 'Something' })).toThrow(/not a Drover cluster backup/);
    expect(() => checkBackup(null)).toThrow(/not a Drover cluster backup/);
    expect(() => checkBackup({ ...b, version: 2 })).toThrow(
      /backup version 2 is not one this coordinator reads/,
    );
    // a snapshot swapped for another, checksum recomputed over it: the record no longer matches
    const { sha256: _, ...body } = b;
    const swapped = { ...body, snapshot: { ...b.snapshot, data: Buffer.from('x').toString('base64') } };
    const { createHash: h } = await import('node:crypto');
    const { canonicalJson } = await import('../../protocol/index.js');
    const resealed = { ...swapped, sha256: h('sha256').update(canonicalJson(swapped)).digest('hex') };
    expect(() => checkBackup(resealed)).toThrow(/etcd snapshot does not match its record/);
    const escaping = { ...body, pki: { '../evil': { mode: 0o600, data: '' } } };
    const resealedEscape = { ...escaping, sha256: h('sha256').update(canonicalJson(escaping)).digest('hex') };
    expect(() => checkBackup(resealedEscape)).toThrow(/outside its dir: \.\.\/evil/);
    expect(existsSync('/evil')).toBe(false);
  });
});
