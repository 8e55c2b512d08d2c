/**
 * Taking an etcd snapshot from a healthy member over etcd's v3 JSON gateway, with the
 * coordinator's etcd client certificate: `/v3/maintenance/status` names the cluster, the member
 * and the revision; `/v3/maintenance/snapshot` streams the backend database, one JSON message per
 * chunk (`{"result":{"blob":"<base64>","remaining_bytes":"…"}}`), its last chunk the SHA-256 of
 * the database — the same bytes `etcdctl snapshot save` writes, so `etcdutl snapshot restore`
 * takes the file as it is and checks that hash itself.
 *
 * The stream is checked before anything keeps it: the trailing hash must match the database (a
 * cut or corrupted stream is refused), and it must fit the size cap.
 */
import { createHash } from 'node:crypto';
import { coordinatorError } from '../errors.js';
import { type EtcdTls, gatewayRequest } from './admin.js';

/** sha256's output length: the trailer etcd appends to a snapshot stream */
const HASH_BYTES = 32;
/** etcd's default backend quota is 2 GiB; a snapshot above 8 GiB is refused */
export const SNAPSHOT_MAX_BYTES = 8 * 1024 ** 3;

export interface EtcdMemberStatus {
  /** the cluster id (uint64 as a decimal string) */
  clusterId: string;
  memberId: string;
  revision: number;
  /** the member's etcd version */
  version: string;
  dbSize: number;
}

export interface TakenSnapshot extends EtcdMemberStatus {
  endpoint: string;
  /** the whole file as etcd sent it: the database, then its 32-byte SHA-256 */
  bytes: Buffer;
  /** SHA-256 (hex) of `bytes`: the checksum the record keeps and an export is checked against */
  sha256: string;
}

/**
 * True when `bytes` ends with the SHA-256 of what comes before (etcd's snapshot integrity
 * trailer): the check `etcdutl snapshot restore` makes, made before anything is touched.
 */
export function snapshotIntact(bytes: Uint8Array): boolean {
  if (bytes.length <= HASH_BYTES) return false;
  const db = bytes.subarray(0, bytes.length - HASH_BYTES);
  const trailer = Buffer.from(bytes.subarray(bytes.length - HASH_BYTES));
  return createHash('sha256').update(db).digest().equals(trailer);
}

/** A POST to the gateway; an HTTP error is thrown with its body. */
async function post(
  endpoint: string,
  path: string,
  tls: EtcdTls,
  timeoutMs: number,
  onData?: (chunk: Buffer) => void,
): Promise<string> {
  const { status, text } = await gatewayRequest(endpoint, path, tls, {
    timeoutMs,
    ...(onData ? { onData } : {}),
  });
  if (status >= 400) throw new Error(`${endpoint}${path}: HTTP ${status}: ${text.slice(0, 300)}`);
  return text;
}

/** The member's status: cluster id, member id, revision, version, database size. */
export async function memberStatus(
  endpoint: string,
  tls: EtcdTls,
  timeoutMs = 5000,
): Promise<EtcdMemberStatus> {
  const text = await post(endpoint, '/v3/maintenance/status', tls, timeoutMs);
  let j: {
    header?: { cluster_id?: string; member_id?: string; revision?: string };
    version?: string;
    dbSize?: string;
  };
  try {
    j = JSON.parse(text);
  } catch {
    throw new Error(`${endpoint}/v3/maintenance/status: not JSON: ${text.slice(0, 200)}`);
  }
  const h = j.header ?? {};
  if (!h.cluster_id || !h.member_id)
    throw new Error(`${endpoint}/v3/maintenance/status: no cluster or member id in ${text.slice(0, 200)}`);
  return {
    clusterId: String(h.cluster_id),
    memberId: String(h.member_id),
    revision: Number(h.revision ?? 0),
    version: j.version ?? '',
    dbSize: Number(j.dbSize ?? 0),
  };
}

/**
 * Splits the gateway's stream into its JSON messages. grpc-gateway writes one message per line;
 * a message may arrive in pieces, so lines are cut only at newlines.
 */
class MessageSplitter {
  private rest = '';
  constructor(private readonly onMessage: (text: string) => void) {}
  push(chunk: Buffer): void {
    this.rest += chunk.toString('utf8');
    let nl = this.rest.indexOf('\n');
    while (nl >= 0) {
      const line = this.rest.slice(0, nl).trim();
      this.rest = this.rest.slice(nl + 1);
      if (line) this.onMessage(line);
      nl = this.rest.indexOf('\n');
    }
  }
  end(): void {
    const line = this.rest.trim();
    this.rest = '';
    if (line) this.onMessage(line);
  }
}

/** Streams one member's snapshot and checks it (trailing hash, size cap). */
async function streamSnapshot(endpoint: string, tls: EtcdTls, timeoutMs: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  let failure: Error | undefined;
  const split = new MessageSplitter((line) => {
    if (failure) return;
    let m: { result?: { blob?: string }; error?: { message?: string; grpc_code?: number } };
    try {
      m = JSON.parse(line);
    } catch {
      failure = new Error(`a snapshot message is not JSON: ${line.slice(0, 120)}`);
      return;
    }
    if (m.error) {
      failure = new Error(`etcd refused the snapshot: ${m.error.message ?? JSON.stringify(m.error)}`);
      return;
    }
    const blob = Buffer.from(m.result?.blob ?? '', 'base64');
    size += blob.length;
    if (size > SNAPSHOT_MAX_BYTES) {
      failure = new Error(`the snapshot is over ${SNAPSHOT_MAX_BYTES / 1024 ** 3} GiB`);
      return;
    }
    parts.push(blob);
  });
  await post(endpoint, '/v3/maintenance/snapshot', tls, timeoutMs, (c) => split.push(c));
  split.end();
  if (failure) throw failure;
  const bytes = Buffer.concat(parts);
  if (!snapshotIntact(bytes))
    throw new Error(
      `the snapshot stream from ${endpoint} is damaged or cut short (${bytes.length} bytes; its SHA-256 trailer does not match)`,
    );
  return bytes;
}

/**
 * A snapshot from the first of `endpoints` that answers (give the healthy members first). Throws
 * DROVER_ERR_ETCD_UNAVAILABLE naming every endpoint's failure when none does.
 */
export async function takeEtcdSnapshot(
  endpoints: readonly string[],
  tls: EtcdTls,
  timeoutMs = 120_000,
): Promise<TakenSnapshot> {
  const errors: string[] = [];
  for (const endpoint of endpoints) {
    try {
      const status = await memberStatus(endpoint, tls);
      const bytes = await streamSnapshot(endpoint, tls, timeoutMs);
      return { ...status, endpoint, bytes, sha256: createHash('sha256').update(bytes).digest('hex') };
    } catch (err) {
      errors.push(`${endpoint}: ${(err as Error).message}`);
    }
  }
  throw coordinatorError(
    'DROVER_ERR_ETCD_UNAVAILABLE',
    endpoints.length
      ? `no etcd member gave a snapshot: ${errors.join('; ')}`
      : 'no etcd member to take a snapshot from (none assigned, or every one Unreachable)',
  );
}
