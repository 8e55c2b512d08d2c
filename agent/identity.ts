import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../lib/atomic-file.js';
import { type Fingerprint, isValidSubjectToken } from '../protocol/index.js';
import { AgentError } from './errors.js';

export interface Identity {
  nodeId: string;
  /** where the id came from, for logs */
  source: 'config' | 'data-dir' | 'machine-id' | 'generated';
  fingerprint: Fingerprint;
}

async function readTrimmed(path: string): Promise<string | undefined> {
  try {
    const s = (await readFile(path, 'utf8')).trim();
    return s === '' ? undefined : s;
  } catch {
    return undefined;
  }
}

/** The MAC addresses of real (non-loopback) interfaces, sorted: half of the host fingerprint. */
export function hostMacs(): string[] {
  const macs = new Set<string>();
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (!a.internal && a.mac && a.mac !== '00:00:00:00:00:00') macs.add(a.mac.toLowerCase());
    }
  }
  return [...macs].sort();
}

/**
 * Resolves the node id once and persists it in `<dataDir>/node-id`, so it never changes under a
 * running cluster. Order: configured id, the persisted one, `<rootDir>/etc/machine-id` (the host's
 * own when root is `/`; the lab's per-agent roots have none), else a generated one.
 */
export async function resolveIdentity(opts: {
  nodeId?: string;
  dataDir: string;
  rootDir: string;
}): Promise<Identity> {
  const idFile = join(opts.dataDir, 'node-id');
  const machineId = (await readTrimmed(join(opts.rootDir, 'etc/machine-id'))) ?? '';
  const persisted = await readTrimmed(idFile);
  let nodeId: string;
  let source: Identity['source'];
  if (opts.nodeId) {
    nodeId = opts.nodeId;
    source = 'config';
  } else if (persisted) {
    nodeId = persisted;
    source = 'data-dir';
  } else if (machineId && isValidSubjectToken(machineId)) {
    nodeId = machineId;
    source = 'machine-id';
  } else {
    nodeId = randomUUID().replace(/-/g, '');
    source = 'generated';
  }
  if (!isValidSubjectToken(nodeId)) {
    throw new AgentError(
      'DROVER_ERR_CONFIG',
      `node id ${JSON.stringify(nodeId)} (from ${source}) is not a valid id`,
    );
  }
  if (persisted !== nodeId) await writeFileAtomic(idFile, `${nodeId}\n`, 0o644);
  // The fingerprint's machine id falls back to the node id so that a wiped data dir on a host
  // without /etc/machine-id still looks like a different machine, not the same one.
  return { nodeId, source, fingerprint: { machineId: machineId || nodeId, macs: hostMacs() } };
}

/** The first non-internal IPv4 address, else loopback: the default advertise address. */
export function defaultAdvertiseAddress(): string {
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}
