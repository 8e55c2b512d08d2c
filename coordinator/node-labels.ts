/**
 * `drover label NODE key=value… key-`: the operator's labels on a node record. Validation and
 * merging are pure (coordinator/labels.ts); this module decides what may change and then acts.
 *
 * Moving a node to another cluster (`drover.dev/cluster`) is refused while it still holds
 * instances of its current cluster: they would stop at once. Drain it first (they move to other
 * nodes of that cluster), or pass `force`, which moves them the same way as a drain would, from
 * the cluster's next reconcile on. Neither may take an etcd member away while that breaks quorum.
 */

import type { Engine } from './engine.js';
import { coordinatorError } from './errors.js';
import { agentLabelsOf, clusterOfRecord, mergeLabels, nextOperatorLabels } from './labels.js';
import type { NodeRecord } from './model.js';
import { deriveLabels } from './topology/index.js';

export interface LabelOutcome {
  node: NodeRecord;
  changed: boolean;
  cluster: { from: string; to: string };
  /** instances of the old cluster that leave the node (only with `force`) */
  moving: string[];
}

export async function labelNode(
  engine: Engine,
  id: string,
  change: unknown,
  opts: { force?: boolean } = {},
): Promise<LabelOutcome> {
  const rec = engine.requireNode(id);
  const operatorLabels = nextOperatorLabels(rec, change);
  const agent = agentLabelsOf(rec);
  const labels = mergeLabels(agent, deriveLabels(rec.facts), operatorLabels);
  const next: NodeRecord = { ...rec, labels, operatorLabels };
  const from = clusterOfRecord(rec);
  const to = clusterOfRecord(next);
  const moving =
    from === to
      ? []
      : engine
          .currentAssignments(from)
          .filter((a) => a.nodeId === id)
          .map((a) => a.instanceId)
          .sort();
  if (
    JSON.stringify(rec.labels) === JSON.stringify(labels) &&
    JSON.stringify(rec.operatorLabels ?? {}) === JSON.stringify(operatorLabels)
  )
    return { node: rec, changed: false, cluster: { from, to }, moving: [] };
  if (moving.length > 0) {
    if (!opts.force)
      throw coordinatorError(
        'DROVER_ERR_ILLEGAL_STATE',
        `node ${id} still runs ${moving.length} instance(s) of cluster ${from} (${moving.join(', ')}); moving it to cluster ${to} would stop them: drain it first (\`drover drain ${id} --wait\`), or pass --force to let them leave it (for other nodes of ${from} where they fit)`,
        { nodeId: id, cluster: from, instances: moving },
      );
    const refusal = engine.repair?.removeRefusal?.(from, id);
    if (refusal)
      throw coordinatorError(
        'DROVER_ERR_ETCD_QUORUM',
        `not moving node ${id} out of cluster ${from}: ${refusal}`,
        {
          nodeId: id,
        },
      );
  }
  await engine.nodes.save(next);
  const set = Object.keys(operatorLabels).filter((k) => rec.operatorLabels?.[k] !== operatorLabels[k]);
  const removed = Object.keys(rec.operatorLabels ?? {}).filter((k) => !(k in operatorLabels));
  engine.events.emit({
    kind: 'node.labelled',
    severity: 'info',
    nodeId: id,
    cluster: to,
    message: `node ${id} labels: ${[...set.map((k) => `${k}=${operatorLabels[k]}`), ...removed.map((k) => `${k}-`)].join(' ')}`,
    data: { set: Object.fromEntries(set.map((k) => [k, operatorLabels[k]])), removed },
  });
  if (from !== to) {
    engine.events.emit({
      kind: 'node.cluster-changed',
      severity: 'warning',
      nodeId: id,
      cluster: to,
      message: `node ${id} moved from cluster ${from} to cluster ${to}${moving.length ? ` (forced: ${moving.join(', ')} of ${from} leave it, for other nodes of ${from} where they fit)` : ''}`,
      data: { from, to, moving },
    });
    engine.queue.add(`cluster:${from}`);
  }
  engine.queue.add(`cluster:${to}`);
  return { node: next, changed: true, cluster: { from, to }, moving };
}
