import { randomUUID } from 'node:crypto';
import { type Clock, systemClock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import {
  type Event,
  type FactsUpdate,
  type Heartbeat,
  type InstanceSpec,
  instanceChecksum,
  type NodePlan,
  type NodeStatus,
  type PlanFetch,
  type PlanResult,
  PROTOCOL_VERSION,
  type Register,
  type RegisterReply,
  type SignedPlan,
  type SigningKeyPair,
  sealPlan,
  signPlan,
  type Task,
  type TaskResult,
} from '../protocol/index.js';
import {
  type EtcdAssignmentExtras,
  etcdInitialCluster,
  RenderCache,
  type RenderOptions,
  renderPlans,
} from './catalog/index.js';
import { unavailableByRole } from './drain.js';
import { coordinatorError } from './errors.js';
import { EventLog } from './events.js';
import { CLUSTER_LABEL, clusterOfRecord, DEFAULT_CLUSTER, mergeLabels } from './labels.js';
import { type Assignment, isHealthy, type NodeRecord, type Unplaced } from './model.js';
import {
  appliedEmptyPlan,
  prepareRemoval,
  type RemovalOutcome,
  type RemovalPort,
  type RemoveOptions,
} from './node-removal.js';
import {
  type NodeRepairOutcome,
  type NodeRepairPorts,
  type NodeRepairStarted,
  startNodeRepair,
} from './node-repair.js';
import { constantTimeEqual, NodeRegistry, sameMachine } from './nodes.js';
import type { EngineTimings } from './options.js';
import { moveFeasibility, place } from './placement/index.js';
import { RolloutGate } from './rollout.js';
import { restartEvents } from './status-events.js';
import type { Store } from './store/types.js';
import { deriveLabels, type Topology } from './topology/index.js';
import { WorkQueue } from './workqueue.js';

/** The narrow port to the agents; the NATS adapter implements it, unit tests fake it. */
export interface AgentBus {
  pushPlan(nodeId: string, signed: SignedPlan, timeoutMs: number): Promise<PlanResult>;
  sendTask(nodeId: string, task: Task, timeoutMs: number): Promise<TaskResult>;
  publishEvent(e: Event): void;
}

export type { EngineTimings } from './options.js';

export interface EngineOptions {
  store: Store;
  logger: Logger;
  signingKey: SigningKeyPair;
  timings: EngineTimings;
  joinToken?: string;
  clock?: Clock;
  renderOptions?: RenderOptions;
  /** keys reconciled concurrently (plan pushes in flight); default 256 */
  concurrency?: number;
  onReconcile?: (kind: 'cluster' | 'node', outcome: string, ms: number) => void;
  onPush?: (ok: boolean) => void;
}

export { DEFAULT_CLUSTER };

const NONE: ReadonlySet<string> = new Set();

interface Desired {
  plan: NodePlan;
  signed: SignedPlan;
}

/** Evictions decided by the repair policy for one cluster reconcile. */
export interface Evictions {
  evictNodes: Set<string>;
  evictInstances: Set<string>;
  moveTo: Map<string, string>;
}

export interface RepairHooks {
  force?(ms?: number): void;
  requestMove?(instanceId: string, toNode: string, force?: boolean): void;
  /** drop a requested move that placement refused (the target no longer fits) */
  cancelMove?(instanceId: string): void;
  requestReassign?(instanceId: string): void;
  /** which instances must leave their nodes now (Unreachable past grace, drains, operator moves) */
  evictions(cluster: string, current: Assignment[]): Evictions;
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
  ): Promise<number | undefined>;
}

/**
 * The coordinator engine: desired state in the store, liveness in memory, and two kinds of
 * level-triggered reconcile on one de-duplicating work queue:
 * - `cluster:<name>` places roles and renders every node's plan of that cluster;
 * - `node:<id>` pushes the node's desired plan until the agent's applied checksum matches.
 */
export class Engine {
  readonly events: EventLog;
  readonly nodes: NodeRegistry;
  readonly queue: WorkQueue;
  epoch = 0;
  private bus?: AgentBus;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly topologies = new Map<string, { topology: Topology; revision: number }>();
  private readonly assignments = new Map<string, Map<string, { a: Assignment; revision?: number }>>();
  private readonly desired = new Map<string, Desired>();
  private readonly generation = new Map<string, number>();
  private readonly unplaced = new Map<string, Unplaced[]>();
  /** one render memo per cluster: instance ids repeat across clusters, and a render retains only its own */
  private readonly renderCaches = new Map<string, RenderCache>();
  private renderCache(cluster: string): RenderCache {
    let c = this.renderCaches.get(cluster);
    if (!c) {
      c = new RenderCache();
      this.renderCaches.set(cluster, c);
    }
    return c;
  }
  private readonly rollout: RolloutGate;
  /** instances per role across clusters, refreshed on every cluster reconcile */
  private roleCounts = new Map<string, number>();
  private readonly lastClusterRun = new Map<string, { at: number; ms: number }>();
  /** per node, the rendered instance objects its desired plan was last sealed from */
  private readonly sealedFrom = new Map<string, Set<object>>();
  /**
   * Content checksums of rendered instance objects. Rendered specs are never mutated (the render
   * cache hands the same object back while its inputs are unchanged), so identity is a safe key;
   * a topology preview and the reconcile that applies it then checksum each instance once.
   */
  private readonly instanceSums = new WeakMap<object, string>();
  private sweepTimer: unknown;
  private closing?: Promise<void>;
  repair?: RepairHooks;

  constructor(private readonly opts: EngineOptions) {
    this.clock = opts.clock ?? systemClock;
    this.log = opts.logger;
    this.events = new EventLog(opts.store, opts.logger, undefined, this.clock);
    this.nodes = new NodeRegistry(opts.store, this.clock, opts.timings);
    this.rollout = new RolloutGate(this.clock, (nodeId, instanceId, checksum) => {
      const l = this.nodes.liveness(nodeId);
      if (!l || l.state === 'Unreachable') return true;
      const i = l.status?.instances.find((x) => x.id === instanceId);
      return !!i && i.checksum === checksum && isHealthy(i);
    });
    this.queue = new WorkQueue((k) => this.reconcile(k), {
      concurrency: opts.concurrency ?? 256,
      clock: this.clock,
      logger: opts.logger,
      onOutcome: (key, outcome, ms) =>
        opts.onReconcile?.(key.startsWith('node:') ? 'node' : 'cluster', outcome, ms),
    });
  }

  get timings(): EngineTimings {
    return this.opts.timings;
  }

  attachBus(bus: AgentBus): void {
    this.bus = bus;
    this.events.subscribe((e) => bus.publishEvent(e));
  }

  async start(): Promise<void> {
    const { store } = this.opts;
    const ep = await store.get<number>('meta/epoch');
    this.epoch = (ep?.value ?? 0) + 1;
    if (ep) await store.update('meta/epoch', this.epoch, ep.revision);
    else await store.create('meta/epoch', this.epoch);
    await this.events.load();
    await this.nodes.load();
    for (const e of await store.list<Topology>('topology/'))
      this.topologies.set(e.key.slice('topology/'.length), { topology: e.value, revision: e.revision });
    for (const e of await store.list<Assignment>('assignments/'))
      this.assignmentMap(e.value.cluster).set(e.value.instanceId, { a: e.value, revision: e.revision });
    this.events.emit({
      kind: 'coordinator.started',
      severity: 'info',
      message: `coordinator started with epoch ${this.epoch}`,
      data: { epoch: this.epoch },
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
    const tick = () => {
      this.sweep();
      this.sweepTimer = this.clock.setTimeout(
        tick,
        Math.max(100, Math.floor(this.opts.timings.heartbeatIntervalMs / 4)),
      );
    };
    tick();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.clock.clearTimeout(this.sweepTimer);
      await this.queue.close();
      await this.opts.store.flush().catch((err) => this.log.error({ err }, 'store flush failed on close'));
    })();
    return this.closing;
  }

  // ---------------------------------------------------------------- inbound from agents

  async handleRegister(msg: Register): Promise<RegisterReply> {
    const now = new Date(this.clock.now()).toISOString();
    const base = {
      v: PROTOCOL_VERSION,
      type: 'register-reply' as const,
      nodeId: msg.nodeId,
      coordinatorEpoch: this.epoch,
      signingKey: this.opts.signingKey.publicKeyB64,
      keyFingerprint: this.opts.signingKey.fingerprint,
      heartbeatIntervalMs: this.opts.timings.heartbeatIntervalMs,
    };
    let rec = this.nodes.get(msg.nodeId);
    const clusterBefore = rec && rec.state !== 'Removed' ? this.clusterOf(rec) : undefined;
    // the operator's labels (`drover label`) survive every registration; a new record has none
    const labels = mergeLabels(
      msg.labels,
      deriveLabels(msg.facts),
      rec && rec.state !== 'Removed' ? rec.operatorLabels : undefined,
    );
    const tokenOk =
      !!this.opts.joinToken && !!msg.joinToken && constantTimeEqual(msg.joinToken, this.opts.joinToken);
    if (rec && rec.state !== 'Removed' && !sameMachine(rec.fingerprint, msg.fingerprint)) {
      this.events.emit({
        kind: 'node.refused',
        severity: 'error',
        nodeId: msg.nodeId,
        message: `node ${msg.nodeId} registered from a different machine (machine-id ${msg.fingerprint.machineId || '?'} ≠ ${rec.fingerprint.machineId || '?'}); refused — a wiped or cloned host must be removed first`,
      });
      return {
        ...base,
        accepted: false,
        state: 'Pending',
        reason:
          'fingerprint mismatch: this node id belongs to a different machine; remove the old node first',
      };
    }
    if (!rec || rec.state === 'Removed') {
      const twin = this.nodes.findByAddress(msg.address, msg.nodeId);
      const approved = tokenOk && !twin;
      rec = NodeRegistry.newRecord({
        id: msg.nodeId,
        hostname: msg.hostname,
        address: msg.address,
        labels,
        facts: msg.facts,
        fingerprint: msg.fingerprint,
        approved,
        now,
        cluster: msg.labels[CLUSTER_LABEL],
      });
      rec.agentLabels = { ...msg.labels };
      if (twin) rec.heldFor = twin.id;
      if (this.nodes.get(msg.nodeId)) await this.nodes.forget(msg.nodeId);
      await this.nodes.save(rec);
      if (twin) {
        this.events.emit({
          kind: 'node.suspected-wipe',
          severity: 'warning',
          nodeId: msg.nodeId,
          message: `new node ${msg.nodeId} has the address ${msg.address} of existing node ${twin.id}: possibly a wiped or cloned host; kept Pending — remove ${twin.id} and approve ${msg.nodeId} to replace it`,
          data: { existing: twin.id },
        });
      } else {
        this.events.emit({
          kind: approved ? 'node.joined' : 'node.pending',
          severity: 'info',
          nodeId: msg.nodeId,
          message: approved
            ? `node ${msg.nodeId} (${msg.hostname}, ${msg.address}) joined`
            : `node ${msg.nodeId} (${msg.hostname}) is waiting for approval`,
        });
      }
    } else if (
      rec.address !== msg.address ||
      rec.hostname !== msg.hostname ||
      JSON.stringify(rec.labels) !== JSON.stringify(labels) ||
      JSON.stringify(rec.agentLabels) !== JSON.stringify(msg.labels) ||
      JSON.stringify({ ...rec.facts, collectedAt: '' }) !== JSON.stringify({ ...msg.facts, collectedAt: '' })
    ) {
      rec = {
        ...rec,
        address: msg.address,
        hostname: msg.hostname,
        labels,
        agentLabels: { ...msg.labels },
        facts: msg.facts,
        fingerprint: msg.fingerprint,
      };
      if (!rec.approved && tokenOk && !rec.heldFor) rec = { ...rec, approved: true, state: 'Ready' };
      await this.nodes.save(rec);
    } else if (!rec.approved && tokenOk && !rec.heldFor) {
      rec = { ...rec, approved: true, state: 'Ready' };
      await this.nodes.save(rec);
    }
    const was = this.nodes.heartbeat(msg.nodeId);
    if (msg.applied) {
      const l = this.nodes.liveness(msg.nodeId);
      if (l) l.applied = { ...msg.applied };
    }
    if (rec.approved && (was === 'Suspect' || was === 'Unreachable'))
      this.events.emit({
        kind: 'node.recovered',
        severity: 'info',
        nodeId: msg.nodeId,
        message: `node ${msg.nodeId} registered again (was ${was})`,
      });
    if (!rec.approved)
      return {
        ...base,
        accepted: true,
        state: 'Pending',
        reason: 'waiting for operator approval (no valid join token)',
      };
    const clusterNow = this.clusterOf(rec);
    if (clusterBefore !== undefined && clusterBefore !== clusterNow) {
      // the agent's configured cluster label changed: an explicit move, by whoever edited its config
      this.events.emit({
        kind: 'node.cluster-changed',
        severity: 'warning',
        nodeId: rec.id,
        cluster: clusterNow,
        message: `node ${rec.id} moved from cluster ${clusterBefore} to ${clusterNow} (its agent's ${CLUSTER_LABEL} label)`,
        data: { from: clusterBefore, to: clusterNow },
      });
      this.queue.add(`cluster:${clusterBefore}`);
    }
    this.queue.add(`cluster:${clusterNow}`);
    const d = this.desired.get(rec.id);
    if (d) this.queue.add(`node:${rec.id}`);
    return { ...base, accepted: true, state: this.nodes.effectiveState(rec), plan: d?.signed };
  }

  handleHeartbeat(hb: Heartbeat): void {
    const rec = this.nodes.get(hb.nodeId);
    if (!rec || !rec.approved || rec.state === 'Removed') return;
    const prev = this.nodes.heartbeat(hb.nodeId, hb.digest);
    if (prev && prev !== 'new') {
      this.events.emit({
        kind: 'node.recovered',
        severity: 'info',
        nodeId: hb.nodeId,
        message: `node ${hb.nodeId} is heartbeating again (was ${prev})`,
      });
      this.queue.add(`cluster:${this.clusterOf(rec)}`);
    }
    const l = this.nodes.liveness(hb.nodeId)!;
    const d = this.desired.get(hb.nodeId);
    if (!d) return;
    const dg = hb.digest;
    const matches = dg.checksum === d.plan.checksum && dg.coordinatorEpoch === this.epoch;
    if (matches) {
      l.applied = { generation: dg.generation, checksum: dg.checksum, coordinatorEpoch: dg.coordinatorEpoch };
      return;
    }
    // A heartbeat sent just before our push landed still shows the old plan; don't re-push for it.
    const recentlyPushed =
      l.lastPushOkAt !== undefined &&
      this.clock.now() - l.lastPushOkAt < this.opts.timings.heartbeatIntervalMs * 1.5;
    if (!recentlyPushed) {
      l.applied = { generation: dg.generation, checksum: dg.checksum, coordinatorEpoch: dg.coordinatorEpoch };
      this.queue.add(`node:${hb.nodeId}`);
    }
  }

  handleStatus(st: NodeStatus): void {
    const rec = this.nodes.get(st.nodeId);
    if (!rec || !rec.approved) return;
    this.nodes.heartbeat(st.nodeId, st.digest);
    const l = this.nodes.liveness(st.nodeId)!;
    const before = l.status;
    l.status = st;
    if (st.plan.state === 'refused' && before?.plan.state !== 'refused') {
      this.events.emit({
        kind: 'plan.refused',
        severity: 'error',
        nodeId: st.nodeId,
        message: `node ${st.nodeId} refused its plan: ${st.plan.error ?? 'no reason given'}`,
      });
    }
    for (const e of restartEvents(before, st)) this.events.emit(e);
    const prevPhase = new Map(before?.instances.map((i) => [i.id, i.phase]) ?? []);
    for (const i of st.instances) {
      if (isHealthy(i))
        for (const next of this.rollout.release(i.role, i.id, i.checksum)) this.queue.add(`node:${next}`);
      const p = prevPhase.get(i.id);
      if (
        p !== undefined &&
        p !== i.phase &&
        (i.phase === 'CrashLoop' || i.phase === 'Failed' || i.phase === 'Unhealthy')
      ) {
        this.events.emit({
          kind: 'instance.unhealthy',
          severity: 'warning',
          nodeId: st.nodeId,
          instanceId: i.id,
          role: i.role,
          message: `${i.id} on ${st.nodeId} is ${i.phase}${i.lastError ? `: ${i.lastError}` : ''}`,
        });
      }
    }
    this.repairObserver?.(st);
  }

  repairObserver?: (st: NodeStatus) => void;

  async handleFacts(msg: FactsUpdate): Promise<void> {
    const rec = this.nodes.get(msg.nodeId);
    if (!rec) return;
    const agent =
      rec.agentLabels ??
      Object.fromEntries(
        Object.entries(rec.labels).filter(([k]) => !k.startsWith('drover.dev/') || k === CLUSTER_LABEL),
      );
    const labels = mergeLabels(agent, deriveLabels(msg.facts), rec.operatorLabels);
    await this.nodes.save({ ...rec, facts: msg.facts, labels });
    this.queue.add(`cluster:${this.clusterOf(rec)}`);
  }

  handlePlanFetch(msg: PlanFetch): SignedPlan {
    const rec = this.nodes.get(msg.nodeId);
    if (!rec)
      throw coordinatorError(
        'DROVER_ERR_NODE_NOT_FOUND',
        `node ${msg.nodeId} is not registered; register first`,
      );
    if (!rec.approved)
      throw coordinatorError('DROVER_ERR_ILLEGAL_STATE', `node ${msg.nodeId} is waiting for approval`);
    const d = this.desired.get(msg.nodeId);
    if (!d)
      throw coordinatorError('DROVER_ERR_NOT_READY', `no plan rendered yet for ${msg.nodeId}; retry shortly`);
    return d.signed;
  }

  // ---------------------------------------------------------------- topology

  /** Clusters with a topology, or with assignments left (a deleted topology's, until they are gone). */
  clusterNames(): string[] {
    const held = [...this.assignments].filter(([, m]) => m.size > 0).map(([name]) => name);
    return [...new Set([...this.topologies.keys(), ...held])].sort();
  }

  topology(cluster?: string): Topology | undefined {
    return this.topologies.get(cluster ?? this.defaultCluster() ?? DEFAULT_CLUSTER)?.topology;
  }

  listTopologies(): Topology[] {
    return [...this.topologies.values()].map((t) => t.topology);
  }

  async applyTopology(t: Topology): Promise<void> {
    const name = t.metadata.name;
    const cur = this.topologies.get(name);
    const revision = cur
      ? await this.opts.store.update(`topology/${name}`, t, cur.revision)
      : await this.opts.store.create(`topology/${name}`, t);
    this.topologies.set(name, { topology: t, revision });
    this.events.emit({
      kind: 'topology.applied',
      severity: 'info',
      cluster: name,
      message: `topology ${name} applied (revision ${revision})`,
    });
    this.queue.add(`cluster:${name}`);
  }

  /**
   * Forgets a cluster's topology: its instances are removed (the nodes get plans without them)
   * by the cluster reconcile this queues. Returns false when there is no such topology.
   */
  async deleteTopology(name: string, by?: string): Promise<boolean> {
    const cur = this.topologies.get(name);
    if (!cur) return false;
    await this.opts.store.delete(`topology/${name}`, cur.revision);
    this.topologies.delete(name);
    const n = this.currentAssignments(name).length;
    this.events.emit({
      kind: 'topology.deleted',
      severity: 'warning',
      cluster: name,
      message: `topology ${name} deleted${by ? ` by ${by}` : ''}: its ${n} instance(s) are being removed`,
      data: { instances: n },
    });
    // its nodes stay in the cluster (membership is explicit) and get empty plans (node.orphaned)
    this.queue.add(`cluster:${name}`);
    return true;
  }

  /** What applying `t` would change, computed without writing anything. */
  previewTopology(t: Topology): {
    added: Assignment[];
    moved: Array<{ from: Assignment; to: Assignment }>;
    removed: Assignment[];
    unplaced: Unplaced[];
    nodesChanged: string[];
  } {
    const cluster = t.metadata.name;
    const current = this.currentAssignments(cluster);
    const nodes = this.placementNodes(cluster);
    const res = place({
      topology: t,
      nodes,
      current,
      ...this.evictionsFor(cluster, current, true),
      elsewhere: (pin) => this.pinElsewhere(cluster, pin),
    });
    const nodeMap = new Map(nodes.map((n) => [n.id, n]));
    // With the render cache: what the preview renders, the reconcile that applies it reuses.
    const rendered = renderPlans({
      topology: t,
      assignments: res.assignments,
      nodes: nodeMap,
      options: { ...this.opts.renderOptions, cache: this.renderCache(cluster) },
    });
    const nodesChanged: string[] = [];
    for (const n of nodes) {
      if (!n.approved) continue;
      const plan = this.sealFor(n.id, rendered.get(n.id) ?? [], 0);
      if (plan.checksum !== this.desired.get(n.id)?.plan.checksum) nodesChanged.push(n.id);
    }
    return {
      added: res.added,
      moved: res.moved,
      removed: res.removed,
      unplaced: res.unplaced,
      nodesChanged: nodesChanged.sort(),
    };
  }

  // ---------------------------------------------------------------- reconcile

  private async reconcile(key: string): Promise<{ requeueAfterMs?: number } | undefined> {
    if (key.startsWith('cluster:')) return this.reconcileCluster(key.slice(8));
    if (key.startsWith('node:')) return this.reconcileNode(key.slice(5));
    return undefined;
  }

  private async reconcileCluster(cluster: string): Promise<{ requeueAfterMs?: number } | undefined> {
    // A cluster reconcile costs O(nodes). During a burst (hundreds of registrations a second) run
    // it at most every `2 × its last duration` (up to 1 s), so the burst costs a bounded share.
    // Cheap reconciles (small clusters) are never paced.
    const now = this.clock.now();
    const last = this.lastClusterRun.get(cluster);
    if (last && last.ms >= 10) {
      const gap = Math.min(1000, last.ms * 2);
      if (now - last.at < gap) return { requeueAfterMs: gap - (now - last.at) };
    }
    const started = this.clock.now();
    try {
      return await this.reconcileClusterNow(cluster);
    } finally {
      this.lastClusterRun.set(cluster, { at: this.clock.now(), ms: this.clock.now() - started });
    }
  }

  private async reconcileClusterNow(cluster: string): Promise<{ requeueAfterMs?: number } | undefined> {
    const entry = this.topologies.get(cluster);
    const current = this.currentAssignments(cluster);
    const nodes = this.placementNodes(cluster);
    let assignments: Assignment[] = [];
    let requeueAfterMs: number | undefined;
    if (entry) {
      const ev = this.evictionsFor(cluster, current);
      const res = place({
        topology: entry.topology,
        nodes,
        current,
        ...ev,
        elsewhere: (pin) => this.pinElsewhere(cluster, pin),
        now: new Date(this.clock.now()).toISOString(),
      });
      assignments = res.assignments;
      freezeEtcdMembership(current, res, new Map(nodes.map((n) => [n.id, n])));
      await this.writeAssignments(cluster, res.assignments, current);
      for (const a of res.added)
        this.events.emit({
          kind: 'role.placed',
          severity: 'info',
          cluster,
          nodeId: a.nodeId,
          role: a.role,
          instanceId: a.instanceId,
          message: `${a.instanceId} placed on ${a.nodeId}`,
        });
      for (const m of res.moved)
        this.events.emit({
          kind: 'role.moved',
          severity: 'warning',
          cluster,
          nodeId: m.to.nodeId,
          role: m.to.role,
          instanceId: m.to.instanceId,
          message: `${m.to.instanceId} moved from ${m.from.nodeId} to ${m.to.nodeId} (epoch ${m.to.epoch})`,
          data: { from: m.from.nodeId, to: m.to.nodeId, epoch: m.to.epoch },
        });
      for (const a of res.removed)
        this.events.emit({
          kind: 'role.removed',
          severity: 'info',
          cluster,
          nodeId: a.nodeId,
          role: a.role,
          instanceId: a.instanceId,
          message: `${a.instanceId} removed from ${a.nodeId}`,
        });
      this.noteUnplaced(cluster, res.unplaced);
      // A requested move the target can no longer take (it was fine when asked) is dropped, loudly.
      for (const r of res.refusedMoves) {
        this.repair?.cancelMove?.(r.instanceId);
        this.events.emit({
          kind: 'role.move-refused',
          severity: 'warning',
          cluster,
          instanceId: r.instanceId,
          nodeId: r.nodeId,
          message: `move dropped: ${r.reason}`,
        });
      }
      const retry = await this.repair?.afterPlacement?.(cluster, res.moved);
      // Evictions that wait on a timer (reassignAfter) need a wake-up even if nothing else changes.
      for (const ms of [ev.wakeAfterMs, retry])
        if (ms !== undefined) requeueAfterMs = Math.min(requeueAfterMs ?? ms, ms);
    } else {
      await this.writeAssignments(cluster, [], current);
      this.renderCaches.delete(cluster);
      this.noteOrphans(cluster, nodes);
    }
    const counts = new Map<string, number>();
    for (const a of this.allAssignments()) counts.set(a.role, (counts.get(a.role) ?? 0) + 1);
    this.roleCounts = counts;
    const nodeMap = new Map(nodes.map((n) => [n.id, n]));
    const rendered = entry
      ? renderPlans({
          topology: entry.topology,
          assignments,
          nodes: nodeMap,
          options: { ...this.opts.renderOptions, cache: this.renderCache(cluster) },
        })
      : new Map();
    // Sealing and signing thousands of changed plans takes a while: yield now and then so the
    // pushes of the plans already sealed go out meanwhile (and heartbeats are not held up).
    let sealed = 0;
    for (const n of nodes) {
      if (!n.approved || n.state === 'Removed' || !this.nodes.get(n.id)) continue; // removed while we yielded
      const instances = this.fenced.has(n.id) ? [] : (rendered.get(n.id) ?? []);
      if (this.setDesired(n.id, instances) && ++sealed % 250 === 0) await new Promise((r) => setImmediate(r));
    }
    return requeueAfterMs === undefined ? undefined : { requeueAfterMs };
  }

  /**
   * Nodes of a cluster that has no topology get empty plans: their agents stop every instance.
   * Say so with a `node.orphaned` event for each node that runs (or was told to run) something.
   */
  private noteOrphans(cluster: string, nodes: NodeRecord[]): void {
    for (const n of nodes) {
      const d = this.desired.get(n.id);
      // once its plan is empty the node was told; before any plan (a coordinator restart) go by its status
      const ids = (
        d
          ? d.plan.instances.map((i) => i.id)
          : (this.nodes.liveness(n.id)?.status?.instances.map((i) => i.id) ?? [])
      ).sort();
      if (ids.length === 0) continue;
      this.events.emit({
        kind: 'node.orphaned',
        severity: 'warning',
        cluster,
        nodeId: n.id,
        message: `node ${n.id} is in cluster ${cluster}, which has no topology: its plan is now empty and its agent stops ${ids.join(', ')}; apply a topology named ${cluster}, or move the node with \`drover label ${n.id} ${CLUSTER_LABEL}=NAME\``,
        data: { instances: ids },
      });
    }
  }

  /** Returns true when the node got a new plan. */
  private setDesired(nodeId: string, instances: Array<Omit<InstanceSpec, 'checksum'>>): boolean {
    const cur = this.desired.get(nodeId);
    // The render cache hands back the same objects for unchanged instances: when every one is the
    // object the current plan was sealed from, the plan cannot have changed, and the O(content)
    // checksum pass is skipped (most nodes on most cluster reconciles of a large fleet).
    const inputs = this.sealedFrom.get(nodeId);
    if (
      cur &&
      inputs &&
      inputs.size === instances.length &&
      instances.every((i) => inputs.has(i)) &&
      samePlanAddons(cur.plan, { ...this.planAddons?.(nodeId) })
    )
      return false;
    const gen = this.generation.get(nodeId) ?? 0;
    const candidate = this.sealFor(nodeId, instances, gen + 1);
    this.sealedFrom.set(nodeId, new Set<object>(instances));
    if (cur && cur.plan.checksum === candidate.checksum && samePlanAddons(cur.plan, candidate)) return false;
    this.generation.set(nodeId, gen + 1);
    this.desired.set(nodeId, { plan: candidate, signed: signPlan(candidate, this.opts.signingKey) });
    this.queue.add(`node:${nodeId}`);
    return true;
  }

  private sealFor(
    nodeId: string,
    instances: Array<Omit<InstanceSpec, 'checksum'>>,
    generation: number,
  ): NodePlan {
    return sealPlan(
      {
        v: PROTOCOL_VERSION,
        type: 'plan',
        nodeId,
        generation,
        coordinatorEpoch: this.epoch,
        issuedAt: new Date(this.clock.now()).toISOString(),
        instances: [...instances].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
        ...this.planAddons?.(nodeId),
      },
      (i) => {
        let sum = this.instanceSums.get(i);
        if (sum === undefined) {
          sum = instanceChecksum(i);
          this.instanceSums.set(i, sum);
        }
        return sum;
      },
    );
  }

  // ---------------------------------------------------------------- plan add-ons (seeds)

  /**
   * Extra plan fields for a node that are not instances (set by `coordinator/api/clean.ts`: the
   * purge list of `drover clean --purge`). They are signed with the plan but are not part of its
   * content checksum, so a change in them alone still issues a new generation (see setDesired).
   */
  planAddons?: (nodeId: string) => Pick<NodePlan, 'purge'> | undefined;

  private async reconcileNode(nodeId: string): Promise<{ requeueAfterMs?: number } | undefined> {
    const d = this.desired.get(nodeId);
    const rec = this.nodes.get(nodeId);
    const l = this.nodes.liveness(nodeId);
    if (!d || !rec || !rec.approved || !l || l.state === 'Unreachable' || !this.bus) return undefined;
    const a = l.applied;
    if (
      a &&
      a.checksum === d.plan.checksum &&
      a.coordinatorEpoch === this.epoch &&
      a.generation >= d.plan.generation
    )
      return undefined;
    const blocked = this.rollout.acquire(
      nodeId,
      d.plan,
      (role) => this.roleCounts.get(role) ?? 0,
      (role) => this.unavailableByRole().get(role) ?? NONE,
    );
    if (blocked.length) {
      this.log.debug(
        { nodeId, roles: blocked },
        'plan push waits: another instance of these roles is still restarting',
      );
      return { requeueAfterMs: 500 };
    }
    let res: PlanResult;
    try {
      res = await this.bus.pushPlan(nodeId, d.signed, this.opts.timings.pushTimeoutMs);
    } catch (err) {
      this.opts.onPush?.(false);
      throw coordinatorError(
        'DROVER_ERR_NODE_UNREACHABLE',
        `plan push to ${nodeId} failed: ${(err as Error).message}`,
        undefined,
        err,
      );
    }
    this.opts.onPush?.(res.accepted);
    if (!res.accepted) {
      this.events.emit({
        kind: 'plan.refused',
        severity: 'error',
        nodeId,
        message: `node ${nodeId} refused plan generation ${d.plan.generation}: ${res.error?.message ?? 'no reason'}`,
      });
      throw coordinatorError(
        'DROVER_ERR_ILLEGAL_STATE',
        `node ${nodeId} refused its plan: ${res.error?.code ?? ''} ${res.error?.message ?? ''}`,
      );
    }
    l.applied = { generation: res.generation, checksum: res.checksum, coordinatorEpoch: this.epoch };
    l.lastPushOkAt = this.clock.now();
    this.rollout.pushed(nodeId, d.plan);
    return undefined;
  }

  private unavailableMemo?: { at: number; byRole: Map<string, Set<string>> };

  /** unavailableByRole (coordinator/drain.ts) over every assignment, memoized for 100 ms. */
  private unavailableByRole(): Map<string, Set<string>> {
    const now = this.clock.now();
    if (this.unavailableMemo && now - this.unavailableMemo.at < 100) return this.unavailableMemo.byRole;
    const byRole = unavailableByRole(this.allAssignments(), (n) => this.nodes.liveness(n));
    this.unavailableMemo = { at: now, byRole };
    return byRole;
  }

  // ---------------------------------------------------------------- liveness

  /** runs before each liveness sweep (the composition root wires the stall re-base here) */
  beforeSweep?: () => void;

  private sweep(): void {
    this.beforeSweep?.();
    const changes = this.nodes.sweep();
    const clusters = new Set<string>();
    for (const c of changes) {
      const rec = this.nodes.get(c.id);
      if (!rec || !rec.approved) continue;
      this.events.emit({
        kind: c.to === 'Suspect' ? 'node.suspect' : 'node.unreachable',
        severity: 'warning',
        nodeId: c.id,
        message: `node ${c.id} is ${c.to}: no heartbeat for ${(c.silentMs / 1000).toFixed(1)}s`,
      });
      if (c.to === 'Unreachable') clusters.add(this.clusterOf(rec));
    }
    for (const c of clusters) this.queue.add(`cluster:${c}`);
  }

  // ---------------------------------------------------------------- helpers

  /** Which topology `GET /v1/topology` shows without `?cluster=`; never used for node membership. */
  private defaultCluster(): string | undefined {
    if (this.topologies.has(DEFAULT_CLUSTER)) return DEFAULT_CLUSTER;
    if (this.topologies.size === 1) return [...this.topologies.keys()][0];
    return undefined;
  }

  /** The node's cluster: explicit (its `drover.dev/cluster` label, else `default`); see coordinator/labels.ts. */
  clusterOf(rec: NodeRecord): string {
    return clusterOfRecord(rec);
  }

  /** Why a node pinned by `cluster`'s topology is not among its nodes, if some node has that id or hostname. */
  private pinElsewhere(cluster: string, pin: string): string | undefined {
    const all = this.nodes.all().filter((n) => n.state !== 'Removed');
    const n = all.find((x) => x.id === pin) ?? all.find((x) => x.hostname === pin);
    if (!n) return undefined;
    if (!n.approved) return `waiting for approval (\`drover approve ${n.id}\`)`;
    const c = this.clusterOf(n);
    if (c === cluster) return undefined;
    return `in cluster ${c}, not ${cluster}: a node joins a cluster only explicitly (\`drover label ${n.id} ${CLUSTER_LABEL}=${cluster}\`)`;
  }

  /** Node records of a cluster with their effective state, as placement and rendering see them. */
  placementNodes(cluster: string): NodeRecord[] {
    return this.nodes
      .all()
      .filter((n) => n.state !== 'Removed' && n.approved && this.clusterOf(n) === cluster)
      .map((n) => ({ ...n, state: this.nodes.effectiveState(n) }));
  }

  currentAssignments(cluster: string): Assignment[] {
    return [...(this.assignments.get(cluster)?.values() ?? [])].map((x) => x.a);
  }

  allAssignments(): Assignment[] {
    return [...this.assignments.values()].flatMap((m) => [...m.values()].map((x) => x.a));
  }

  unplacedFor(cluster: string): Unplaced[] {
    return this.unplaced.get(cluster) ?? [];
  }

  desiredPlan(nodeId: string): NodePlan | undefined {
    return this.desired.get(nodeId)?.plan;
  }

  private assignmentMap(cluster: string): Map<string, { a: Assignment; revision?: number }> {
    let m = this.assignments.get(cluster);
    if (!m) {
      m = new Map();
      this.assignments.set(cluster, m);
    }
    return m;
  }

  private evictionsFor(
    cluster: string,
    current: Assignment[],
    dryRun = false,
  ): Evictions & { wakeAfterMs?: number } {
    if (this.repair && dryRun && this.repair.previewEvictions)
      return this.repair.previewEvictions(cluster, current);
    if (this.repair) return this.repair.evictions(cluster, current);
    const evictNodes = new Set(
      this.nodes
        .all()
        .filter((n) => n.state === 'Draining')
        .map((n) => n.id),
    );
    return { evictNodes, evictInstances: new Set(), moveTo: new Map() };
  }

  private async writeAssignments(cluster: string, next: Assignment[], current: Assignment[]): Promise<void> {
    const m = this.assignmentMap(cluster);
    const nextIds = new Set(next.map((a) => a.instanceId));
    const key = (id: string) => `assignments/${cluster}/${id}`;
    let changed = false;
    for (const a of next) {
      const cur = m.get(a.instanceId);
      if (cur && JSON.stringify(cur.a) === JSON.stringify(a)) continue;
      changed = true;
      const revision =
        cur?.revision !== undefined
          ? await this.opts.store.update(key(a.instanceId), a, cur.revision)
          : await this.opts.store.put(key(a.instanceId), a);
      m.set(a.instanceId, { a, revision });
    }
    for (const a of current) {
      if (nextIds.has(a.instanceId)) continue;
      changed = true;
      await this.opts.store.delete(key(a.instanceId));
      m.delete(a.instanceId);
    }
    // Write-ahead: nothing acts on a new assignment (its plan, an etcd member add) before it is
    // durable, or a crash in between would hand out the same epoch again after the restart.
    if (changed) await this.opts.store.flush();
  }

  private noteUnplaced(cluster: string, list: Unplaced[]): void {
    const before = new Map((this.unplaced.get(cluster) ?? []).map((u) => [u.instanceId, u.reason]));
    for (const u of list) {
      if (before.get(u.instanceId) !== u.reason)
        this.events.emit({
          kind: 'role.unschedulable',
          severity: 'warning',
          cluster,
          role: u.role,
          instanceId: u.instanceId,
          message: u.reason,
        });
    }
    this.unplaced.set(cluster, list);
  }

  // ---------------------------------------------------------------- operator actions

  requireNode(id: string): NodeRecord {
    const rec = this.nodes.get(id);
    if (!rec)
      throw coordinatorError(
        'DROVER_ERR_NODE_NOT_FOUND',
        `no node ${JSON.stringify(id)}; see \`drover get nodes\``,
        { nodeId: id },
      );
    return rec;
  }

  async approve(id: string): Promise<NodeRecord> {
    const rec = this.requireNode(id);
    if (rec.approved) return rec;
    const next = { ...rec, approved: true, state: 'Ready' as const, heldFor: undefined };
    await this.nodes.save(next);
    this.events.emit({ kind: 'node.approved', severity: 'info', nodeId: id, message: `node ${id} approved` });
    this.queue.add(`cluster:${this.clusterOf(next)}`);
    return next;
  }

  async setCordon(id: string, cordoned: boolean): Promise<NodeRecord> {
    const rec = this.requireNode(id);
    const next: NodeRecord = {
      ...rec,
      cordoned,
      state: !cordoned && rec.state === 'Draining' ? 'Ready' : rec.state,
    };
    await this.nodes.save(next);
    this.events.emit({
      kind: cordoned ? 'node.cordoned' : 'node.uncordoned',
      severity: 'info',
      nodeId: id,
      message: `node ${id} ${cordoned ? 'cordoned' : 'uncordoned'}`,
    });
    this.queue.add(`cluster:${this.clusterOf(next)}`);
    return next;
  }

  async drain(id: string): Promise<NodeRecord> {
    const rec = this.requireNode(id);
    const next: NodeRecord = { ...rec, cordoned: true, state: 'Draining' };
    await this.nodes.save(next);
    this.events.emit({
      kind: 'node.draining',
      severity: 'info',
      nodeId: id,
      message: `node ${id} is draining: its instances move elsewhere`,
    });
    this.queue.add(`cluster:${this.clusterOf(next)}`);
    return next;
  }

  /**
   * Forgets a node; its instances are placed elsewhere. A live node that still runs instances is
   * refused unless `force`, which fences it first (coordinator/node-removal.ts).
   */
  async remove(id: string, opts: RemoveOptions = {}): Promise<RemovalOutcome> {
    const rec = this.requireNode(id);
    const cluster = this.clusterOf(rec);
    // Refused even with --force: forgetting an etcd host removes its member, and a membership
    // change without quorum can lose the cluster's data.
    const refusal = this.repair?.removeRefusal?.(cluster, id);
    if (refusal) {
      this.events.emit({
        kind: 'etcd.replace-refused',
        severity: 'error',
        cluster,
        nodeId: id,
        role: 'etcd',
        message: `not removing node ${id}: ${refusal}`,
      });
      throw coordinatorError('DROVER_ERR_ETCD_QUORUM', `not removing node ${id}: ${refusal}`, {
        nodeId: id,
      });
    }
    const outcome = await prepareRemoval(this.removalPort(cluster), id, opts);
    try {
      this.requireNode(id); // not removed by someone else while its agent was stopping its instances
      await this.nodes.forget(id);
    } finally {
      // the fence ends with the record (an id that registers again later starts unfenced)
      this.fenced.delete(id);
    }
    this.desired.delete(id);
    this.sealedFrom.delete(id);
    this.rollout.forget(id);
    this.generation.delete(id);
    this.events.emit({
      kind: 'node.removed',
      severity: 'warning',
      nodeId: id,
      message: `node ${id} removed${outcome.how === 'fenced' ? ' (fenced first: its agent stopped its instances)' : ''}`,
    });
    this.queue.add(`cluster:${cluster}`);
    return outcome;
  }

  /** nodes whose plan is emptied while their removal waits for the agent (node-removal.ts) */
  private readonly fenced = new Set<string>();

  private removalPort(cluster: string): RemovalPort {
    return {
      clock: this.clock,
      state: (n) => {
        const r = this.nodes.get(n);
        return r ? this.nodes.effectiveState(r) : 'Removed';
      },
      assigned: (n) => this.currentAssignments(cluster).filter((a) => a.nodeId === n).length,
      runsNothing: (n) => appliedEmptyPlan(this.desired.get(n)?.plan, this.nodes.liveness(n)),
      fence: (n, on) => {
        if (on) this.fenced.add(n);
        else this.fenced.delete(n);
        this.queue.add(`cluster:${cluster}`);
      },
    };
  }

  /**
   * `drover repair NODE`: a live node re-provisions every instance (files rewritten, restart), one
   * task each (`startTask`, e.g. the API's task tracker, makes them visible); an Unreachable node's
   * instances are reassigned now instead of after `reassignAfter`. `force` also overrides the
   * storm guard for two minutes. Quorum and the one-etcd-change rule still hold. Events:
   * `repair.started`, then `repair.succeeded`/`repair.failed` (see coordinator/node-repair.ts).
   */
  startRepair(
    nodeId: string,
    opts: { force?: boolean; startTask?: NodeRepairPorts['startTask'] } = {},
  ): { started: NodeRepairStarted; done: Promise<NodeRepairOutcome> } {
    const rec = this.requireNode(nodeId);
    const cluster = this.clusterOf(rec);
    if (opts.force) this.repair?.force?.();
    const r = startNodeRepair({
      nodeId,
      unreachable: this.nodes.effectiveState(rec) === 'Unreachable',
      instances: this.currentAssignments(cluster)
        .filter((a) => a.nodeId === nodeId)
        .map((a) => a.instanceId),
      reassign: (id) => this.repair?.requestReassign?.(id),
      startTask:
        opts.startTask ??
        ((req) => {
          const id = randomUUID();
          const done = this.runTask({ ...req, id }).then((x) => ({ ok: x.ok, error: x.error?.message }));
          return { id, done };
        }),
      emit: (e) => this.events.emit(e),
    });
    this.queue.add(`cluster:${cluster}`);
    void r.done.then(() => this.queue.add(`cluster:${cluster}`));
    return r;
  }

  async repairNode(
    nodeId: string,
    opts: { force?: boolean } = {},
  ): Promise<{ reprovisioned: string[]; reassigning: string[] }> {
    const { started, done } = this.startRepair(nodeId, opts);
    const out = await done;
    return {
      reprovisioned: out.reprovisioned,
      reassigning: started.mode === 'reassign' ? started.instances : [],
    };
  }

  /** `drover move INSTANCE --to NODE`: same safety rules as automatic repair; `force` skips the last-healthy rule. */
  async moveInstance(
    instanceId: string,
    toNode: string,
    opts: { force?: boolean } = {},
  ): Promise<{ from: string; to: string }> {
    const a = this.allAssignments().find((x) => x.instanceId === instanceId);
    if (!a)
      throw coordinatorError(
        'DROVER_ERR_INSTANCE_NOT_FOUND',
        `no instance ${JSON.stringify(instanceId)}; see \`drover get assignments\``,
        { instanceId },
      );
    const to = this.requireNode(toNode);
    const refuse = (reason: string) =>
      coordinatorError('DROVER_ERR_MOVE_REFUSED', reason, { instanceId, to: toNode, reason });
    if (this.clusterOf(to) !== a.cluster)
      throw refuse(
        `${instanceId}: cannot move to ${toNode}: it is in cluster ${this.clusterOf(to)}, not ${a.cluster}`,
      );
    const topology = this.topologies.get(a.cluster)?.topology;
    if (topology) {
      const nodes = this.placementNodes(a.cluster);
      if (!nodes.some((n) => n.id === to.id))
        throw refuse(
          `${instanceId}: cannot move to ${toNode}: ${toNode} is ${to.state === 'Removed' ? 'Removed' : 'not approved'}`,
        );
      const v = moveFeasibility({
        topology,
        nodes,
        current: this.currentAssignments(a.cluster),
        instanceId,
        to: to.id,
      });
      if (!v.ok) throw refuse(v.reason);
    }
    if (!this.repair?.requestMove)
      throw coordinatorError('DROVER_ERR_NOT_READY', 'the repair policy is not running');
    this.repair.requestMove(instanceId, toNode, opts.force ?? false);
    this.events.emit({
      kind: 'role.move-requested',
      severity: 'info',
      cluster: a.cluster,
      instanceId,
      role: a.role,
      nodeId: toNode,
      message: `operator asked to move ${instanceId} from ${a.nodeId} to ${toNode}`,
    });
    this.queue.add(`cluster:${a.cluster}`);
    return { from: a.nodeId, to: toNode };
  }

  /** `drover repair etcd --member NAME`: replace that member now (through the survivors, quorum permitting). */
  async repairEtcdMember(member: string): Promise<{ instanceId: string; nodeId: string }> {
    const m = /^(?:etcd[-#])?(\d+)$/.exec(member);
    const a = this.allAssignments().find(
      (x) => x.role === 'etcd' && (x.instanceId === member || (m !== null && x.ordinal === Number(m[1]))),
    );
    if (!a)
      throw coordinatorError(
        'DROVER_ERR_INSTANCE_NOT_FOUND',
        `no etcd member ${JSON.stringify(member)}; members are named etcd-<ordinal>, see \`drover get assignments\``,
        { member },
      );
    if (!this.repair?.requestReassign)
      throw coordinatorError('DROVER_ERR_NOT_READY', 'the repair policy is not running');
    this.repair.requestReassign(a.instanceId);
    this.events.emit({
      kind: 'etcd.repair-requested',
      severity: 'warning',
      cluster: a.cluster,
      instanceId: a.instanceId,
      nodeId: a.nodeId,
      role: 'etcd',
      message: `operator asked to replace etcd member ${a.instanceId} on ${a.nodeId}`,
    });
    this.queue.add(`cluster:${a.cluster}`);
    return { instanceId: a.instanceId, nodeId: a.nodeId };
  }

  async runTask(
    input: Omit<Task, 'v' | 'type' | 'id' | 'issuedAt' | 'timeoutMs'> & { timeoutMs?: number; id?: string },
  ): Promise<TaskResult> {
    this.requireNode(input.nodeId);
    if (!this.bus) throw coordinatorError('DROVER_ERR_NOT_READY', 'not connected to NATS');
    const { id, ...rest } = input;
    const task: Task = {
      v: PROTOCOL_VERSION,
      type: 'task',
      issuedAt: new Date(this.clock.now()).toISOString(),
      timeoutMs: input.timeoutMs ?? 30_000,
      ...rest,
      id: id ?? randomUUID(),
    } as Task;
    try {
      return await this.bus.sendTask(task.nodeId, task, task.timeoutMs + 2000);
    } catch (err) {
      throw coordinatorError(
        'DROVER_ERR_NODE_UNREACHABLE',
        `task ${task.kind} on ${task.nodeId} got no answer: ${(err as Error).message}`,
        undefined,
        err,
      );
    }
  }

  /** True when every approved, reachable node has applied its desired plan. */
  converged(cluster?: string): boolean {
    for (const [id, d] of this.desired) {
      const rec = this.nodes.get(id);
      if (!rec || !rec.approved) continue;
      if (cluster && this.clusterOf(rec) !== cluster) continue;
      const l = this.nodes.liveness(id);
      if (!l || l.state === 'Unreachable') continue;
      if (l.applied?.checksum !== d.plan.checksum) return false;
    }
    return true;
  }
}

/** Same plan add-ons (fields outside the content checksum, e.g. `purge`)? */
function samePlanAddons(a: Pick<NodePlan, 'purge'>, b: Pick<NodePlan, 'purge'>): boolean {
  return JSON.stringify(a.purge ?? null) === JSON.stringify(b.purge ?? null);
}

/**
 * etcd reads `--initial-cluster` only when a member first starts, so each member keeps the list it
 * joined with: the bootstrap set keeps the bootstrap list (state `new`); a member placed later or
 * moved gets the membership of that moment (state `existing`, after `member add`). Another
 * member's move then changes no peer's flags and restarts none of them, which would risk quorum.
 * Returns true when some member is joining an existing cluster.
 */
export function freezeEtcdMembership(
  current: Assignment[],
  res: { assignments: Assignment[]; moved: Array<{ to: Assignment }> },
  nodes: Map<string, NodeRecord>,
): boolean {
  const etcd = res.assignments
    .filter((a) => a.role === 'etcd' && nodes.has(a.nodeId))
    .sort((a, b) => a.ordinal - b.ordinal);
  if (etcd.length === 0) return false;
  const bootstrap = !current.some((a) => a.role === 'etcd');
  const moved = new Set(res.moved.map((m) => m.to.instanceId));
  const list = etcdInitialCluster(etcd.map((a) => ({ assignment: a, node: nodes.get(a.nodeId)! })));
  let joining = false;
  for (const a of etcd) {
    const x = a as Assignment & EtcdAssignmentExtras;
    if (x.initialCluster !== undefined && !moved.has(a.instanceId)) continue;
    x.initialCluster = list;
    x.existing = !bootstrap;
    if (x.existing) joining = true;
  }
  return joining;
}
