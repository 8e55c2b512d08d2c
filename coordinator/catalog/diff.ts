import { instanceChecksum } from '../../protocol/index.js';
import type { RenderedInstance } from './types.js';

export interface RenderDiff {
  /** nodes whose instance list changed in any way */
  nodes: string[];
  added: Array<{ nodeId: string; id: string }>;
  removed: Array<{ nodeId: string; id: string }>;
  /** same instance on the same node with different content (its checksum changed) */
  changed: Array<{ nodeId: string; id: string }>;
}

/** What differs between two `renderPlans()` results, by instance checksum. */
export function renderDiff(
  before: Map<string, RenderedInstance[]>,
  after: Map<string, RenderedInstance[]>,
): RenderDiff {
  const diff: RenderDiff = { nodes: [], added: [], removed: [], changed: [] };
  const ids = [...new Set([...before.keys(), ...after.keys()])].sort();
  for (const nodeId of ids) {
    const b = new Map((before.get(nodeId) ?? []).map((i) => [i.id, instanceChecksum(i)]));
    const a = new Map((after.get(nodeId) ?? []).map((i) => [i.id, instanceChecksum(i)]));
    let touched = false;
    for (const [id, sum] of a) {
      if (!b.has(id)) {
        diff.added.push({ nodeId, id });
        touched = true;
      } else if (b.get(id) !== sum) {
        diff.changed.push({ nodeId, id });
        touched = true;
      }
    }
    for (const id of b.keys())
      if (!a.has(id)) {
        diff.removed.push({ nodeId, id });
        touched = true;
      }
    if (touched) diff.nodes.push(nodeId);
  }
  return diff;
}
