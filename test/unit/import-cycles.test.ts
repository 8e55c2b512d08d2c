import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cycles, importGraph, loopOf } from '../../scripts/check-cycles.js';

describe('import cycles (scripts/check-cycles.ts)', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('there are none between the repository files', () => {
    const graph = importGraph();
    const found = cycles(graph).map((c) => loopOf(graph, c).map((f) => relative(process.cwd(), f)));
    expect(found).toEqual([]);
  });

  it('finds one closed by a type-only, a multi-line, a re-export or a dynamic import', () => {
    dir = mkdtempSync(join(tmpdir(), 'drover-cycles-'));
    mkdirSync(join(dir, 'sub'));
    const file = (name: string, text: string) => writeFileSync(join(dir!, name), text);
    file('a.ts', "import type { B } from './sub/b.js';\nexport type A = B;\n");
    file(
      'sub/b.ts',
      "import {\n  c,\n  type C,\n} from '../c.js';\nexport type B = C;\nexport const b = c;\n",
    );
    file('c.ts', "export * from './a.js';\nexport const c = 1;\nexport type C = number;\n");
    file('d.ts', "export async function d() {\n  return import('./e.js');\n}\n");
    file(
      'e.ts',
      "// import { d } from './d.js' is only a comment\nimport { d } from './d.js';\nexport const e = d;\n",
    );
    file('f.ts', "import { c } from './c.js';\nexport const f = c;\n");
    const graph = importGraph(dir);
    const found = cycles(graph).map((c) => c.map((f) => relative(dir!, f)));
    expect(found).toEqual(
      expect.arrayContaining([
        ['a.ts', 'c.ts', 'sub/b.ts'],
        ['d.ts', 'e.ts'],
      ]),
    );
    expect(found).toHaveLength(2);
    expect(
      loopOf(graph, [join(dir, 'a.ts'), join(dir, 'c.ts'), join(dir, 'sub/b.ts')]).map((f) =>
        relative(dir!, f),
      ),
    ).toEqual(['a.ts', 'sub/b.ts', 'c.ts', 'a.ts']);
  });
});
