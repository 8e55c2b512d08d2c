import { LineCounter, parseDocument } from 'yaml';
import { TopologyError } from './errors.js';
import type { Topology } from './types.js';
import { validateTopology } from './validate.js';

/** Topology files are small; anything this big is a mistake (or an attack on the parser). */
export const MAX_TOPOLOGY_BYTES = 1024 * 1024;

/**
 * Parses a topology from YAML or JSON text (JSON is YAML) and validates it. Errors are
 * `TopologyError` naming the field path and, when the field is in the text, its line:
 * `ha.yaml: roles.kube-apiserver.replicas: must be an integer >= 0 (line 14)`.
 */
export function parseTopology(text: string, source?: string): Topology {
  if (typeof text !== 'string')
    throw new TopologyError([{ path: '', message: 'topology text must be a string' }], source);
  if (Buffer.byteLength(text) > MAX_TOPOLOGY_BYTES)
    throw new TopologyError([{ path: '', message: `is larger than ${MAX_TOPOLOGY_BYTES} bytes` }], source);
  const lines = new LineCounter();
  const doc = parseDocument(text, {
    lineCounter: lines,
    uniqueKeys: true,
    prettyErrors: false,
    strict: true,
  });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const pos = e.linePos?.[0] ?? lines.linePos(e.pos[0]);
    const where = pos ? `line ${pos.line}, column ${pos.col}: ` : '';
    throw new TopologyError([{ path: '', message: `${where}${e.message.split('\n')[0]}` }], source, {
      line: pos?.line,
      column: pos?.col,
    });
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new TopologyError([{ path: '', message: (err as Error).message }], source);
  }
  try {
    return validateTopology(value, source);
  } catch (err) {
    if (!(err instanceof TopologyError)) throw err;
    const segs = err.problems[0]?.segments;
    if (!segs || segs.length === 0) throw err;
    // Point at the deepest part of the path that exists in the text (a missing field → its parent).
    for (let n = segs.length; n >= 1; n--) {
      const node = doc.getIn(segs.slice(0, n), true) as
        | { range?: [number, number, number] }
        | null
        | undefined;
      if (node && typeof node === 'object' && node.range) {
        const pos = lines.linePos(node.range[0]);
        throw withLine(err, source, pos.line, pos.col);
      }
    }
    throw err;
  }
}

function withLine(
  err: TopologyError,
  source: string | undefined,
  line: number,
  column: number,
): TopologyError {
  const e = new TopologyError(err.problems, source, { line, column });
  e.message = `${e.message} (line ${line})`;
  return e;
}
