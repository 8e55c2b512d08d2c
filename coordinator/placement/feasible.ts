/**
 * Can an operator move happen at all? The same predicates as placement (it runs `place` with the
 * one move and nothing else), so `drover move` is refused at once with placement's reason instead
 * of being recorded and silently dropped. Pure.
 */
import type { Assignment, NodeRecord } from '../model.js';
import type { Topology } from '../topology/index.js';
import { place } from './place.js';

export type MoveVerdict = { ok: true } | { ok: false; reason: string };

export function moveFeasibility(input: {
  topology: Topology;
  /** the cluster's nodes as placement sees them (approved, not Removed, effective state) */
  nodes: NodeRecord[];
  current: Assignment[];
  instanceId: string;
  to: string;
}): MoveVerdict {
  const res = place({
    topology: input.topology,
    nodes: input.nodes,
    current: input.current,
    moveTo: new Map([[input.instanceId, input.to]]),
  });
  const refused = res.refusedMoves.find((r) => r.instanceId === input.instanceId);
  if (refused) return { ok: false, reason: refused.reason };
  const after = res.assignments.find((a) => a.instanceId === input.instanceId);
  if (after?.nodeId !== input.to)
    return { ok: false, reason: `${input.instanceId}: placement would not put it on ${input.to}` };
  return { ok: true };
}
