// Shared helpers for the benchmarks: free ports, binaries, /proc sampling, a nats-server.
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createUser } from '@nats-io/nkeys';
import { type Authenticator, connect, credsAuthenticator, jwtAuthenticator } from 'nats';
import { type PreparedBus, prepareBus } from '../coordinator/bus/server-config.js';

export const CLK_TCK = 100; // Linux USER_HZ

export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, host, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

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
   */
  nodeAuth(nodeId: string): Promise<Authenticator>;
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
      const kp = createUser();
      const { jwt } = await bus.auth.nodeUser(nodeId, kp.getPublicKey());
      return jwtAuthenticator(jwt, kp.getSeed());
    },
    pid: () => child.pid!,
    stop() {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Raises this process's soft open-files limit is not possible from Node: say what is needed. */
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
