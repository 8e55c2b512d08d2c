/**
 * The storm guard, as one pure rule every automatic mover shares (repair's reassignments,
 * VirtualCluster slice placement): when more than `threshold` of a cluster's nodes look dead
 * (Unreachable) at once, it is far more likely that the coordinator is cut off (a partition on its
 * side, its own stall) than that those hosts died together, so nothing is moved away from them
 * automatically. `drover repair --force` overrides it for a while (RepairPolicy.force).
 */
import type { NodeState } from '../protocol/index.js';

export interface StormVerdict {
  storm: boolean;
  unreachable: number;
  nodes: number;
  /** unreachable / nodes, 0 without nodes */
  share: number;
}

/** Pure: does this set of node states trip the storm guard? */
export function stormVerdict(states: readonly NodeState[], threshold: number): StormVerdict {
  const unreachable = states.filter((s) => s === 'Unreachable').length;
  const share = states.length ? unreachable / states.length : 0;
  return { storm: share > threshold, unreachable, nodes: states.length, share };
}
