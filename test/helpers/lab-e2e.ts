import { execFile, execFileSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  LabApi,
  type LabAssignment,
  type LabState,
  labLeftovers,
  readState,
  roleProcesses,
  runningInstances,
} from '../../lab/index.js';
import { labPaths } from '../../lab/paths.js';
import { etcdctlTlsFlags } from './etcd-tls.js';

/**
 * Helpers for the end-to-end lab tests. They drive the lab exactly as a user does, through
 * `node dist/drover.mjs lab …`, and check the results through the REST API and through what
 * really runs (the agents' pidfiles checked against /proc).
 */

export const DIST = new URL('../../dist/', import.meta.url).pathname;
export const CLI = join(DIST, 'drover.mjs');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs `drover lab ARGS --dir DIR`; never throws (the caller asserts on the code). */
export function lab(dir: string, args: string[], timeoutMs = 240_000): Promise<CliResult> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, 'lab', ...args, '--dir', dir],
      { timeout: timeoutMs, maxBuffer: 4 << 20, env: { ...process.env, DROVER_LAB_DIR: '' } },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr, ms: Date.now() - t0 });
      },
    );
  });
}

/** heartbeat 1s, Unreachable after 4s */
/**
 * A beforeAll that takes the lab lock and brings a lab up: the lock may be held by another e2e
 * file's lab for minutes (real API servers make each lab slower), plus up to 4 minutes of lab up.
 */
export const LAB_HOOK_TIMEOUT_MS = 900_000;

export const FAST_LIVENESS = ['--heartbeat-interval', '1s', '--unreachable-after', '4s'];

/** `lab up FLAGS` with the API and NATS on free ports and a 150 s convergence timeout. */
export function labUpArgs(flags: string[]): string[] {
  return ['up', ...flags, '--api-port', '0', '--nats-port', '0', '--timeout', '150s'];
}

/** Fails with the command's output when it did not exit 0. */
export async function labOk(dir: string, args: string[], timeoutMs?: number): Promise<CliResult> {
  const r = await lab(dir, args, timeoutMs);
  if (r.code !== 0)
    throw new Error(
      `drover lab ${args.join(' ')} exited ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`,
    );
  return r;
}

/**
 * One lab at a time on this machine: each lab runs ~20 processes, and two at once on 2 cores
 * would starve the heartbeats the tests time. The lock is a file holding the owner's pid; a lock
 * whose owner is gone is taken over.
 */
const LOCK = join(tmpdir(), 'drover-e2e-lab.lock');

export async function acquireLabLock(timeoutMs = 600_000): Promise<() => void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fd = openSync(LOCK, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(LOCK, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number(readFileSync(LOCK, 'utf8').trim() || 0);
      if (owner && !existsSync(`/proc/${owner}`)) {
        rmSync(LOCK, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`another e2e lab (pid ${owner}) holds ${LOCK}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

export function labApi(s: LabState): LabApi {
  return new LabApi(s.coordinator.apiUrl, s.coordinator.adminTokenFile, 5000);
}

export { labLeftovers, readState, runningInstances };

/** Healthy as the API counts it: a passing probe, or (no probe) the Healthy phase. */
export function isHealthy(a: Pick<LabAssignment, 'phase' | 'health'>): boolean {
  return a.health === 'healthy' || (a.phase === 'Healthy' && a.health !== 'unhealthy');
}

/** The rendered haproxy.cfg on the load-balancer host (written by its agent under the host's root). */
export function haproxyConfig(s: LabState): string {
  const lb = s.nodes.find((n) => n.pool === 'lb')!;
  const found: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name === 'haproxy.cfg') found.push(p);
    }
  };
  walk(lb.rootDir);
  if (found.length !== 1)
    throw new Error(`expected one haproxy.cfg under ${lb.rootDir}, found ${found.length}`);
  return readFileSync(found[0]!, 'utf8');
}

/** `server … ADDR:6443 …` lines of the rendered haproxy.cfg: the LB's backends. */
export function haproxyBackends(s: LabState): string[] {
  return haproxyConfig(s)
    .split('\n')
    .map((l) => /^\s*server\s+\S+\s+([\d.]+):6443/.exec(l)?.[1])
    .filter((x): x is string => !!x)
    .sort();
}

/**
 * etcdctl against the given client URLs of the lab `s`, over mutual TLS with a client certificate
 * from the lab coordinator's etcd CA; `allowFail` returns stdout even on a non-zero exit.
 */
export async function etcdctl(
  s: Pick<LabState, 'dir'>,
  endpoints: string[],
  args: string[],
  allowFail = false,
): Promise<string> {
  const tls = await etcdctlTlsFlags(join(labPaths(s.dir).coordinatorData, 'pki'));
  return new Promise((resolve, reject) => {
    execFile(
      'etcdctl',
      [`--endpoints=${endpoints.join(',')}`, ...tls, '--dial-timeout=2s', '--command-timeout=5s', ...args],
      { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 15_000 },
      (err, stdout, stderr) =>
        err && !(allowFail && stdout.trim())
          ? reject(new Error(`etcdctl ${args.join(' ')}: ${stderr || err.message}`))
          : resolve(stdout),
    );
  });
}

/** A member's client URL: etcd serves clients over TLS only. */
export function etcdUrl(address: string): string {
  return `https://${address}:2379`;
}

/** A member's peer URL, as the member list shows it. */
export function etcdPeerUrl(address: string): string {
  return `https://${address}:2380`;
}

/** How many of the endpoints `etcdctl endpoint health` finds healthy. */
export async function etcdHealthy(s: Pick<LabState, 'dir'>, endpoints: string[]): Promise<number> {
  const out = JSON.parse(await etcdctl(s, endpoints, ['endpoint', 'health', '-w', 'json'])) as Array<{
    health?: boolean;
  }>;
  return out.filter((e) => e.health === true).length;
}

/** Peer URLs in `etcdctl member list -w json`. */
export async function etcdPeerUrls(s: Pick<LabState, 'dir'>, endpoints: string[]): Promise<string[]> {
  const out = JSON.parse(await etcdctl(s, endpoints, ['member', 'list', '-w', 'json'])) as {
    members?: Array<{ peerURLs?: string[] }>;
  };
  return (out.members ?? []).flatMap((m) => m.peerURLs ?? []).sort();
}

/** For the failure report: the end of every log in the lab. */
export function logTails(dir: string, lines = 25): string {
  const logs = join(dir, 'logs');
  if (!existsSync(logs)) return '(no logs)';
  return readdirSync(logs)
    .map((f) => {
      const text = readFileSync(join(logs, f), 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
      return `--- ${f}\n${text}`;
    })
    .join('\n');
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Polls what really runs on one host (its agent's pidfiles checked in /proc) every `everyMs`
 * until `stop()`: the instance ids seen, with when each was first seen. Catches a stale copy
 * that runs for only a moment.
 */
export function watchHost(s: LabState, host: string, everyMs = 50): { stop: () => Map<string, number> } {
  const node = s.nodes.find((n) => n.name === host)!;
  const seen = new Map<string, number>();
  const t = setInterval(() => {
    for (const r of roleProcesses(node)) if (!seen.has(r.instanceId)) seen.set(r.instanceId, Date.now());
  }, everyMs);
  return {
    stop: () => {
      clearInterval(t);
      return seen;
    },
  };
}

/** The environment the `drover` CLI gets in the lab in `dir`: its drover.yaml, nothing else. */
export function labCliEnv(dir: string): NodeJS.ProcessEnv {
  return { ...process.env, DROVER_CONFIG: join(dir, 'drover.yaml'), DROVER_URL: '', DROVER_TOKEN: '' };
}

/** Runs `drover ARGS` against the lab in `dir`; never throws (the caller asserts on the code). */
export function labDrover(dir: string, args: string[]): Promise<CliResult> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: labCliEnv(dir) }, (err, stdout, stderr) =>
      resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr, ms: Date.now() - t0 }),
    );
  });
}

/** Runs `drover ARGS` against the lab in `dir` and returns its stdout; throws when it fails. */
export function labDroverSync(dir: string, ...args: string[]): string {
  return execFileSync(process.execPath, [CLI, ...args], { env: labCliEnv(dir), encoding: 'utf8' });
}
