import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Plain helpers with no vitest import, so benches (which run outside vitest) can use them too.

/** Polls `fn` until it returns something other than undefined/false; rethrows its last error on timeout. */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  { timeoutMs = 15_000, intervalMs = 100 } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? `: ${(lastErr as Error).message}` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * A fresh temp dir, searchable by other users (0755, not mkdtemp's 0700): agents under it run
 * etcd and haproxy as their own system users, which must reach their files.
 */
export function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), `drover-${prefix}-`));
  chmodSync(d, 0o755);
  return d;
}

/** A port that was free a moment ago on the given address. */
/** A free port below the ephemeral range (lib/free-port.ts says why). */
export { freePort } from '../../lib/free-port.js';
