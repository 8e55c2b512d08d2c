import { readFileSync } from 'node:fs';
import { isMap, parseDocument } from 'yaml';
import { parseTopology, TopologyError } from '../topology/index.js';
import { labError } from './errors.js';

export interface LabTopology {
  /** the YAML the lab applies (the file, or a copy with the timing overrides) */
  text: string;
  /** human-readable notes on what the lab changed, for the progress output */
  changes: string[];
  /** label values the topology selects nodes by (`pool`), to warn about a layout that cannot fit */
  pools: string[];
  /** the topology's cluster (`metadata.name`): every lab host is labelled `drover.dev/cluster` with it */
  cluster: string;
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
  if (timings.etcdReassignAfter || timings.reassignAfter) {
    const doc = parseDocument(text);
    const roles = doc.get('roles');
    if (isMap(roles)) {
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
          `roles.${name}.repair.reassignAfter ${before === undefined ? '(unset)' : String(before)} → ${want}`,
        );
      }
    }
    if (changes.length) text = doc.toString();
  }
  let pools: string[] = [];
  let cluster: string;
  try {
    const t = parseTopology(text, path);
    cluster = t.metadata.name;
    pools = [
      ...new Set(
        Object.values(t.roles as Record<string, { nodeSelector?: Record<string, string> }>)
          .map((r) => r.nodeSelector?.pool)
          .filter((p): p is string => typeof p === 'string'),
      ),
    ];
  } catch (err) {
    if (err instanceof TopologyError)
      throw labError('DROVER_ERR_LAB_USAGE', `invalid topology: ${err.message}`);
    throw err;
  }
  return { text, changes, pools, cluster };
}
