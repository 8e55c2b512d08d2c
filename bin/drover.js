#!/usr/bin/env node
import { existsSync } from 'node:fs';

const bundle = new URL('../dist/drover.mjs', import.meta.url);
if (!existsSync(bundle)) {
  process.stderr.write('drover: dist/drover.mjs is missing; run `npm run build` first\n');
  process.exit(1);
}
await import(bundle.href);
