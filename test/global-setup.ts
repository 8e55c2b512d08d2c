import { execFileSync } from 'node:child_process';

/**
 * Integration tests spawn the real bundled daemons, so build them once per run. A failed build is
 * reported but does not stop unit tests; the tests that spawn a missing bundle fail on their own.
 * (`scripts/setup.sh`, which CI runs first, fails hard on a broken build.)
 */
export default function setup(): void {
  try {
    execFileSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
  } catch {
    process.stderr.write('warning: scripts/build.mjs failed; tests that spawn dist/*.mjs will fail\n');
  }
}
