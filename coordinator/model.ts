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
  /** true once approved (it registered with its own bus credentials, or an operator approved it) */
  approved: boolean;
  cordoned: boolean;
  createdAt: string;
  updatedAt: string;
  /**
   * Set when a new node id arrived with the advertise address of a live node (a wiped or cloned
   * host), or the host name of another node in its cluster: its credentials no longer admit it;
   * only an operator's approve does.
   */
  heldFor?: string;
  /** the `drover.dev/cluster` label it joined with (informational; membership reads `labels`, see coordinator/labels.ts) */
  cluster?: string;
  /** the labels its agent last reported (config / `--labels`) */
  agentLabels?: Labels;
  /** labels set by operators (`drover label`); they override the agent's and survive registrations */
  operatorLabels?: Labels;
  /** the nkey user public key of its bus credentials (minted at join); revoked when it is removed */
  busKey?: string;
  /** the join token it last joined with */
  joinedWith?: string;
  /** it joined with a token that requires approval: Pending until an operator's approve */
  awaitingApproval?: boolean;
  /** made at join, not registered yet: its labels and facts are placeholders until it registers */
  joinedOnly?: boolean;
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
