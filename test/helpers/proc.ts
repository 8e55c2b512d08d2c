import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { delimiter, join } from 'node:path';
import { onTestFinished } from 'vitest';
import { freePort, tempDir, waitFor } from './wait.js';

export { freePort, tempDir, waitFor };

/** Debian package that provides each binary the harness needs. */
export const DEBIAN_PACKAGES: Record<string, string> = {
  'nats-server': 'nats-server',
  etcd: 'etcd-server',
  etcdctl: 'etcd-client',
  haproxy: 'haproxy',
  ip: 'iproute2',
};

const SEARCH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** Finds a binary on PATH or in the sbin dirs; fails naming the Debian package to install. */
export function requireBinary(name: string): string {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), ...SEARCH];
  for (const d of dirs) {
    const p = join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {}
  }
  throw new Error(missingBinaryMessage(name));
}

export function missingBinaryMessage(name: string): string {
  const pkg = DEBIAN_PACKAGES[name] ?? name;
  return `${name} is not installed: run \`apt-get install -y ${pkg}\` (Debian package ${pkg})`;
}

export function hasBinary(name: string): boolean {
  try {
    requireBinary(name);
    return true;
  } catch {
    return false;
  }
}

export function tcpOpen(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

export interface Spawned {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

export function spawnLogged(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Spawned {
  const child = spawn(cmd, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  let out = '';
  const keep = (b: Buffer) => {
    out += b.toString();
    if (out.length > 64_000) out = out.slice(-32_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      live.delete(child);
      resolve(code);
    });
    child.once('error', () => {
      live.delete(child);
      resolve(null);
    });
  });
  return { child, output: () => out, exited };
}

export async function killAndWait(
  s: Spawned,
  signal: NodeJS.Signals = 'SIGTERM',
  graceMs = 3000,
): Promise<void> {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return;
  s.child.kill(signal);
  const t = setTimeout(() => s.child.kill('SIGKILL'), graceMs);
  await s.exited;
  clearTimeout(t);
}

/**
 * Registers cleanup for a handle: after the current test when called inside one, else at the end
 * of the file (servers started in beforeAll). Cleanup runs even when the test fails.
 */
const fileScoped: Array<() => Promise<void>> = [];
export function autoCleanup(fn: () => Promise<void>): void {
  try {
    onTestFinished(fn);
  } catch {
    fileScoped.push(fn);
  }
}
export async function runFileCleanups(): Promise<void> {
  const fns = fileScoped.splice(0).reverse();
  for (const fn of fns) await fn().catch(() => {});
}

export function rmrf(p: string): void {
  rmSync(p, { recursive: true, force: true });
}
