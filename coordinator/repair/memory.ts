/**
 * What the repair policy remembers between reconciles. The decision (decide.ts) only reads it;
 * the effects (effects.ts) change it; operator requests and agent status reports fill it.
 */
export interface InstanceTrouble {
  since: number;
  reprovisionedAt?: number;
}

export interface RepairMemory {
  /** the storm guard is overridden by an operator until then */
  forceUntil: number;
  /** clusters whose automatic reassignment the storm guard paused (announced) */
  paused: Map<string, boolean>;
  /** per role, when its automatic reassignments of the last hour happened */
  recentMoves: Map<string, number[]>;
  /** instances in CrashLoop/Failed: since when, and when they were re-provisioned */
  trouble: Map<string, InstanceTrouble>;
  /** instances whose hold (`repair.held`) was announced */
  held: Set<string>;
  /** operator moves waiting for the next reconcile */
  moveTo: Map<string, { to: string; force: boolean }>;
  /** operator-requested evictions that skip the reassignAfter wait (quorum still applies) */
  immediate: Set<string>;
  /** `instance@epoch` reassignments decided (announced, rate-counted) that have not moved yet */
  decided: Set<string>;
  /** etcd members whose replacement refusal was announced */
  refusedEtcd: Set<string>;
  /** the last drain-wait message announced per instance */
  drainWaits: Map<string, string>;
}

export function emptyRepairMemory(): RepairMemory {
  return {
    forceUntil: 0,
    paused: new Map(),
    recentMoves: new Map(),
    trouble: new Map(),
    held: new Set(),
    moveTo: new Map(),
    immediate: new Set(),
    decided: new Set(),
    refusedEtcd: new Set(),
    drainWaits: new Map(),
  };
}

/** The memory as the decision sees it: nothing in it can be changed through this type. */
export interface RepairMemoryView {
  readonly forceUntil: number;
  readonly paused: ReadonlyMap<string, boolean>;
  readonly recentMoves: ReadonlyMap<string, readonly number[]>;
  readonly trouble: ReadonlyMap<string, Readonly<InstanceTrouble>>;
  readonly held: ReadonlySet<string>;
  readonly moveTo: ReadonlyMap<string, Readonly<{ to: string; force: boolean }>>;
  readonly immediate: ReadonlySet<string>;
  readonly decided: ReadonlySet<string>;
  readonly refusedEtcd: ReadonlySet<string>;
  readonly drainWaits: ReadonlyMap<string, string>;
}
