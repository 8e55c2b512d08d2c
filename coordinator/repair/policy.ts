import type { NodeStatus } from '../../protocol/index.js';
import { isParked } from '../catalog/types.js';
import { replacementKeepsQuorum } from '../etcd/quorum.js';
import { type Assignment, isHealthy, type NodeRecord } from '../model.js';

/** The repair options and their defaults live with the engine's timings (coordinator/options.ts). */
export { DEFAULT_REPAIR_OPTIONS, type RepairOptions } from '../options.js';

export const ETCD = 'etcd';

/** A role's `repair` overrides from the topology (durations already in ms). */
export function roleRepairPolicy(spec: unknown): {
  reassignAfter?: number;
  maxReassignPerHour?: number;
  autoReassign?: boolean;
} {
  const v = (spec as { repair?: Record<string, unknown> } | undefined)?.repair ?? {};
  const num = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x : undefined);
  return {
    reassignAfter: num(v.reassignAfterMs) ?? num(v.reassignAfter),
    maxReassignPerHour: num(v.maxReassignPerHour),
    autoReassign: typeof v.autoReassign === 'boolean' ? v.autoReassign : undefined,
  };
}

/** What the repair decision reads of a node's liveness: since when it is in its state, its last status. */
export interface LivenessView {
  since: number;
  status?: Pick<NodeStatus, 'instances'>;
}

/** Healthy at its current epoch on a node that is neither Unreachable nor Suspect. */
export function instanceHealthy(
  a: Assignment,
  node: NodeRecord | undefined,
  liveness: LivenessView | undefined,
): boolean {
  if (!node || node.state === 'Unreachable' || node.state === 'Suspect') return false;
  const s = liveness?.status?.instances.find((i) => i.id === a.instanceId);
  return !!s && isHealthy(s) && s.epoch === a.epoch;
}

/**
 * Why replacing etcd member `a` now is refused, or undefined when it may go: one member change at
 * a time (another moved member not yet healthy), and quorum among the others. The reconcile's
 * gate (decide.ts) and the operator's `drover repair etcd --member` verdict (etcd-member.ts).
 */
export function etcdChangeRefusal(
  current: readonly Assignment[],
  a: Assignment,
  healthy: (x: Assignment) => boolean,
): string | undefined {
  // a member a restore parked is no member: moving it off a dead host changes no membership
  if (isParked(a)) return undefined;
  const etcd = current.filter((x) => x.role === ETCD && !isParked(x));
  if (etcd.some((x) => x.previousNodeId !== undefined && x.instanceId !== a.instanceId && !healthy(x)))
    return 'another etcd member change is still in flight; one change at a time';
  const q = replacementKeepsQuorum(
    etcd.length,
    etcd.filter((x) => x.instanceId !== a.instanceId && healthy(x)).length,
  );
  return q.ok ? undefined : (q.reason ?? 'quorum');
}
