// `npm run bench [name…]`: runs every bench/*.bench.ts (or the named ones) in turn. Each prints its
// own figures, always with context (machine, counts, ratios), because these machines are noisy.
import { readdirSync } from 'node:fs';
import { register } from 'node:module';
import { cpus, totalmem } from 'node:os';
import { basename } from 'node:path';

// test helpers the benches share (servers.ts → proc.ts) import vitest, which cannot load outside its
// runner: resolve it to a shim (bench/vitest-shim.mjs). Their file-scoped cleanups are NOT run: the
// fleet (test/helpers/fleet-core.ts) kills what it started on exit and fails on a server already gone
register('./vitest-hooks.mjs', import.meta.url);

const only = process.argv.slice(2);
const files = readdirSync(new URL('.', import.meta.url))
  .filter((f) => f.endsWith('.bench.ts'))
  .sort()
  .filter((f) => only.length === 0 || only.includes(basename(f, '.bench.ts')));

process.stdout.write(
  `drover bench: node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB\n`,
);
for (const f of files) {
  process.stdout.write(`\n== ${basename(f, '.bench.ts')} ==\n`);
  const mod = (await import(new URL(f, import.meta.url).href)) as { run: () => Promise<void> };
  await mod.run();
}
