/**
 * Shared coordinator types: what placement, rendering and the reconciler pass between each other.
 * Kept in one small file so the pure modules (topology, catalog, placement) and the engine agree.
 */
import type { Facts, Labels, NodeState } from '../protocol/index.js';

/** A node as the coordinator knows it (persisted part plus derived labels). */
export interface NodeRecord {
  id: string;
  hostname: string;
  address: string;
  /** operator and agent labels merged with fact-derived labels (`drover.dev/arch`, `drover.dev/cpu-cores`, …) */
  labels: Labels;
  state: NodeState;
  facts: Facts;
  fingerprint: { machineId: string; macs: string[] };
  /** true once approved (join token or operator) */
  approved: boolean;
  cordoned: boolean;
  createdAt: string;
  updatedAt: string;
  /**
   * Set when a new node id arrived with the advertise address of a live node (a wiped or cloned
   * host): the join token no longer admits it; only an operator's approve does.
   */
  heldFor?: string;
  /** cluster this node belongs to (multi-cluster coordinators); default "default" */
  cluster?: string;
}

/** One role instance bound to one node. `epoch` is bumped whenever it moves. */
export interface Assignment {
  instanceId: string;
  role: string;
  ordinal: number;
  nodeId: string;
  epoch: number;
  cluster: string;
  /** set while an instance is on its way to a new node (e.g. etcd member replacement) */
  previousNodeId?: string;
  since: string;
}

export interface Unplaced {
  instanceId: string;
  role: string;
  reason: string;
}

/**
 * An instance counts as healthy when its probe passes (phase Healthy) or, for a role without a
 * probe, when it runs (phase Running) — and nothing reports it unhealthy. The one definition the
 * API's views, the rollout gate and the repair policy share.
 */
export function isHealthy(i: { phase: string; health: string }): boolean {
  return (i.phase === 'Healthy' || i.phase === 'Running') && i.health !== 'unhealthy';
}
