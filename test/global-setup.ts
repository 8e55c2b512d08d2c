import { execFileSync } from 'node:child_process';

/** Integration tests spawn the real bundled daemons, so build them once per run. */
export default function setup(): void {
  execFileSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
}
