import type { Clock } from '../lib/clock.js';
import { type Logger, type ReconcileRef, reconcileLogger } from '../lib/logger.js';
import type { NodeStatus } from '../protocol/index.js';
import type { Enqueue, EtcdMemberRepair, Evictions, RepairHooks } from './engine/ports.js';
import { coordinatorError } from './errors.js';
import { type EtcdAdminFactory, gatewayEtcdAdmin } from './etcd/admin.js';
import { EtcdMembership, type EtcdMembershipPorts } from './etcd/membership.js';
import { replacementKeepsQuorum } from './etcd/quorum.js';
import type { EventInput } from './events.js';
import { type Assignment, isHealthy, type NodeRecord } from './model.js';
import { decideRepair, type RepairDecision } from './repair/decide.js';
import { applyRepairEffects, type RepairEffect } from './repair/effects.js';
import { decideEtcdMemberRepair, findEtcdMember } from './repair/etcd-member.js';
import { emptyRepairMemory, type RepairMemoryView } from './repair/memory.js';
import { ETCD, instanceHealthy, type LivenessView, type RepairOptions } from './repair/policy.js';
import type { ClusterState } from './state/cluster-state.js';
import { stormVerdict } from './storm-guard.js';

export { DEFAULT_REPAIR_OPTIONS, type RepairOptions, roleRepairPolicy } from './repair/policy.js';

/** What the policy reads of the cluster state (coordinator/state/cluster-state.ts satisfies it). */
export type RepairReads = Pick<
  ClusterState,
  'clusterNames' | 'topology' | 'placementNodes' | 'currentAssignments' | 'allAssignments'
>;

/**
 * Everything the policy reads and does, and nothing more; wired at the composition root
 * (coordinator/daemon.ts): the read model, the event log, the engine's work queue and its task
 * sender. Unit tests pass fakes.
 */
export interface RepairPorts {
  /** the read model, read only */
  state: RepairReads;
  /** a node's liveness: since when it is in its state, its last status report */
  liveness(nodeId: string): LivenessView | undefined;
  emit(event: EventInput): void;
  /** queues a work-queue key (`cluster:<name>`, `etcd:<name>`) */
  enqueue: Enqueue;
  /** sends an agent a re-provision task (the engine's operator actions) */
  runTask(task: { nodeId: string; kind: 'reprovision'; instanceId: string }): Promise<unknown>;
  /** instances whose rollout restart is in flight: a drain counts them as down (coordinator/rollout.ts) */
  restarting?: () => ReadonlySet<string>;
  clock: Clock;
  log: Logger;
  /** a repair outcome for the metrics (`reassign`, `reprovision`, `etcd-replaced`, …) */
  onRepair?: (result: string) => void;
  /** the etcd admin client the membership reconcile uses; default the v3 JSON gateway */
  etcdAdmin?: EtcdAdminFactory;
  /** how a cluster's etcd members are reached (https with the coordinator's client certificate, or plain) */
  etcdTransport?: EtcdMembershipPorts['transport'];
}

/**
 * The policy's ports from the engine's (`EngineRepairPorts`: read model, event log, queue, task
 * sender) and the caller's own clock, logger and metrics: the usual wiring in one place.
 */
export function repairPortsFrom(
  engine: { state: ClusterState; events: { emit(e: EventInput): unknown } } & Pick<
    RepairPorts,
    'enqueue' | 'runTask' | 'restarting'
  >,
  own: Pick<RepairPorts, 'clock' | 'log' | 'onRepair' | 'etcdAdmin' | 'etcdTransport'>,
): RepairPorts {
  return {
    state: engine.state,
    liveness: (id) => engine.state.nodes.liveness(id),
    emit: (e) => void engine.events.emit(e),
    enqueue: engine.enqueue,
    runTask: engine.runTask,
    restarting: engine.restarting,
    ...own,
  };
}

/**
 * The repair policy the engine consults on every cluster reconcile (the `RepairHooks`): it holds
 * the repair memory, asks the pure decision (coordinator/repair/decide.ts, where the ladder is)
 * and applies its effects (repair/effects.ts). A preview asks the same decision and applies
 * nothing. etcd membership changes run in coordinator/etcd/membership.ts on their own queue key.
 */
export class RepairPolicy implements RepairHooks {
  private readonly memory = emptyRepairMemory();
  /** the etcd membership reconcile (`etcd:<cluster>` keys) */
  readonly etcd: EtcdMembership;

  private readonly clock: Clock;

  constructor(
    private readonly ports: RepairPorts,
    private readonly opts: RepairOptions,
  ) {
    this.clock = ports.clock;
    this.etcd = new EtcdMembership(
      {
        assignments: (c) => ports.state.currentAssignments(c),
        nodes: (c) => ports.state.placementNodes(c),
        emit: (e) => ports.emit(e),
        enqueue: (key) => ports.enqueue(key),
        admin: ports.etcdAdmin ?? gatewayEtcdAdmin,
        ...(ports.etcdTransport ? { transport: ports.etcdTransport } : {}),
        clock: ports.clock,
        log: ports.log,
        onRepair: ports.onRepair,
      },
      { tls: opts.etcdTls, clientPort: opts.etcdClientPort, peerPort: opts.etcdPeerPort },
    );
  }

  /** Shutdown: ends the waits for etcd membership runs (the engine closes its queue next). */
  close(): void {
    this.etcd.close();
  }

  /** Operator override: ignore the storm guard for the next `ms`. */
  force(ms = 120_000): void {
    this.memory.forceUntil = this.clock.now() + ms;
    this.ports.emit({
      kind: 'repair.forced',
      severity: 'warning',
      message: `storm guard overridden by an operator for ${Math.round(ms / 1000)}s`,
    });
    for (const c of this.ports.state.clusterNames()) this.ports.enqueue(`cluster:${c}`);
  }

  /**
   * Whether the storm guard holds automatic moves in `cluster` right now (computed from the
   * current node states, not from the last reconcile); the VirtualCluster placement asks this.
   */
  stormActive(cluster: string): boolean {
    if (this.clock.now() < this.memory.forceUntil) return false;
    return stormVerdict(
      this.ports.state.placementNodes(cluster).map((n) => n.state),
      this.opts.stormThreshold,
    ).storm;
  }

  isPaused(cluster: string): boolean {
    return this.memory.paused.get(cluster) === true;
  }

  /**
   * Queues an operator move, checked on the next reconcile against the same safety rules; `force`
   * skips the last-healthy rule (etcd quorum is never skipped).
   */
  requestMove(instanceId: string, toNode: string, force = false): void {
    this.memory.moveTo.set(instanceId, { to: toNode, force });
  }

  cancelMove(instanceId: string): void {
    this.memory.moveTo.delete(instanceId);
  }

  /** Operator command: reassign this instance now, without waiting for `reassignAfter`. */
  requestReassign(instanceId: string): void {
    this.memory.immediate.add(instanceId);
  }

  /** What the policy remembers (rate budget spent, holds, operator requests), read-only. */
  memoryView(): RepairMemoryView {
    return this.memory;
  }

  /** The decision for `cluster` now, from the cluster state and this policy's memory; acts on nothing. */
  decide(cluster: string, current: Assignment[]): RepairDecision {
    return decideRepair({
      cluster,
      current,
      nodes: this.ports.state.placementNodes(cluster),
      topology: this.ports.state.topology(cluster),
      liveness: (id) => this.ports.liveness(id),
      restarting: this.ports.restarting,
      memory: this.memory,
      now: this.clock.now(),
      options: this.opts,
    });
  }

  /**
   * RepairHooks.evictions (a reconcile): decides, then applies the decision's effects; what they
   * log (a re-provision task that failed) is bound to the cluster reconcile's `run`.
   */
  evictions(
    cluster: string,
    current: Assignment[],
    run?: ReconcileRef,
  ): Evictions & { wakeAfterMs?: number } {
    const { evictions, effects } = this.decide(cluster, current);
    this.apply(effects, this.logFor(run));
    return evictions;
  }

  /** The policy's logger, bound to the reconcile run it works in when there is one. */
  private logFor(run: ReconcileRef | undefined): Logger {
    return run ? reconcileLogger(this.ports.log, run) : this.ports.log;
  }

  private apply(effects: readonly RepairEffect[], log: Logger = this.ports.log): void {
    applyRepairEffects(effects, this.memory, {
      emit: (e) => this.ports.emit(e),
      runTask: (t) => this.ports.runTask(t),
      onRepair: this.ports.onRepair,
      enqueue: (key) => this.ports.enqueue(key),
      log,
    });
  }

  /**
   * RepairHooks.repairEtcdMember (`drover repair etcd --member NAME`): the pure decision
   * (repair/etcd-member.ts) says what the request does and what the next reconcile will make of
   * it; it is carried out by applying its effects — unless `dryRun`, which reads the decision
   * only: no event, no reconcile queued, nothing remembered.
   */
  repairEtcdMember(member: string, opts: { dryRun?: boolean } = {}): EtcdMemberRepair {
    const a = findEtcdMember(member, this.ports.state.allAssignments());
    if (!a)
      throw coordinatorError(
        'DROVER_ERR_INSTANCE_NOT_FOUND',
        `no etcd member ${JSON.stringify(member)}; members are named etcd-<ordinal>, see \`drover get assignments\``,
        { member },
      );
    const byId = new Map(this.ports.state.placementNodes(a.cluster).map((n) => [n.id, n]));
    const d = decideEtcdMemberRepair({
      member: a,
      current: this.ports.state.currentAssignments(a.cluster),
      healthy: (x) => this.instanceHealthy(x, byId.get(x.nodeId)),
    });
    const dryRun = opts.dryRun === true;
    if (!dryRun) this.apply(d.effects);
    return { cluster: d.cluster, instanceId: d.instanceId, nodeId: d.nodeId, verdict: d.verdict, dryRun };
  }

  /**
   * RepairHooks.previewEvictions (`drover diff`, `PUT /v1/topology?dryRun=true`): the same
   * decision with its effects dropped — no event, no task, no rate budget spent, no operator
   * request used up — so the preview is what the next reconcile does.
   */
  previewEvictions(cluster: string, current: Assignment[]): Evictions & { wakeAfterMs?: number } {
    return this.decide(cluster, current).evictions;
  }

  /** RepairHooks.reconcileEtcd: the handler of the `etcd:<cluster>` queue key (its lines bound to `run`). */
  reconcileEtcd(cluster: string, run?: ReconcileRef): Promise<undefined> {
    return this.etcd.reconcile(cluster, this.logFor(run));
  }

  /**
   * After placement wrote assignments: forget finished operator moves, and while an etcd member is
   * joining an existing cluster, have the membership match before its plan is pushed. Returns a
   * retry delay while a membership change is still outstanding.
   */
  afterPlacement(
    cluster: string,
    moved: Array<{ from: Assignment; to: Assignment }>,
  ): Promise<number | undefined> {
    for (const m of moved) {
      this.memory.moveTo.delete(m.to.instanceId);
      this.memory.held.delete(m.to.instanceId);
      this.memory.decided.delete(`${m.from.instanceId}@${m.from.epoch}`);
    }
    return this.etcd.afterPlacement(cluster);
  }

  /** RepairHooks.removeRefusal: the replacement rule, for each etcd member the node holds. */
  removeRefusal(cluster: string, nodeId: string): string | undefined {
    const current = this.ports.state.currentAssignments(cluster);
    const etcd = current.filter((x) => x.role === ETCD);
    const byId = new Map(this.ports.state.placementNodes(cluster).map((n) => [n.id, n]));
    for (const a of etcd.filter((x) => x.nodeId === nodeId)) {
      const healthy = etcd.filter(
        (x) => x.instanceId !== a.instanceId && this.instanceHealthy(x, byId.get(x.nodeId)),
      ).length;
      const q = replacementKeepsQuorum(etcd.length, healthy);
      if (!q.ok) return `${a.instanceId} is an etcd member: ${q.reason}`;
    }
    return undefined;
  }

  instanceHealthy(a: Assignment, node: NodeRecord | undefined): boolean {
    return instanceHealthy(a, node, this.ports.liveness(a.nodeId));
  }

  /** Agent status reports: instances entering or leaving CrashLoop/Failed, holds that ended. */
  observe(st: NodeStatus): void {
    const now = this.clock.now();
    for (const i of st.instances) {
      const bad = i.phase === 'CrashLoop' || i.phase === 'Failed';
      const t = this.memory.trouble.get(i.id);
      if (bad && !t) this.memory.trouble.set(i.id, { since: now });
      if (!bad && t) this.memory.trouble.delete(i.id);
      if (isHealthy(i)) this.memory.held.delete(i.id);
    }
  }
}
