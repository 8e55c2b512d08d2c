import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { API_ERRORS } from '../../coordinator/api/index.js';
import { COORDINATOR_ERRORS, ENGINE_ERRORS } from '../../coordinator/errors.js';
import { TOPOLOGY_ERRORS } from '../../coordinator/topology/index.js';
import { collisions, componentCodes, loadErrorTables } from '../../scripts/error-tables.js';

/** `| \`CODE\` | 404 | … |` rows of docs/errors.md, per section heading. */
function documented(): Map<string, Map<string, number>> {
  const text = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  const sections = new Map<string, Map<string, number>>();
  let cur = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('## ')) {
      cur = new Map();
      sections.set(line.slice(3).split(' ')[0]!.toLowerCase(), cur);
    }
    const m = /^\| `(DROVER_ERR_[A-Z0-9_]+)` \| (\d{3}) \|/.exec(line);
    if (m) {
      expect(cur.has(m[1]!), `${m[1]} documented twice in one section`).toBe(false);
      cur.set(m[1]!, Number(m[2]));
    }
  }
  return sections;
}

describe('error registry', () => {
  it('codes are well formed, with an HTTP status and a description', async () => {
    const tables = await loadErrorTables();
    expect(tables.map((t) => t.name)).toEqual(
      expect.arrayContaining(['PROTOCOL_ERRORS', 'ENGINE_ERRORS', 'API_ERRORS', 'TOPOLOGY_ERRORS']),
    );
    for (const t of tables) {
      for (const [code, spec] of Object.entries(t.table)) {
        expect(code, `${t.file} ${t.name}`).toMatch(/^DROVER_ERR_[A-Z0-9_]+$/);
        expect(
          Number.isInteger(spec.status) && spec.status >= 400 && spec.status <= 599,
          `${code} status ${spec.status}`,
        ).toBe(true);
        expect(spec.description.trim().length, `${code} description`).toBeGreaterThan(10);
      }
    }
  });

  it('no code is defined twice with different meanings within a component', async () => {
    const tables = await loadErrorTables();
    expect(collisions(tables, 'coordinator')).toEqual([]);
    expect(collisions(tables, 'agent')).toEqual([]);
  });

  it('the coordinator registry holds the engine, API and topology codes the API answers with', () => {
    for (const t of [ENGINE_ERRORS, API_ERRORS, TOPOLOGY_ERRORS])
      for (const [code, spec] of Object.entries(t)) expect(COORDINATOR_ERRORS[code], code).toBe(spec);
  });

  it('every code is documented in docs/errors.md with its status (run `npm run openapi` after adding one)', async () => {
    const docs = documented();
    const tables = await loadErrorTables();
    const coordinatorDoc = docs.get('coordinator')!;
    expect(coordinatorDoc).toBeDefined();
    const expected = new Map([
      ...componentCodes(tables, 'coordinator'),
      ...Object.entries(COORDINATOR_ERRORS),
    ]);
    for (const [code, spec] of expected)
      expect(coordinatorDoc.get(code), `${code} in docs/errors.md`).toBe(spec.status);
    for (const code of coordinatorDoc.keys())
      expect(expected.has(code), `${code} is documented but no longer defined`).toBe(true);
    const agentDoc = docs.get('agent')!;
    for (const [code, spec] of componentCodes(tables, 'agent'))
      expect(agentDoc.get(code), `agent ${code}`).toBe(spec.status);
  });
});
