/**
 * A cluster backup, as `k0s backup` makes one: everything needed to rebuild a cluster's control
 * plane on a fresh coordinator. One JSON document:
 *
 * - a fresh etcd snapshot (its record and the file),
 * - the cluster's topology,
 * - the cluster PKI (`<dataDir>/pki`: the CAs' certificates and keys, the service-account keys),
 * - the plan-signing key agents pin (`plan-signing-key.pem`),
 * - a SHA-256 over all of it (canonical JSON), checked before anything is restored.
 *
 * It holds every secret of the cluster: only an admin token gets one, and it should be kept
 * encrypted at rest like any such backup. `drover-coordinator restore-backup FILE` writes it into
 * an empty data dir and store (`restoreBackup`): the PKI and key files with their modes, the
 * topology and the snapshot's record into the store, the snapshot file beside the others.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { DROVER_VERSION } from '../lib/version.js';
import { canonicalJson } from '../protocol/index.js';
import { coordinatorError } from './errors.js';
import { snapshotIntact } from './etcd/snapshot.js';
import type { SnapshotBlobs } from './etcd/snapshot-blobs.js';
import { SNAPSHOT_PREFIX, type SnapshotRecord } from './etcd/snapshot-book.js';
import type { Store } from './store/types.js';
import type { Topology } from './topology/index.js';

export const BACKUP_KIND = 'DroverClusterBackup';
export const BACKUP_VERSION = 1;

export interface ClusterBackup {
  kind: typeof BACKUP_KIND;
  version: number;
  createdAt: string;
  droverVersion: string;
  cluster: string;
  topology: Topology;
  signingKeyPem: string;
  /** path under the PKI dir → file mode and content (base64) */
  pki: Record<string, { mode: number; data: string }>;
  snapshot: { record: SnapshotRecord; data: string };
  /** SHA-256 (hex) of the canonical JSON of every other field */
  sha256: string;
}

const digest = (b: Omit<ClusterBackup, 'sha256'>) =>
  createHash('sha256').update(canonicalJson(b)).digest('hex');

function readTree(root: string): Record<string, { mode: number; data: string }> {
  const out: Record<string, { mode: number; data: string }> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile())
        out[relative(root, p)] = { mode: statSync(p).mode & 0o777, data: readFileSync(p).toString('base64') };
    }
  };
  walk(root);
  return out;
}

export function makeBackup(o: {
  cluster: string;
  topology: Topology;
  dataDir: string;
  pkiDir: string;
  snapshot: { record: SnapshotRecord; bytes: Uint8Array };
  now: number;
}): ClusterBackup {
  const body: Omit<ClusterBackup, 'sha256'> = {
    kind: BACKUP_KIND,
    version: BACKUP_VERSION,
    createdAt: new Date(o.now).toISOString(),
    droverVersion: DROVER_VERSION,
    cluster: o.cluster,
    topology: o.topology,
    signingKeyPem: readFileSync(join(o.dataDir, 'plan-signing-key.pem'), 'utf8'),
    pki: readTree(o.pkiDir),
    snapshot: { record: o.snapshot.record, data: Buffer.from(o.snapshot.bytes).toString('base64') },
  };
  return { ...body, sha256: digest(body) };
}

const bad = (message: string) => coordinatorError('DROVER_ERR_BAD_REQUEST', message);

/** Checks a backup before anything is written: kind, version, checksum, the snapshot inside. */
export function checkBackup(v: unknown): ClusterBackup {
  const b = v as Partial<ClusterBackup> | undefined;
  if (!b || typeof b !== 'object' || b.kind !== BACKUP_KIND)
    throw bad(`not a Drover cluster backup (kind ${JSON.stringify(b?.kind)}; want ${BACKUP_KIND})`);
  if (b.version !== BACKUP_VERSION)
    throw bad(
      `backup version ${JSON.stringify(b.version)} is not one this coordinator reads (${BACKUP_VERSION})`,
    );
  const { sha256, ...body } = b as ClusterBackup;
  if (typeof sha256 !== 'string' || digest(body) !== sha256)
    throw bad('the backup is damaged: its SHA-256 does not match its content; nothing was restored');
  const bytes = Buffer.from(b.snapshot?.data ?? '', 'base64');
  if (
    !b.snapshot?.record ||
    createHash('sha256').update(bytes).digest('hex') !== b.snapshot.record.sha256 ||
    !snapshotIntact(bytes)
  )
    throw bad("the backup's etcd snapshot does not match its record; nothing was restored");
  for (const p of Object.keys(b.pki ?? {}))
    if (p.startsWith('/') || p.split('/').includes('..'))
      throw bad(`the backup names a PKI file outside its dir: ${p}`);
  return b as ClusterBackup;
}

/**
 * Writes a checked backup into `dataDir`, which must hold no coordinator state yet (no state.json,
 * no PKI, no signing key): the PKI files and the signing key with their modes, the topology into
 * `store`, the snapshot file into `blobs` (snapshotBlobsFor: the data dir or the object store) and
 * its record into `store`.
 */
export async function restoreBackup(
  b: ClusterBackup,
  dataDir: string,
  store: Store,
  blobs: SnapshotBlobs,
): Promise<{ files: number }> {
  for (const p of ['plan-signing-key.pem', 'pki'])
    if (existsSync(join(dataDir, p)))
      throw coordinatorError(
        'DROVER_ERR_STORE_EXISTS',
        `${join(dataDir, p)} exists: a backup is restored into an empty data dir only; nothing was restored`,
      );
  if ((await store.list('')).length > 0)
    throw coordinatorError(
      'DROVER_ERR_STORE_EXISTS',
      'the store already holds a state: a backup is restored into an empty one only; nothing was restored',
    );
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const pki = join(dataDir, 'pki');
  let files = 0;
  for (const [p, f] of Object.entries(b.pki)) {
    const path = join(pki, p);
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    writeFileSync(path, Buffer.from(f.data, 'base64'), { mode: f.mode & 0o777 });
    files++;
  }
  writeFileSync(join(dataDir, 'plan-signing-key.pem'), b.signingKeyPem, { mode: 0o600 });
  await store.put(`topology/${b.topology.metadata.name}`, b.topology);
  await blobs.put(b.snapshot.record.id, Buffer.from(b.snapshot.data, 'base64'));
  await store.put(`${SNAPSHOT_PREFIX}${b.snapshot.record.id}`, b.snapshot.record);
  await store.flush();
  return { files: files + 1 };
}
