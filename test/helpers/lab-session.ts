import { afterAll } from 'vitest';
import { acquireLabLock, type CliResult, lab, labUpArgs, logTails } from './lab-e2e.js';

// the vitest-free parts live in lab-e2e.ts (benches use them too)
export { FAST_LIVENESS, labCliEnv, labDrover, labDroverSync, labUpArgs } from './lab-e2e.js';

/**
 * The scaffolding the end-to-end lab tests (test/e2e/lab-*.test.ts, failover*.test.ts) share:
 * one lab per describe under the lab lock, `drover lab up` on free ports, and the `drover` CLI
 * aimed at the lab the way a user runs it (through the lab's drover.yaml).
 */

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
