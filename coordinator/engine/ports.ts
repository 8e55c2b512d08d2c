/**
 * The ports between the engine's modules and the rest of the coordinator: the agents' bus, the
 * repair policy's hooks, the plan add-ons. Types only; the composition root (coordinator/daemon.ts,
 * through `Engine` in coordinator/engine.ts) wires them.
 */

import type { ReconcileRef } from '../../lib/logger.js';
import type {
  Event,
  NodePlan,
  NodeStatus,
  PlanResult,
  SignedPlan,
  SignedTask,
  TaskResult,
} from '../../protocol/index.js';
import type { Assignment } from '../model.js';

/** The narrow port to the agents; the NATS adapter implements it, unit tests fake it. */
export interface AgentBus {
  pushPlan(nodeId: string, signed: SignedPlan, timeoutMs: number): Promise<PlanResult>;
  /** sends a signed task (request/reply on the node's task subject) */
  sendTask(nodeId: string, task: SignedTask, timeoutMs: number): Promise<TaskResult>;
  publishEvent(e: Event): void;
}

/** the engine's liveness and push timings, with their defaults, in coordinator/options.ts */
export type { EngineTimings } from '../options.js';

/** Evictions decided by the repair policy for one cluster reconcile. */
export interface Evictions {
  evictNodes: Set<string>;
  evictInstances: Set<string>;
  moveTo: Map<string, string>;
}

/** `drover repair etcd --member NAME`: the member, and what the next reconcile makes of the request. */
export interface EtcdMemberRepair {
  cluster: string;
  instanceId: string;
  nodeId: string;
  /** judged now: the member is replaced, or the replacement is refused and why (quorum, one change at a time) */
  verdict: { replace: true } | { replace: false; reason: string };
  /** a dry run: nothing was done */
  dryRun: boolean;
}

export interface RepairHooks {
  force?(ms?: number): void;
  requestMove?(instanceId: string, toNode: string, force?: boolean): void;
  /** drop a requested move that placement refused (the target no longer fits) */
  cancelMove?(instanceId: string): void;
  requestReassign?(instanceId: string): void;
  /** `drover repair etcd --member NAME`: decided purely; carried out unless `dryRun` */
  repairEtcdMember?(member: string, opts?: { dryRun?: boolean }): EtcdMemberRepair;
  /**
   * Which instances must leave their nodes now (Unreachable past grace, drains, operator moves);
   * `run`: the cluster reconcile it is part of (its lines are bound to it).
   */
  evictions(cluster: string, current: Assignment[], run?: ReconcileRef): Evictions;
  /** the same as a dry run: no event, task or budget spent, nothing used up (topology previews) */
  previewEvictions?(cluster: string, current: Assignment[]): Evictions;
  /**
   * Why forgetting `nodeId` now would break etcd quorum (its member would be removed and replaced
   * while too few others are healthy), or undefined when it is safe.
   */
  removeRefusal?(cluster: string, nodeId: string): string | undefined;
  /** called after placement wrote new assignments (etcd membership changes, events) */
  afterPlacement?(
    cluster: string,
    moved: Array<{ from: Assignment; to: Assignment }>,
    run?: ReconcileRef,
  ): Promise<number | undefined>;
  /** sees every status report an agent sends (instance trouble: reprovision, then reassign) */
  observe?(st: NodeStatus): void;
  /** the `etcd:<cluster>` queue key: etcd membership changes (coordinator/etcd/membership.ts) */
  reconcileEtcd?(cluster: string, run?: ReconcileRef): Promise<{ requeueAfterMs?: number } | undefined>;
  /** shutdown, before the engine's queue closes: end waits on runs that will not start */
  close?(): void;
}

/**
 * Extra plan fields for a node that are not instances (the purge list of `drover clean --purge`).
 * They are signed with the plan but are not part of its content checksum.
 */
export type PlanAddons = (nodeId: string) => Pick<NodePlan, 'purge'> | undefined;

/** Adds a key (`cluster:<name>`, `node:<id>`) to the work queue. */
export type Enqueue = (key: string) => void;

/** What a reconcile returns to the work queue. */
export type Reconciled = { requeueAfterMs?: number } | undefined;
