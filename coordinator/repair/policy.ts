import type { NodeStatus } from '../../protocol/index.js';
import type { EtcdTls } from '../etcd/admin.js';
import { type Assignment, isHealthy, type NodeRecord } from '../model.js';

/**
 * Repair timings. Defaults and why (docs/operations.md has the long form):
 * - reassignAfterMs 5 s of Unreachable (itself 10 s of silence), 15 s of silence in all: rides out
 *   network blips and a NATS reconnect (an agent reconnects within seconds), yet a stateless role
 *   is back in well under 20 s, inside Kubernetes' 40–50 s node grace. A wrong move is cheap: the
 *   returning host is fenced by the epoch bump.
 * - etcdReassignAfterMs 60 s: a member replacement is expensive and risky; a rebooting host
 *   usually comes back within a minute.
 * - stormThreshold 0.4: more than 40 % of nodes silent at once is more likely a partition on the
 *   coordinator's side than that many hosts dying together.
 * - maxReassignPerRolePerMinute 3: bounds the damage of a wrong decision.
 * - reprovisionAfterMs 30 s in CrashLoop/Failed, then instanceReassignAfterMs 120 s more.
 */
export interface RepairOptions {
  reassignAfterMs: number;
  etcdReassignAfterMs: number;
  stormThreshold: number;
  maxReassignPerRolePerMinute: number;
  reprovisionAfterMs: number;
  instanceReassignAfterMs: number;
  etcdTls?: EtcdTls;
  etcdClientPort?: number;
  etcdPeerPort?: number;
}

export const DEFAULT_REPAIR_OPTIONS: RepairOptions = {
  reassignAfterMs: 5_000,
  etcdReassignAfterMs: 60_000,
  stormThreshold: 0.4,
  maxReassignPerRolePerMinute: 3,
  reprovisionAfterMs: 30_000,
  instanceReassignAfterMs: 120_000,
  etcdClientPort: 2379,
  etcdPeerPort: 2380,
};

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
