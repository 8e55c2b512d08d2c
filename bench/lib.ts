// Shared helpers for the benchmarks: free ports, binaries, /proc sampling, a nats-server.
import { type ChildProcess, spawn } from 'node:child_process';
import { createPrivateKey, createPublicKey, type KeyObject, randomBytes, sign } from 'node:crypto';
import { accessSync, constants, copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Prefix } from '@nats-io/nkeys';
import { Codec } from '@nats-io/nkeys/lib/codec.js';
import { type Authenticator, connect, credsAuthenticator, nkeys } from 'nats';
import { type PreparedBus, prepareBus } from '../coordinator/bus/server-config.js';

export const CLK_TCK = 100; // Linux USER_HZ

import { freePort } from '../lib/free-port.js';

export { freePort };

export function findBinary(name: string): string {
  for (const d of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    try {
      accessSync(join(d, name), constants.X_OK);
      return join(d, name);
    } catch {}
  }
  throw new Error(`${name} is not installed (apt-get install -y ${name})`);
}

/** RSS (kB) and cumulative CPU ticks (user+system) of a process, from /proc. */
export function procSample(pid: number): { rssKb: number; ticks: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { rssKb, ticks: Number(f[11]) + Number(f[12]) };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitUntil(
  what: string,
  fn: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
  stepMs = 20,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(stepMs);
  }
}

/**
 * A PLAIN nats-server: no auth, no TLS (nats://). Only for the "without auth and TLS" side of
 * bench/bus-security.bench.ts; everything else runs on the secure bus (startSecureNats).
 */
export async function startNatsServer(): Promise<{ url: string; child: ChildProcess; stop(): void }> {
  const port = await freePort();
  const child = spawn(findBinary('nats-server'), ['-a', '127.0.0.1', '-p', String(port)], {
    stdio: 'ignore',
  });
  const url = `nats://127.0.0.1:${port}`;
  await waitUntil(
    'nats-server',
    async () => {
      try {
        await (await connect({ servers: url })).close();
        return true;
      } catch {
        return false;
      }
    },
    10_000,
    100,
  );
  return { url, child, stop: () => child.kill('SIGKILL') };
}

export function cpuPercent(before: { ticks: number }, after: { ticks: number }, ms: number): number {
  return (((after.ticks - before.ticks) / CLK_TCK) * 1000 * 100) / ms;
}

export function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export interface SecureNats {
  /** tls://127.0.0.1:port */
  url: string;
  child: ChildProcess;
  /** the bus dir (keys, creds, CA): give it to the coordinator as `--bus-dir` */
  dir: string;
  bus: PreparedBus;
  caFile: string;
  /** the coordinator identity's authenticator (unlimited in the DROVER account) */
  coordinatorAuth(): Authenticator;
  /**
   * Node `nodeId`'s credentials, kept in memory (no creds file): a fresh user key and the node
   * user JWT the coordinator would have issued at join (`BusAuth.nodeUser`), as an authenticator.
   * Minted ahead by `prepareNodes` when given, else now.
   */
  nodeAuth(nodeId: string): Promise<Authenticator>;
  /** mints the node users of `nodeIds` ahead, on every core (see bench/mint-worker.ts) */
  prepareNodes(nodeIds: readonly string[]): Promise<void>;
  pid(): number;
  stop(): void;
}

/**
 * nats-server with Drover's generated bus config (coordinator/bus/server-config.ts
 * `prepareBus`): operator/account JWTs and TLS from the bus CA, as the coordinator runs it.
 */
export async function startSecureNats(o: { jetstream?: boolean } = {}): Promise<SecureNats> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'drover-bench-bus-'));
  const bus = await prepareBus({
    dir,
    listen: `127.0.0.1:${port}`,
    serverName: `drover_bench_${port}`,
    tlsHosts: ['127.0.0.1'],
    jetstream: o.jetstream ?? false,
    configFile: join(dir, 'nats.conf'),
  });
  const child = spawn(findBinary('nats-server'), ['-c', bus.configFile], { stdio: 'ignore' });
  const url = `tls://127.0.0.1:${port}`;
  const caFile = bus.tls!.caFile;
  const coordinatorAuth = () => credsAuthenticator(readFileSync(bus.auth.coordinatorCredsFile));
  const minted = new Map<string, Authenticator>();
  await waitUntil(
    'nats-server (auth+TLS)',
    async () => {
      try {
        await (await connect({ servers: url, authenticator: coordinatorAuth(), tls: { caFile } })).close();
        return true;
      } catch {
        return false;
      }
    },
    10_000,
    100,
  );
  return {
    url,
    child,
    dir,
    bus,
    caFile,
    coordinatorAuth,
    async nodeAuth(nodeId) {
      const ready = minted.get(nodeId);
      if (ready) return ready;
      const key = nodeKey();
      return nodeAuthenticator((await bus.auth.nodeUser(nodeId, key.publicKey)).jwt, key);
    },
    async prepareNodes(all) {
      const nodeIds = all.filter((id) => !minted.has(id));
      if (nodeIds.length === 0) return;
      const keys = nodeIds.map(() => nodeKey());
      const width = Math.max(1, cpus().length);
      const per = Math.ceil(nodeIds.length / width);
      const parts = await Promise.all(
        Array.from({ length: width }, (_, w) => {
          // a copy of the keys: BusAuth.open rewrites the coordinator's and system creds in its dir
          const copy = mkdtempSync(join(tmpdir(), 'drover-bench-mint-'));
          for (const f of ['operator.nk', 'account-sys.nk', 'account-drover.nk'])
            copyFileSync(join(dir, f), join(copy, f));
          const items = nodeIds
            .slice(w * per, (w + 1) * per)
            .map((nodeId, i) => ({ nodeId, publicKey: keys[w * per + i]!.publicKey }));
          return new Promise<string[]>((resolve, reject) => {
            // a worker cannot start from a .ts file: register tsx in it, then import the module
            const url = new URL('./mint-worker.ts', import.meta.url).href;
            const worker = new Worker(
              `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(url)}); })`,
              { eval: true, workerData: { dir: copy, items } },
            );
            worker.once('message', resolve);
            worker.once('error', reject);
            worker.once('exit', (code) => code !== 0 && reject(new Error(`mint worker exited ${code}`)));
          }).finally(() => rmSync(copy, { recursive: true, force: true }));
        }),
      );
      const jwts = parts.flat();
      for (let i = 0; i < jwts.length; i++) minted.set(nodeIds[i]!, nodeAuthenticator(jwts[i]!, keys[i]!));
    },
    pid: () => child.pid!,
    stop() {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// PKCS#8 DER of an Ed25519 private key, before its 32-byte seed
const ED25519_PKCS8 = Buffer.from('302e020100300506032b657004220420', 'hex');

/**
 * A node's user key, made and used with node:crypto (native Ed25519) rather than nkeys' pure-JS
 * tweetnacl, which costs ~10 ms per signature here: 5,000 connections sign a nonce each.
 */
function nodeKey(): { publicKey: string; privateKey: KeyObject } {
  const privateKey = createPrivateKey({
    key: Buffer.concat([ED25519_PKCS8, randomBytes(32)]),
    format: 'der',
    type: 'pkcs8',
  });
  const raw = Buffer.from(createPublicKey(privateKey).export({ format: 'jwk' }).x!, 'base64url');
  return { publicKey: new TextDecoder().decode(Codec.encode(Prefix.User, raw)), privateKey };
}

/** What `jwtAuthenticator(jwt, seed)` sends (jwt, public key, nonce signature), signed natively. */
function nodeAuthenticator(jwt: string, key: { publicKey: string; privateKey: KeyObject }): Authenticator {
  return (nonce?: string) => ({
    jwt,
    nkey: key.publicKey,
    sig: nonce ? nkeys.encode(sign(null, new TextEncoder().encode(nonce), key.privateKey)) : '',
  });
}

/** This process cannot raise its own open-files limit: fail early, saying what is needed. */
export function checkOpenFiles(need: number): void {
  let soft = Number.NaN;
  try {
    const m = /Max open files\s+(\d+|unlimited)/.exec(readFileSync('/proc/self/limits', 'utf8'));
    soft = m?.[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m?.[1]);
  } catch {}
  if (soft < need)
    throw new Error(
      `this bench needs about ${need} open files (one socket per simulated agent, here and in nats-server); the limit is ${soft}: run it under \`ulimit -n ${need * 2}\``,
    );
}
