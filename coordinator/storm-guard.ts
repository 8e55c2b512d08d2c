/**
 * The storm guard, as one pure rule every automatic mover shares (repair's reassignments,
 * VirtualCluster slice placement): when more than `threshold` of a cluster's nodes look dead
 * (Unreachable) at once, it is far more likely that the coordinator is cut off (a partition on its
 * side, its own stall) than that those hosts died together, so nothing is moved away from them
 * automatically. It takes at least two Unreachable nodes: one silent host is a host failure, not
 * a partition (in a two-node super cluster or fleet one death would otherwise always look like a
 * storm, and nothing would ever move). `drover repair --force` overrides it for a while
 * (RepairPolicy.force).
 */
import type { NodeState } from '../protocol/index.js';

export interface StormVerdict {
  storm: boolean;
  unreachable: number;
  nodes: number;
  /** unreachable / nodes, 0 without nodes */
  share: number;
}

/** Fewer Unreachable nodes than this never make a storm. */
export const STORM_MIN_UNREACHABLE = 2;

/** Pure: does this set of node states trip the storm guard? */
export function stormVerdict(states: readonly NodeState[], threshold: number): StormVerdict {
  const unreachable = states.filter((s) => s === 'Unreachable').length;
  const share = states.length ? unreachable / states.length : 0;
  return {
    storm: unreachable >= STORM_MIN_UNREACHABLE && share > threshold,
    unreachable,
    nodes: states.length,
    share,
  };
}
