import type { Assignment, NodeRecord, Unplaced } from '../model.js';
import type { Topology } from '../topology/index.js';

export interface PlacementInput {
  topology: Topology;
  nodes: NodeRecord[];
  current: Assignment[];
  /** instances on these nodes must move (Unreachable past grace, Draining, Removed) */
  evictNodes?: ReadonlySet<string>;
  /**
   * these instances must move off the node they are on now (e.g. crash-looping past the repair
   * ladder). Pass an id once: after the move its assignment is new, and passing it again moves it again.
   */
  evictInstances?: ReadonlySet<string>;
  /** operator moves: instanceId → target nodeId */
  moveTo?: ReadonlyMap<string, string>;
  /**
   * Why a node id or hostname that is not among `nodes` is not (e.g. "in cluster ha"), for the
   * reason of an instance pinned to it; undefined when no node has it at all
   */
  elsewhere?: (pin: string) => string | undefined;
  /** `since` for new and moved assignments; default the Unix epoch (keeps the function pure) */
  now?: string;
}

export interface RefusedMove {
  instanceId: string;
  nodeId: string;
  reason: string;
}

export interface PlacementResult {
  /** every assignment after placement, sorted by role then ordinal */
  assignments: Assignment[];
  /**
   * instances without a place, each with the reason; also instances that had to move (evicted,
   * no longer matching) but found no other node: those keep their assignment, and the reason
   * starts with `cannot move off <node>`
   */
  unplaced: Unplaced[];
  added: Assignment[];
  /** `to` has `epoch` = from.epoch + 1 and `previousNodeId` = from.nodeId */
  moved: Array<{ from: Assignment; to: Assignment }>;
  /** scaled down, role gone from the topology, node gone with nowhere to go, or a duplicate */
  removed: Assignment[];
  /** `moveTo` requests that were not carried out, and why (the instance stays where it was) */
  refusedMoves: RefusedMove[];
}
