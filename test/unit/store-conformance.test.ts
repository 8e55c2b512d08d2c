import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { MemoryStore, openLowdbStore } from '../../coordinator/store/index.js';
import { storeConformance } from '../helpers/store-conformance.js';

const dir = mkdtempSync(join(tmpdir(), 'drover-store-conf-'));
let n = 0;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

storeConformance('MemoryStore', async ({ historyLimit }) => new MemoryStore({ historyLimit }));
storeConformance('LowdbStore', ({ historyLimit }) =>
  openLowdbStore({ path: join(dir, `store-${++n}.json`), historyLimit, flushDelayMs: 1 }),
);
storeConformance('LowdbStore (awaitDurable)', ({ historyLimit }) =>
  openLowdbStore({ path: join(dir, `store-${++n}.json`), historyLimit, awaitDurable: true }),
);
