import { readFileSync } from 'node:fs';
import { type Document, isMap, parseAllDocuments } from 'yaml';
import { parseTopology, TopologyError } from '../coordinator/topology/index.js';
import { labError } from './errors.js';

export interface LabTopology {
  /** the YAML the lab applies (the file, or a copy with the timing overrides) */
  text: string;
  /** human-readable notes on what the lab changed, for the progress output */
  changes: string[];
  /** label values the topology selects nodes by (`pool`), to warn about a layout that cannot fit */
  pools: string[];
  /**
   * One entry per document of the file: each is a cluster (its `metadata.name`, the name the
   * coordinator keys it by and the lab's hosts carry in `drover.dev/cluster`), applied on its own.
   */
  clusters: Array<{ name: string; text: string }>;
}

/**
 * Reads and validates the topology before anything starts (a bad file must not leave a
 * half-started lab). With `etcdReassignAfter` / `reassignAfter`, the roles' own
 * `repair.reassignAfter` settings are replaced in a copy, so the flags the operator gave are the
 * timings that apply (a topology value wins over the coordinator's defaults otherwise).
 */
export function loadLabTopology(
  path: string,
  timings: { etcdReassignAfter?: string; reassignAfter?: string },
): LabTopology {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw labError('DROVER_ERR_LAB_USAGE', `cannot read the topology ${path}: ${(err as Error).message}`);
  }
  const changes: string[] = [];
  const docs = parseAllDocuments(text);
  const list: Document[] = Array.isArray(docs) ? docs : [];
  const bad = list.find((d) => d.errors.length);
  if (bad) throw labError('DROVER_ERR_LAB_USAGE', `invalid topology: ${path}: ${bad.errors[0]!.message}`);
  const real = list.filter((d) => d.contents !== null);
  if (!real.length) throw labError('DROVER_ERR_LAB_USAGE', `invalid topology: ${path} is empty`);
  if (timings.etcdReassignAfter || timings.reassignAfter)
    for (const doc of real) changes.push(...overrideTimings(doc, timings, real.length > 1));
  // a file without overrides is applied as it is, byte for byte
  const texts =
    changes.length || real.length > 1 ? real.map((d) => d.toString().replace(/^---[ \t]*\n/, '')) : [text];
  if (changes.length) text = texts.join('---\n');
  const pools = new Set<string>();
  const clusters: LabTopology['clusters'] = [];
  for (const t of texts) {
    let parsed: ReturnType<typeof parseTopology>;
    try {
      parsed = parseTopology(t, path);
    } catch (err) {
      if (err instanceof TopologyError)
        throw labError('DROVER_ERR_LAB_USAGE', `invalid topology: ${err.message}`);
      throw err;
    }
    const name = parsed.metadata.name;
    if (clusters.some((c) => c.name === name))
      throw labError(
        'DROVER_ERR_LAB_USAGE',
        `invalid topology: ${path} defines the cluster ${JSON.stringify(name)} twice (metadata.name must differ between documents)`,
      );
    clusters.push({ name, text: t });
    for (const r of Object.values(parsed.roles as Record<string, { nodeSelector?: Record<string, string> }>))
      if (typeof r.nodeSelector?.pool === 'string') pools.add(r.nodeSelector.pool);
  }
  return { text, changes, pools: [...pools], clusters };
}

/** Replaces the roles' `repair.reassignAfter` in one document; returns what changed. */
function overrideTimings(
  doc: Document,
  timings: { etcdReassignAfter?: string; reassignAfter?: string },
  named: boolean,
): string[] {
  const changes: string[] = [];
  const roles = doc.get('roles');
  if (!isMap(roles)) return changes;
  const cluster = named ? `${String(doc.getIn(['metadata', 'name']))}: ` : '';
  for (const item of roles.items) {
    const name = String((item.key as { value?: unknown })?.value ?? item.key);
    const want = name === 'etcd' ? timings.etcdReassignAfter : timings.reassignAfter;
    if (!want) continue;
    const before = doc.getIn(['roles', name, 'repair', 'reassignAfter']);
    // etcd always gets the flag's value; other roles only where the file sets its own
    if (name !== 'etcd' && before === undefined) continue;
    if (before !== undefined && String(before) === want) continue;
    doc.setIn(['roles', name, 'repair', 'reassignAfter'], want);
    changes.push(
      `${cluster}roles.${name}.repair.reassignAfter ${before === undefined ? '(unset)' : String(before)} → ${want}`,
    );
  }
  return changes;
}
