// Reports import cycles between the repository's .ts files (relative imports, type-only ones
// included: a cycle of types is still a knot in the design). Exit 1 when there is one.
// Usage: npx tsx scripts/check-cycles.ts [--json]   (part of `npm run lint`; test/unit/import-cycles.test.ts)
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SKIP = new Set(['node_modules', 'dist', 'build', 'coverage', '.git', '.lab', 'tmp']);

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    if (SKIP.has(e)) continue;
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...tsFiles(p));
    else if (e.endsWith('.ts') && !e.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

// `import … from './x.js'`, `export … from './x.js'`, `import './x.js'`, `import('./x.js')`.
const IMPORT =
  /(?:^|[^.\w$])(?:import|export)\s*(?:type\s+)?(?:[\w$*{}\s,]+?\s+from\s+)?\(?\s*(['"])(\.\.?\/[^'"]+)\1/g;

/** The file graph: each file → the repository files it imports. */
export function importGraph(root = ROOT): Map<string, string[]> {
  const files = tsFiles(root);
  const known = new Set(files);
  const graph = new Map<string, string[]>();
  for (const f of files) {
    const text = readFileSync(f, 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/[^\n]*/g, '');
    const deps = new Set<string>();
    for (const m of text.matchAll(IMPORT)) {
      const spec = resolve(dirname(f), m[2]!);
      const candidates = [spec.replace(/\.js$/, '.ts'), spec, `${spec}.ts`, join(spec, 'index.ts')];
      const hit = candidates.find((c) => known.has(c));
      if (hit) deps.add(hit);
    }
    graph.set(f, [...deps]);
  }
  return graph;
}

/** Strongly connected components with more than one file (or a file importing itself). */
export function cycles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(comp.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!idx.has(v)) visit(v);
  return out;
}

/** One shortest loop through a component's first file, to show how it closes. */
export function loopOf(graph: Map<string, string[]>, comp: string[]): string[] {
  const inComp = new Set(comp);
  const start = comp[0]!;
  const prev = new Map<string, string | null>([[start, null]]);
  const queue = [start];
  while (queue.length) {
    const v = queue.shift()!;
    for (const w of graph.get(v) ?? []) {
      if (!inComp.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let u = v; u !== start; u = prev.get(u)!) path.splice(1, 0, u);
        return [...path, start];
      }
      if (!prev.has(w)) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  return comp;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const graph = importGraph();
  const found = cycles(graph);
  const rel = (f: string) => relative(ROOT, f);
  if (process.argv.includes('--json')) {
    process.stdout.write(
      `${JSON.stringify(
        found.map((c) => c.map(rel)),
        null,
        2,
      )}\n`,
    );
  } else {
    for (const c of found) {
      process.stdout.write(`cycle (${c.length} files): ${loopOf(graph, c).map(rel).join(' → ')}\n`);
      if (c.length > 2) process.stdout.write(`  all: ${c.map(rel).join(', ')}\n`);
    }
    process.stdout.write(
      found.length ? `${found.length} import cycle(s)\n` : `no import cycles in ${graph.size} files\n`,
    );
  }
  process.exit(found.length ? 1 : 0);
}
