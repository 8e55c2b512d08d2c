import { execFile, execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { acquireLabLock, CLI, type CliResult, lab, logTails } from './lab-e2e.js';

/**
 * The scaffolding the end-to-end lab tests (test/e2e/lab-*.test.ts, failover*.test.ts) share:
 * one lab per describe under the lab lock, `drover lab up` on free ports, and the `drover` CLI
 * aimed at the lab the way a user runs it (through the lab's drover.yaml).
 */

/** heartbeat 1s, Unreachable after 4s */
export const FAST_LIVENESS = ['--heartbeat-interval', '1s', '--unreachable-after', '4s'];

/** `lab up FLAGS` with the API and NATS on free ports and a 150 s convergence timeout. */
export function labUpArgs(flags: string[]): string[] {
  return ['up', ...flags, '--api-port', '0', '--nats-port', '0', '--timeout', '150s'];
}

/**
 * Runs `drover lab up FLAGS` (see labUpArgs); when it fails, prints its output and the tails of
 * the lab's logs. Never throws: the caller asserts on the code.
 */
export async function labUp(dir: string, flags: string[]): Promise<CliResult> {
  const r = await lab(dir, labUpArgs(flags));
  if (r.code !== 0) process.stderr.write(`${r.stdout}\n${r.stderr}\n${logTails(dir)}\n`);
  return r;
}

/**
 * The lab lock for one describe's lab in `dir`: `take()` acquires it; an afterAll takes the lab
 * down (whatever is left of it), runs `cleanup` and releases the lock.
 */
export function labSession(dir: string, cleanup?: () => void): { take: () => Promise<void> } {
  let release: () => void = () => {};
  afterAll(async () => {
    await lab(dir, ['down']).catch(() => undefined);
    cleanup?.();
    release();
  }, 60_000);
  return {
    take: async () => {
      release = await acquireLabLock();
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
