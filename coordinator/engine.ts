import { type Clock, systemClock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type {
  FactsUpdate,
  Heartbeat,
  NodePlan,
  NodeStatus,
  PlanFetch,
  Register,
  RegisterReply,
  SignedPlan,
  SigningKeyPair,
  Task,
  TaskResult,
} from '../protocol/index.js';
import type { RenderOptions } from './catalog/index.js';
import { ClusterReconcile, type TopologyPreview } from './engine/cluster-reconcile.js';
import { Intake, type IntakePorts } from './engine/intake.js';
import { LivenessSweep } from './engine/liveness-sweep.js';
import { NodePush } from './engine/node-push.js';
import { OperatorActions, type OperatorPorts } from './engine/operator.js';
import { PlanBook } from './engine/plan-book.js';
import type {
  AgentBus,
  EngineTimings,
  EtcdMemberRepair,
  PlanAddons,
  Reconciled,
  RepairHooks,
} from './engine/ports.js';
import { EventLog } from './events.js';
import { DEFAULT_CLUSTER } from './labels.js';
import type { Assignment, NodeRecord, Unplaced } from './model.js';
import type { RemovalOutcome, RemoveOptions } from './node-removal.js';
import type { NodeRepairOutcome, NodeRepairPorts, NodeRepairStarted } from './node-repair.js';
import { NodeRegistry } from './nodes.js';
import { ClusterState } from './state/cluster-state.js';
import type { Store } from './store/types.js';
import type { Topology } from './topology/index.js';
import { type ReconcileRun, WorkQueue } from './workqueue.js';

export { freezeEtcdMembership } from './engine/cluster-reconcile.js';
export type {
  AgentBus,
  EngineTimings,
  EtcdMemberRepair,
  Evictions,
  PlanAddons,
  RepairHooks,
} from './engine/ports.js';
export { DEFAULT_CLUSTER };

/** how far above our own epoch an agent's reported epoch may be for us to follow it */
const MAX_EPOCH_JUMP = 1000;

export interface EngineOptions<R extends RepairHooks = RepairHooks> {
  store: Store;
  logger: Logger;
  signingKey: SigningKeyPair;
  timings: EngineTimings;
  /** the join and registration rate limit (coordinator/engine/intake.ts); absent: none */
  admitRegistration?: IntakePorts['admitRegistration'];
  /** nodes that may wait for approval at once (config `maxPendingNodes`) */
  maxPendingNodes?: number;
  /** a node was removed: revoke its bus credentials (coordinator/node-removal.ts `revokeRemovedNode`) */
  onNodeRemoved?: OperatorPorts['onNodeRemoved'];
  clock?: Clock;
  renderOptions?: RenderOptions;
  /** a cluster's etcd transport (coordinator/etcd/transport.ts); default TLS wherever there is a PKI */
  etcdTransport?: (cluster: string) => 'tls' | 'plain';
  /** keys reconciled concurrently (plan pushes in flight); default 256 */
  concurrency?: number;
  onReconcile?: (kind: 'cluster' | 'node', outcome: string, ms: number) => void;
  onPush?: (ok: boolean) => void;
  /** the read model, when the composition root builds it first (its NodeRegistry on these timings) */
  state?: ClusterState;
  /** the event log, when the composition root builds it first */
  events?: EventLog;
  /**
   * Builds the repair policy from what only the engine has (`EngineRepairPorts`: its work queue
   * and task sender, beside the read model and event log); the composition root picks the ports
   * the policy gets (coordinator/daemon.ts). The cluster reconcile consults it. Without one only
   * Draining nodes are evicted.
   */
  repair?: (ports: EngineRepairPorts) => R;
  /**
   * Rewrites a cluster's current assignments before placement: an etcd restore's new epochs,
   * seed and parked members (coordinator/etcd/restore.ts), applied by the cluster reconcile, the
   * one writer of assignments
   */
  assignmentOverlay?: (cluster: string, current: Assignment[]) => Assignment[];
  /** nodes whose plans skip the rollout gate (those of a cluster whose etcd is being restored) */
  bypassRollout?: (nodeId: string) => boolean;
  /** extra plan fields per node (the purge lists of `drover clean --purge`, coordinator/clean.ts) */
  planAddons?: PlanAddons;
  /** runs before each liveness sweep (the stall re-base, coordinator/liveness-rebase.ts) */
  beforeSweep?: () => void;
}

/** What the engine hands the `repair` factory: its parts a repair policy may be wired to. */
export interface EngineRepairPorts {
  state: ClusterState;
  events: EventLog;
  /** queues a key on the engine's work queue */
  enqueue: (key: string) => void;
  /** sends an agent a one-off task (OperatorActions.runTask) */
  runTask(task: { nodeId: string; kind: 'reprovision'; instanceId: string }): Promise<TaskResult>;
  /** instances whose rollout restart is in flight (pushed, not yet healthy at the new checksum) */
  restarting(): ReadonlySet<string>;
}

/**
 * The coordinator engine, composed of its modules (coordinator/engine/): the read model
 * (coordinator/state/cluster-state.ts), agent intake, the plan book and node pushes, the cluster
 * reconcile, the liveness sweep and the operator actions, with two kinds of level-triggered
 * reconcile on one de-duplicating work queue:
 * - `cluster:<name>` places roles and renders every node's plan of that cluster;
 * - `node:<id>` pushes the node's desired plan until the agent's applied checksum matches.
 * This class only wires them and delegates; it is the facade the API, NATS and tests use.
 */
export class Engine<R extends RepairHooks = RepairHooks> {
  readonly events: EventLog;
  readonly nodes: NodeRegistry;
  readonly state: ClusterState;
  readonly queue: WorkQueue;
  /** the repair policy the `repair` option built */
  readonly repair?: R;
  private epochValue = 0;
  /** the epoch a raise in flight will reach (see raiseEpochAbove) */
  private epochTarget = 0;
  private epochRaise: Promise<void> = Promise.resolve();
  private bus?: AgentBus;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly plans: PlanBook;
  private readonly push: NodePush;
  private readonly intake: Intake;
  private readonly operator: OperatorActions;
  private readonly clusters: ClusterReconcile;
  private readonly liveness: LivenessSweep;
  private closing?: Promise<void>;

  constructor(private readonly opts: EngineOptions<R>) {
    const clock = opts.clock ?? systemClock;
    this.clock = clock;
    this.log = opts.logger;
    this.events = opts.events ?? new EventLog(opts.store, opts.logger, undefined, clock);
    this.state = opts.state ?? new ClusterState(new NodeRegistry(opts.store, clock, opts.timings));
    this.nodes = this.state.nodes;
    this.queue = new WorkQueue((k, run) => this.route(k, run), {
      concurrency: opts.concurrency ?? 256,
      clock,
      logger: opts.logger,
      onOutcome: (key, outcome, ms) =>
        opts.onReconcile?.(key.startsWith('node:') ? 'node' : 'cluster', outcome, ms),
    });
    const enqueue = (key: string) => this.queue.add(key);
    const epoch = () => this.epochValue;
    const bus = () => this.bus;
    const { state, events, store } = { state: this.state, events: this.events, store: opts.store };
    this.plans = new PlanBook({
      clock,
      signingKey: opts.signingKey,
      renderOptions: opts.renderOptions,
      etcdTransport: opts.etcdTransport,
      epoch,
      planAddons: opts.planAddons,
      onNewPlan: (nodeId) => enqueue(`node:${nodeId}`),
      appliedGeneration: (nodeId) => {
        const a = this.nodes.liveness(nodeId)?.applied;
        return a && a.coordinatorEpoch === this.epochValue ? a.generation : undefined;
      },
    });
    this.push = new NodePush({
      state,
      plans: this.plans,
      events,
      clock,
      log: opts.logger,
      enqueue,
      bus,
      epoch,
      pushTimeoutMs: opts.timings.pushTimeoutMs,
      onPush: opts.onPush,
      ...(opts.bypassRollout ? { bypassRollout: opts.bypassRollout } : {}),
    });
    // the policy gets ports, not the engine: the task sender is the operator actions', built below
    this.repair = opts.repair?.({
      state,
      events,
      enqueue,
      runTask: (t) => this.operator.runTask(t),
      restarting: () => this.push.restarting(),
    });
    const repair = this.repair;
    this.intake = new Intake({
      state,
      plans: this.plans,
      push: this.push,
      events,
      clock,
      enqueue,
      epoch,
      signingKey: opts.signingKey,
      timings: opts.timings,
      admitRegistration: opts.admitRegistration,
      maxPendingNodes: opts.maxPendingNodes,
      observeStatus: repair?.observe && ((st) => repair.observe?.(st)),
      epochBehind: (reported) => this.raiseEpochAbove(reported),
    });
    this.operator = new OperatorActions({
      state,
      store,
      plans: this.plans,
      push: this.push,
      events,
      clock,
      enqueue,
      bus,
      epoch,
      signingKey: opts.signingKey,
      repair,
      onNodeRemoved: opts.onNodeRemoved,
    });
    this.clusters = new ClusterReconcile({
      state,
      store,
      log: opts.logger,
      plans: this.plans,
      events,
      clock,
      repair,
      ...(opts.assignmentOverlay ? { overlay: opts.assignmentOverlay } : {}),
      fenced: (nodeId) => this.operator.isFenced(nodeId),
      onAssignments: () => this.push.refreshRoleCounts(),
    });
    this.liveness = new LivenessSweep({
      state,
      events,
      clock,
      enqueue,
      heartbeatIntervalMs: opts.timings.heartbeatIntervalMs,
      beforeSweep: opts.beforeSweep,
    });
  }

  get epoch(): number {
    return this.epochValue;
  }

  get timings(): EngineTimings {
    return this.opts.timings;
  }

  attachBus(bus: AgentBus): void {
    this.bus = bus;
    this.events.subscribe((e) => bus.publishEvent(e));
  }

  /**
   * Writes the epoch and waits until the store says it is durable. Only then may a plan carry it:
   * a coordinator that crashed after sending plans under an epoch it had not made durable would
   * come back with that same epoch and lower generations, and its agents would refuse every new
   * plan as stale.
   */
  private async persistEpoch(epoch: number): Promise<void> {
    const { store } = this.opts;
    const ep = await store.get<number>('meta/epoch');
    if (ep) await store.update('meta/epoch', epoch, ep.revision);
    else await store.create('meta/epoch', epoch);
    await store.flush();
  }

  /**
   * An agent applied a plan under an epoch above ours: the store is older than what this
   * coordinator (or an earlier incarnation) sent. Raise the epoch above it, durably, then re-issue
   * every plan under it, so that no agent sees a new plan as stale. Raises are serialised and
   * coalesced; a report more than MAX_EPOCH_JUMP ahead is ignored (a node's report is not proof).
   */
  private raiseEpochAbove(reported: number): void {
    const want = reported + 1;
    if (want <= this.epochValue || want <= this.epochTarget) return;
    if (reported - this.epochValue > MAX_EPOCH_JUMP) {
      this.log.warn(
        { reported, epoch: this.epochValue },
        'an agent reports an implausible coordinator epoch; not raising ours to it',
      );
      return;
    }
    this.epochTarget = want;
    this.epochRaise = this.epochRaise
      .then(async () => {
        const target = this.epochTarget;
        if (target <= this.epochValue || this.closing) return;
        const from = this.epochValue;
        await this.persistEpoch(target);
        this.epochValue = target;
        this.events.emit({
          kind: 'coordinator.epoch-raised',
          severity: 'warning',
          message: `an agent applied plans of coordinator epoch ${target - 1}, above this coordinator's ${from} (was the store restored from an older copy?); epoch raised to ${target}, every plan re-issued`,
          data: { from, to: target },
        });
        this.plans.reissueAll();
      })
      .catch((err) => this.log.error({ err }, 'cannot persist the raised coordinator epoch'));
  }

  async start(): Promise<void> {
    const { store } = this.opts;
    const ep = await store.get<number>('meta/epoch');
    const epoch = (ep?.value ?? 0) + 1;
    // durable before any plan carries it (issue 15, point 10)
    await this.persistEpoch(epoch);
    this.epochValue = epoch;
    await this.events.load();
    await this.nodes.load();
    await this.state.load(store);
    this.events.emit({
      kind: 'coordinator.started',
      severity: 'info',
      message: `coordinator started with epoch ${this.epochValue}`,
      data: { epoch: this.epochValue },
    });
    // Nodes get a grace period from start-up: liveness is memory-only, so treat every approved
    // node as just seen rather than instantly Unreachable.
    for (const n of this.nodes.all()) if (n.approved && n.state !== 'Removed') this.nodes.heartbeat(n.id);
    // every node's cluster too, with or without a topology: a node whose cluster has none gets an
    // empty plan (its agent stops what it ran), never its last plan forever
    const clusters = new Set(this.clusterNames());
    for (const n of this.nodes.all())
      if (n.approved && n.state !== 'Removed') clusters.add(this.clusterOf(n));
    for (const c of clusters) this.queue.add(`cluster:${c}`);
    this.liveness.start();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.liveness.stop();
      // the queue starts nothing more; then the repair policy ends waits on runs that never start
      const drained = this.queue.close();
      this.repair?.close?.();
      await drained;
      await this.epochRaise;
      await this.opts.store.flush().catch((err) => this.log.error({ err }, 'store flush failed on close'));
    })();
    return this.closing;
  }

  private async route(key: string, run: ReconcileRun): Promise<Reconciled> {
    // each module logs with the run's logger (`{ reconcile: id, key }`) or binds its own to the run
    if (key.startsWith('cluster:')) return this.clusters.reconcile(key.slice(8), run);
    if (key.startsWith('node:')) return this.push.reconcile(key.slice(5), run.log);
    // etcd membership runs on its own key per cluster: one change in flight (coordinator/etcd/)
    if (key.startsWith('etcd:')) return this.repair?.reconcileEtcd?.(key.slice(5), run);
    return undefined;
  }

  // ---------------------------------------------------------------- inbound from agents (intake)

  handleRegister(msg: Register): Promise<RegisterReply> {
    return this.intake.handleRegister(msg);
  }

  handleHeartbeat(hb: Heartbeat): void {
    this.intake.handleHeartbeat(hb);
  }

  handleStatus(st: NodeStatus): void {
    this.intake.handleStatus(st);
  }

  handleFacts(msg: FactsUpdate): Promise<void> {
    return this.intake.handleFacts(msg);
  }

  handlePlanFetch(msg: PlanFetch): SignedPlan {
    return this.intake.handlePlanFetch(msg);
  }

  // ---------------------------------------------------------------- reads (cluster state, plan book)

  /** Clusters with a topology, or with assignments left (a deleted topology's, until they are gone). */
  clusterNames(): string[] {
    return this.state.clusterNames();
  }

  topology(cluster?: string): Topology | undefined {
    return this.state.topology(cluster);
  }

  listTopologies(): Topology[] {
    return this.state.listTopologies();
  }

  /** The node's cluster: explicit (its `drover.dev/cluster` label, else `default`); see coordinator/labels.ts. */
  clusterOf(rec: NodeRecord): string {
    return this.state.clusterOf(rec);
  }

  /** Node records of a cluster with their effective state, as placement and rendering see them. */
  placementNodes(cluster: string): NodeRecord[] {
    return this.state.placementNodes(cluster);
  }

  currentAssignments(cluster: string): Assignment[] {
    return this.state.currentAssignments(cluster);
  }

  allAssignments(): Assignment[] {
    return this.state.allAssignments();
  }

  unplacedFor(cluster: string): Unplaced[] {
    return this.clusters.unplacedFor(cluster);
  }

  desiredPlan(nodeId: string): NodePlan | undefined {
    return this.plans.plan(nodeId);
  }

  /** What applying `t` would change, computed without writing anything. */
  previewTopology(t: Topology): TopologyPreview {
    return this.clusters.preview(t);
  }

  /** True when every approved, reachable node has applied its desired plan. */
  converged(cluster?: string): boolean {
    for (const [id, d] of this.plans.entries()) {
      const rec = this.nodes.get(id);
      if (!rec?.approved) continue;
      if (cluster && this.clusterOf(rec) !== cluster) continue;
      const l = this.nodes.liveness(id);
      if (!l || l.state === 'Unreachable') continue;
      if (l.applied?.checksum !== d.plan.checksum) return false;
    }
    return true;
  }

  // ---------------------------------------------------------------- operator actions

  applyTopology(t: Topology): Promise<void> {
    return this.operator.applyTopology(t);
  }

  /**
   * Forgets a cluster's topology: its instances are removed (the nodes get plans without them)
   * by the cluster reconcile this queues. Returns false when there is no such topology.
   */
  deleteTopology(name: string, by?: string): Promise<boolean> {
    return this.operator.deleteTopology(name, by);
  }

  requireNode(id: string): NodeRecord {
    return this.operator.requireNode(id);
  }

  approve(id: string): Promise<NodeRecord> {
    return this.operator.approve(id);
  }

  setCordon(id: string, cordoned: boolean): Promise<NodeRecord> {
    return this.operator.setCordon(id, cordoned);
  }

  drain(id: string): Promise<NodeRecord> {
    return this.operator.drain(id);
  }

  /** Forgets a node (coordinator/engine/operator.ts); a live one is refused unless `force`. */
  remove(id: string, opts: RemoveOptions = {}): Promise<RemovalOutcome> {
    return this.operator.remove(id, opts);
  }

  /** `drover repair NODE` (coordinator/engine/operator.ts). */
  startRepair(
    nodeId: string,
    opts: { force?: boolean; startTask?: NodeRepairPorts['startTask'] } = {},
  ): { started: NodeRepairStarted; done: Promise<NodeRepairOutcome> } {
    return this.operator.startRepair(nodeId, opts);
  }

  repairNode(
    nodeId: string,
    opts: { force?: boolean } = {},
  ): Promise<{ reprovisioned: string[]; reassigning: string[] }> {
    return this.operator.repairNode(nodeId, opts);
  }

  /** `drover move INSTANCE --to NODE`: same safety rules as automatic repair; `force` skips the last-healthy rule. */
  moveInstance(
    instanceId: string,
    toNode: string,
    opts: { force?: boolean } = {},
  ): Promise<{ from: string; to: string }> {
    return this.operator.moveInstance(instanceId, toNode, opts);
  }

  /**
   * `drover repair etcd --member NAME`: replace that member now (through the survivors, quorum
   * permitting); `dryRun` says what would happen and does nothing.
   */
  repairEtcdMember(member: string, opts: { dryRun?: boolean } = {}): EtcdMemberRepair {
    return this.operator.repairEtcdMember(member, opts);
  }

  runTask(
    input: Omit<Task, 'v' | 'type' | 'id' | 'issuedAt' | 'expiresAt' | 'timeoutMs'> & {
      timeoutMs?: number;
      id?: string;
    },
  ): Promise<TaskResult> {
    return this.operator.runTask(input);
  }
}
