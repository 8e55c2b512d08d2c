/**
 * The cluster reconcile (`cluster:<name>`): places the topology's roles on the cluster's nodes
 * (with the repair policy's evictions), writes the assignments, and books every node's plan. The
 * topology preview runs the same decision without writing or acting.
 */
import type { Clock } from '../../lib/clock.js';
import type { Logger } from '../../lib/logger.js';
import { nodeTextProblem } from '../../protocol/index.js';
import { type EtcdAssignmentExtras, etcdInitialCluster, isParked } from '../catalog/index.js';
import type { EventLog } from '../events.js';
import { CLUSTER_LABEL } from '../labels.js';
import type { Assignment, NodeRecord, Unplaced } from '../model.js';
import { place } from '../placement/index.js';
import type { ClusterState } from '../state/cluster-state.js';
import type { Store } from '../store/types.js';
import type { Topology } from '../topology/index.js';
import type { ReconcileRun } from '../workqueue.js';
import type { PlanBook } from './plan-book.js';
import type { Evictions, Reconciled, RepairHooks } from './ports.js';

export interface ClusterReconcilePorts {
  state: ClusterState;
  store: Store;
  plans: PlanBook;
  events: EventLog;
  clock: Clock;
  /** this module's logger, for runs the queue did not start (a run logs with the run's logger) */
  log: Logger;
  /** the repair policy; without one only Draining nodes are evicted */
  repair?: RepairHooks;
  /** rewrites a cluster's current assignments before placement (an etcd restore's overlay) */
  overlay?: (cluster: string, current: Assignment[]) => Assignment[];
  /** nodes whose plan stays empty while their removal waits (coordinator/engine/operator.ts) */
  fenced: (nodeId: string) => boolean;
  /** the assignments changed (the push's per-role counts follow) */
  onAssignments: () => void;
}

export interface TopologyPreview {
  added: Assignment[];
  moved: Array<{ from: Assignment; to: Assignment }>;
  removed: Assignment[];
  unplaced: Unplaced[];
  nodesChanged: string[];
}

export class ClusterReconcile {
  private readonly unplaced = new Map<string, Unplaced[]>();
  private readonly lastRun = new Map<string, { at: number; ms: number }>();
  /** nodes left out for an unrenderable address or hostname (`renderableNodes`) */
  private readonly refused = new Set<string>();

  constructor(private readonly p: ClusterReconcilePorts) {}

  unplacedFor(cluster: string): Unplaced[] {
    return this.unplaced.get(cluster) ?? [];
  }

  /**
   * `run`: the work queue's run (its logger is bound to `{ reconcile: id, key }`; the repair
   * policy binds its lines to it too).
   */
  async reconcile(cluster: string, run?: ReconcileRun): Promise<Reconciled> {
    // A cluster reconcile costs O(nodes). During a burst (hundreds of registrations a second) run
    // it at most every `2 × its last duration` (up to 1 s), so the burst costs a bounded share.
    // Cheap reconciles (small clusters) are never paced.
    const { clock } = this.p;
    const now = clock.now();
    const last = this.lastRun.get(cluster);
    if (last && last.ms >= 10) {
      const gap = Math.min(1000, last.ms * 2);
      if (now - last.at < gap) {
        this.debug(
          run,
          { cluster, lastMs: last.ms, waitMs: gap - (now - last.at) },
          'cluster reconcile paced',
        );
        return { requeueAfterMs: gap - (now - last.at) };
      }
    }
    const started = clock.now();
    try {
      return await this.reconcileNow(cluster, run);
    } finally {
      this.lastRun.set(cluster, { at: clock.now(), ms: clock.now() - started });
    }
  }

  /** What applying `t` would change, computed without writing anything. */
  preview(t: Topology): TopologyPreview {
    const { state, plans } = this.p;
    const cluster = t.metadata.name;
    const current = state.currentAssignments(cluster);
    const nodes = state.placementNodes(cluster).filter((n) => !nodeTextProblem(n));
    const res = place({
      topology: t,
      nodes,
      current,
      ...this.evictionsFor(cluster, current, true),
      elsewhere: (pin) => state.pinElsewhere(cluster, pin),
    });
    // With the render cache: what the preview renders, the reconcile that applies it reuses.
    const rendered = plans.render(cluster, t, res.assignments, new Map(nodes.map((n) => [n.id, n])));
    const nodesChanged: string[] = [];
    for (const n of nodes) {
      if (!n.approved) continue;
      const plan = plans.sealFor(n.id, rendered.get(n.id) ?? [], 0);
      if (plan.checksum !== plans.plan(n.id)?.checksum) nodesChanged.push(n.id);
    }
    return {
      added: res.added,
      moved: res.moved,
      removed: res.removed,
      unplaced: res.unplaced,
      nodesChanged: nodesChanged.sort(),
    };
  }

  /**
   * A debug line with the run's logger (`{ reconcile: id, key }`); a run's child logger is made
   * only when debug lines are wanted, so a cluster reconcile at info level costs none.
   */
  private debug(run: ReconcileRun | undefined, obj: Record<string, unknown>, msg: string): void {
    if (!this.p.log.isLevelEnabled('debug')) return;
    (run?.log ?? this.p.log).debug(obj, msg);
  }

  private async reconcileNow(cluster: string, run?: ReconcileRun): Promise<Reconciled> {
    const { state, plans, events, repair } = this.p;
    const entry = state.topologyEntry(cluster);
    // an etcd restore's epochs, seed and parked members (coordinator/etcd/restore.ts), if one runs
    const current = this.p.overlay
      ? this.p.overlay(cluster, state.currentAssignments(cluster))
      : state.currentAssignments(cluster);
    const nodes = this.renderableNodes(cluster);
    let assignments: Assignment[] = [];
    let requeueAfterMs: number | undefined;
    let summary: Record<string, number> = {};
    if (entry) {
      const ev = this.evictionsFor(cluster, current, false, run);
      const res = place({
        topology: entry.topology,
        nodes,
        current,
        ...ev,
        elsewhere: (pin) => state.pinElsewhere(cluster, pin),
        now: new Date(this.p.clock.now()).toISOString(),
      });
      assignments = res.assignments;
      freezeEtcdMembership(current, res, new Map(nodes.map((n) => [n.id, n])), plans.etcdTls(cluster));
      await this.writeAssignments(cluster, res.assignments, current);
      for (const a of res.added)
        events.emit({
          kind: 'role.placed',
          severity: 'info',
          cluster,
          nodeId: a.nodeId,
          role: a.role,
          instanceId: a.instanceId,
          message: `${a.instanceId} placed on ${a.nodeId}`,
        });
      for (const m of res.moved)
        events.emit({
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
        events.emit({
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
        repair?.cancelMove?.(r.instanceId);
        events.emit({
          kind: 'role.move-refused',
          severity: 'warning',
          cluster,
          instanceId: r.instanceId,
          nodeId: r.nodeId,
          message: `move dropped: ${r.reason}`,
        });
      }
      const retry = await repair?.afterPlacement?.(cluster, res.moved, run);
      summary = {
        evicted: ev.evictInstances.size,
        added: res.added.length,
        moved: res.moved.length,
        removed: res.removed.length,
        unplaced: res.unplaced.length,
      };
      // Evictions that wait on a timer (reassignAfter) need a wake-up even if nothing else changes.
      for (const ms of [ev.wakeAfterMs, retry])
        if (ms !== undefined) requeueAfterMs = Math.min(requeueAfterMs ?? ms, ms);
    } else {
      await this.writeAssignments(cluster, [], current);
      plans.dropRenderCache(cluster);
      this.noteOrphans(cluster, nodes);
    }
    this.p.onAssignments();
    const rendered = entry
      ? plans.render(cluster, entry.topology, assignments, new Map(nodes.map((n) => [n.id, n])))
      : new Map();
    // Sealing and signing thousands of changed plans takes a while: yield now and then so the
    // pushes of the plans already sealed go out meanwhile (and heartbeats are not held up).
    let sealed = 0;
    for (const n of nodes) {
      if (!n.approved || n.state === 'Removed' || !state.nodes.get(n.id)) continue; // removed while we yielded
      const instances = this.p.fenced(n.id) ? [] : (rendered.get(n.id) ?? []);
      if (plans.setDesired(n.id, instances) && ++sealed % 250 === 0)
        await new Promise((r) => setImmediate(r));
    }
    // a node whose record cannot be rendered is placed nowhere and runs nothing
    for (const id of this.refused) if (state.nodes.get(id)?.approved) plans.setDesired(id, []);
    this.debug(
      run,
      { cluster, topology: entry !== undefined, ...summary, requeueAfterMs },
      'cluster reconciled',
    );
    return requeueAfterMs === undefined ? undefined : { requeueAfterMs };
  }

  private evictionsFor(
    cluster: string,
    current: Assignment[],
    dryRun = false,
    run?: ReconcileRun,
  ): Evictions & { wakeAfterMs?: number } {
    const { repair } = this.p;
    if (repair && dryRun && repair.previewEvictions) return repair.previewEvictions(cluster, current);
    if (repair) return repair.evictions(cluster, current, run);
    const evictNodes = new Set(
      this.p.state.nodes
        .all()
        .filter((n) => n.state === 'Draining')
        .map((n) => n.id),
    );
    return { evictNodes, evictInstances: new Set(), moveTo: new Map() };
  }

  private async writeAssignments(cluster: string, next: Assignment[], current: Assignment[]): Promise<void> {
    const { state, store } = this.p;
    const nextIds = new Set(next.map((a) => a.instanceId));
    const key = (id: string) => `assignments/${cluster}/${id}`;
    let changed = false;
    for (const a of next) {
      const cur = state.assignmentEntry(cluster, a.instanceId);
      if (cur && JSON.stringify(cur.value) === JSON.stringify(a)) continue;
      changed = true;
      const revision =
        cur?.revision !== undefined
          ? await store.update(key(a.instanceId), a, cur.revision)
          : await store.put(key(a.instanceId), a);
      state.apply({ kind: 'assignment', cluster, instanceId: a.instanceId, value: a, revision });
    }
    for (const a of current) {
      if (nextIds.has(a.instanceId)) continue;
      changed = true;
      await store.delete(key(a.instanceId));
      state.apply({ kind: 'assignment', cluster, instanceId: a.instanceId });
    }
    // Write-ahead: nothing acts on a new assignment (its plan, an etcd member add) before it is
    // durable, or a crash in between would hand out the same epoch again after the restart.
    if (changed) await store.flush();
  }

  private noteUnplaced(cluster: string, list: Unplaced[]): void {
    const before = new Map((this.unplaced.get(cluster) ?? []).map((u) => [u.instanceId, u.reason]));
    for (const u of list) {
      if (before.get(u.instanceId) !== u.reason)
        this.p.events.emit({
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

  /**
   * The cluster's nodes that placement and rendering may use: those whose reported address and
   * hostname can be written into config. Intake refuses bad ones, so only a record stored before
   * that check is left out; it gets an empty plan and one `node.input-refused` event (again only
   * after it was fixed and broke anew).
   */
  private renderableNodes(cluster: string): NodeRecord[] {
    const out: NodeRecord[] = [];
    for (const n of this.p.state.placementNodes(cluster)) {
      const bad = nodeTextProblem(n);
      if (!bad) {
        this.refused.delete(n.id);
        out.push(n);
        continue;
      }
      if (this.refused.has(n.id)) continue;
      this.refused.add(n.id);
      this.p.events.emit({
        kind: 'node.input-refused',
        severity: 'error',
        cluster,
        nodeId: n.id,
        message: `${bad.message}: the node is placed nowhere and its plan is empty until it registers with valid values`,
        data: { field: bad.field },
      });
    }
    return out;
  }

  /**
   * Nodes of a cluster that has no topology get empty plans: their agents stop every instance.
   * Say so with a `node.orphaned` event for each node that runs (or was told to run) something.
   */
  private noteOrphans(cluster: string, nodes: NodeRecord[]): void {
    for (const n of nodes) {
      const d = this.p.plans.get(n.id);
      // once its plan is empty the node was told; before any plan (a coordinator restart) go by its status
      const ids = (
        d
          ? d.plan.instances.map((i) => i.id)
          : (this.p.state.nodes.liveness(n.id)?.status?.instances.map((i) => i.id) ?? [])
      ).sort();
      if (ids.length === 0) continue;
      this.p.events.emit({
        kind: 'node.orphaned',
        severity: 'warning',
        cluster,
        nodeId: n.id,
        message: `node ${n.id} is in cluster ${cluster}, which has no topology: its plan is now empty and its agent stops ${ids.join(', ')}; apply a topology named ${cluster}, or move the node with \`drover label ${n.id} ${CLUSTER_LABEL}=NAME\``,
        data: { instances: ids },
      });
    }
  }
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
  res: { assignments: Assignment[]; moved: Array<{ from?: Assignment; to: Assignment }> },
  nodes: Map<string, NodeRecord>,
  tls = false,
): boolean {
  // a member moved while a restore parks it stays parked: the restore lets it in at its turn
  for (const m of res.moved)
    if (m.to.role === 'etcd' && m.from && isParked(m.from))
      Object.assign(m.to as Assignment & EtcdAssignmentExtras, { parked: true, existing: true });
  const etcd = res.assignments
    .filter((a) => a.role === 'etcd' && nodes.has(a.nodeId) && !isParked(a))
    .sort((a, b) => a.ordinal - b.ordinal);
  if (etcd.length === 0) return false;
  const bootstrap = !current.some((a) => a.role === 'etcd');
  const moved = new Set(res.moved.map((m) => m.to.instanceId));
  const list = etcdInitialCluster(
    etcd.map((a) => ({ assignment: a, node: nodes.get(a.nodeId)! })),
    tls,
  );
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
