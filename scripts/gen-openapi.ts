/**
 * Writes docs/openapi.json (the REST API's OpenAPI document, from the real Fastify app) and
 * docs/errors.md (every error code with its status). `npm run openapi`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { buildApi, TokenStore } from '../coordinator/api/index.js';
import type { Engine } from '../coordinator/engine.js';
import { silentLogger } from '../lib/logger.js';
import { loadErrorTables, renderErrorsDoc } from './error-tables.js';

const docs = new URL('../docs/', import.meta.url);
mkdirSync(docs, { recursive: true });

// Routes never touch the engine while the app is built, so an empty stand-in is enough here.
const app = buildApi({
  engine: {} as Engine,
  tokens: await TokenStore.open({ logger: silentLogger }),
  logger: silentLogger,
});
await app.ready();
const doc = app.swagger();
writeFileSync(new URL('openapi.json', docs), `${JSON.stringify(doc, null, 2)}\n`);
await app.close();
const paths = Object.keys((doc as { paths?: object }).paths ?? {}).length;

writeFileSync(new URL('errors.md', docs), renderErrorsDoc(await loadErrorTables()));
process.stdout.write(`wrote docs/openapi.json (${paths} paths) and docs/errors.md\n`);
