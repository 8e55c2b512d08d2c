// Writes every protocol message schema as JSON Schema to docs/protocol/, so an agent written in
// another language can speak the protocol. Run with `npm run schemas`.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MESSAGE_SCHEMAS } from '../protocol/index.js';

const out = 'docs/protocol';
mkdirSync(out, { recursive: true });
for (const [name, schema] of Object.entries(MESSAGE_SCHEMAS)) {
  const doc = {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: name,
    ...JSON.parse(JSON.stringify(schema)),
  };
  writeFileSync(join(out, `${name}.schema.json`), `${JSON.stringify(doc, null, 2)}\n`);
}
process.stdout.write(`wrote ${Object.keys(MESSAGE_SCHEMAS).length} schemas to ${out}/\n`);
