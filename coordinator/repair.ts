import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { InstanceStatus, NodeStatus } from '../protocol/index.js';
import { type DrainDecision, type DrainWait, drainBudget, everywhereRoles } from './drain.js';
import type { Engine, Evictions, RepairHooks } from './engine.js';
import { coordinatorError } from './errors.js';
import { EtcdAdmin, replacementKeepsQuorum } from './etcd.js';
import { type Assignment, isHealthy, type NodeRecord } from './model.js';
import type { RepairOptions } from './options.js';
import { stormVerdict } from './storm-guard.js';

export type { RepairOptions } from './options.js';
export { DEFAULT_REPAIR_OPTIONS } from './options.js';

const ETCD = 'etcd';

interface InstanceTrouble {
  since: number;
  reprovisionedAt?: number;
}

/**
 * The repair ladder, as a policy the engine consults on every cluster reconcile:
 * 1. the agent restarts crashed instances locally (agent side);
 * 2. an instance failing for `reprovisionAfterMs` gets a reprovision task (files rewritten, restart);
 * 3. an instance still failing `instanceReassignAfterMs` later, or any instance on a node
 *    Unreachable for `reassignAfterMs` (etcd: `etcdReassignAfterMs`), is reassigned elsewhere —
 *    unless the storm guard, the per-role rate limit, the last-healthy rule or etcd quorum says no.
 */
export class RepairPolicy implements RepairHooks {
  private forceUntil = 0;
  private readonly paused = new Map<string, boolean>();
  private readonly recentMoves = new Map<string, number[]>();
  private readonly trouble = new Map<string, InstanceTrouble>();
  private readonly held = new Set<string>();
  private readonly moveTo = new Map<string, { to: string; force: boolean }>();
  /** operator-requested evictions that skip the reassignAfter wait (quorum still applies) */
  private readonly immediate = new Set<string>();
  /** `instance@epoch` reassignments decided (announced, rate-counted) that have not moved yet */
  private readonly decided = new Set<string>();
  private readonly refusedEtcd = new Set<string>();
  private etcdBusy = false;
  private readonly etcdConfirmed = new Set<string>();
  /** the last drain-wait message announced per instance */
  private readonly drainWaits = new Map<string, string>();

  constructor(
    private readonly engine: Engine,
    private readonly opts: RepairOptions,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly onRepair?: (result: string) => void,
  ) {
    engine.repair = this;
    engine.repairObserver = (st) => this.observe(st);
  }

  /** Operator override: ignore the storm guard for the next `ms`. */
  force(ms = 120_000): void {
    this.forceUntil = this.clock.now() + ms;
    this.engine.events.emit({
      kind: 'repair.forced',
      severity: 'warning',
      message: `storm guard overridden by an operator for ${Math.round(ms / 1000)}s`,
    });
    for (const c of this.engine.clusterNames()) this.engine.queue.add(`cluster:${c}`);
  }

  /**
   * Whether the storm guard holds automatic moves in `cluster` right now (computed from the
   * current node states, not from the last reconcile); the VirtualCluster placement asks this.
   */
  stormActive(cluster: string): boolean {
    if (this.clock.now() < this.forceUntil) return false;
    return stormVerdict(
      this.engine.placementNodes(cluster).map((n) => n.state),
      this.opts.stormThreshold,
    ).storm;
  }

  isPaused(cluster: string): boolean {
    return this.paused.get(cluster) === true;
  }

  /**
   * Queues an operator move, checked on the next reconcile against the same safety rules; `force`
   * skips the last-healthy rule (etcd quorum is never skipped).
   */
  requestMove(instanceId: string, toNode: string, force = false): void {
    this.moveTo.set(instanceId, { to: toNode, force });
  }

  /**
   * `evictions` for a dry run (`drover diff`, `PUT /v1/topology?dryRun=true`): the same decisions,
   * made on copies of this policy's state with its effects muted — no event, no task, no rate
   * budget spent, no operator request used up — so the preview is what the next reconcile does.
   */
  previewEvictions(cluster: string, current: Assignment[]): Evictions & { wakeAfterMs?: number } {
    const muted = new Proxy(this.engine, {
      get: (target, key) => {
        if (key === 'events') return { emit: () => {} };
        if (key === 'runTask') return async () => ({ ok: true });
        return Reflect.get(target, key);
      },
    });
    const dry = Object.create(this) as RepairPolicy;
    Object.assign(dry, {
      engine: muted,
      onRepair: undefined,
      paused: new Map(this.paused),
      recentMoves: new Map([...this.recentMoves].map(([k, v]) => [k, [...v]])),
      trouble: new Map([...this.trouble].map(([k, v]) => [k, { ...v }])),
      held: new Set(this.held),
      moveTo: new Map(this.moveTo),
      immediate: new Set(this.immediate),
      decided: new Set(this.decided),
      refusedEtcd: new Set(this.refusedEtcd),
      etcdConfirmed: new Set(this.etcdConfirmed),
    });
    return dry.evictions(cluster, current);
  }

  cancelMove(instanceId: string): void {
    this.moveTo.delete(instanceId);
  }

  /** Operator command: reassign this instance now, without waiting for `reassignAfter`. */
  requestReassign(instanceId: string): void {
    this.immediate.add(instanceId);
  }

  evictions(cluster: string, current: Assignment[]): Evictions & { wakeAfterMs?: number } {
    const now = this.clock.now();
    const nodes = this.engine.placementNodes(cluster);
    const byId = new Map(nodes.map((n) => [n.id, n]));
    const evictNodes = new Set<string>();
    const evictInstances = new Set<string>();
    const moveTo = new Map<string, string>();
    let wake: number | undefined;
    const wakeIn = (ms: number) => {
      wake = wake === undefined ? ms : Math.min(wake, ms);
    };
    const verdict = stormVerdict(
      nodes.map((n) => n.state),
      this.opts.stormThreshold,
    );
    const { share, unreachable } = verdict;
    const forced = now < this.forceUntil;
    const storm = verdict.storm && !forced;
    if (storm !== this.isPaused(cluster)) {
      this.paused.set(cluster, storm);
      this.engine.events.emit(
        storm
          ? {
              kind: 'repair.paused',
              severity: 'error',
              cluster,
              message: `automatic reassignment paused: ${unreachable} of ${nodes.length} nodes (${Math.round(share * 100)}%) are Unreachable, above the ${Math.round(this.opts.stormThreshold * 100)}% storm threshold — probably a partition on the coordinator's side; \`drover repair --force\` overrides`,
              data: { unreachable, nodes: nodes.length },
            }
          : { kind: 'repair.resumed', severity: 'info', cluster, message: 'automatic reassignment resumed' },
      );
    }
    if (storm && forced === false) wakeIn(5000);
    const topology = this.engine.topology(cluster);
    const healthyElsewhere = (a: Assignment) =>
      current.some(
        (o) =>
          o.role === a.role && o.instanceId !== a.instanceId && this.instanceHealthy(o, byId.get(o.nodeId)),
      );

    const drain = this.drainDecision(current, byId, topology);
    for (const a of current) {
      const node = byId.get(a.nodeId);
      const l = this.engine.nodes.liveness(a.nodeId);
      const isEtcd = a.role === ETCD;
      if (!node) continue; // removed nodes: placement drops the assignment by itself
      if (node.state === 'Draining') {
        // the disruption budget (coordinator/drain.ts): one instance of a role at a time
        const w = drain.waits.get(a.instanceId);
        if (w) {
          this.noteDrainWait(a, `${a.instanceId} stays on draining node ${a.nodeId} for now: ${w.reason}`);
          wakeIn(w.blocked ? 5000 : 500);
          continue;
        }
        if (isEtcd && !this.etcdGate(cluster, a, current, byId)) {
          wakeIn(5000);
          continue;
        }
        evictInstances.add(a.instanceId);
        continue;
      }
      if (this.immediate.has(a.instanceId)) {
        if (isEtcd && !this.etcdGate(cluster, a, current, byId)) {
          this.immediate.delete(a.instanceId);
          continue;
        }
        this.immediate.delete(a.instanceId);
        this.reassign(
          cluster,
          a,
          'reassign-forced',
          `reassigning off ${a.nodeId} on an operator's command`,
          evictInstances,
        );
        continue;
      }
      const policy = roleRepairPolicy(topology?.roles?.[a.role]);
      const decision = `${a.instanceId}@${a.epoch}`;
      if (node.state !== 'Unreachable') this.decided.delete(decision);
      if (node.state === 'Unreachable' && l && !storm && this.decided.has(decision)) {
        // Decided before, but placement found no eligible node yet (the role is Degraded): keep
        // trying on every reconcile without announcing it again or spending the rate budget.
        if (isEtcd && !this.etcdGate(cluster, a, current, byId)) continue;
        evictInstances.add(a.instanceId);
        continue;
      }
      if (node.state === 'Unreachable' && l && !storm) {
        const after =
          policy.reassignAfter ?? (isEtcd ? this.opts.etcdReassignAfterMs : this.opts.reassignAfterMs);
        const waited = now - l.since;
        if (waited < after) {
          wakeIn(after - waited + 50);
          continue;
        }
        if (policy.autoReassign === false) {
          this.holdOnce(
            a,
            `${a.instanceId} stays on Unreachable node ${a.nodeId}: automatic reassignment is off for ${a.role} (repair.autoReassign: false); \`drover move\` or \`drover repair ${a.nodeId}\` moves it`,
          );
          continue;
        }
        // the quorum gate before the rate limit: a refused etcd change must not use up the budget
        if (isEtcd && !this.etcdGate(cluster, a, current, byId)) {
          wakeIn(5000);
          continue;
        }
        const limited = this.takeRate(a.role, now, policy.maxReassignPerHour);
        if (limited) {
          this.holdOnce(a, `reassigning ${a.instanceId} is rate-limited (${limited})`);
          wakeIn(10_000);
          continue;
        }
        this.decided.add(decision);
        this.reassign(
          cluster,
          a,
          'reassign',
          `node ${a.nodeId} Unreachable for ${(waited / 1000).toFixed(0)}s (≥ ${after / 1000}s); reassigning`,
          evictInstances,
        );
        continue;
      }
      // Instance-level ladder on a live node.
      const t = this.trouble.get(a.instanceId);
      if (t && !storm) {
        if (t.reprovisionedAt === undefined && now - t.since >= this.opts.reprovisionAfterMs) {
          t.reprovisionedAt = now;
          this.reprovision(a);
        } else if (
          t.reprovisionedAt !== undefined &&
          now - t.reprovisionedAt >= this.opts.instanceReassignAfterMs
        ) {
          // etcd members are never moved for a failing process: that is the member-replacement path
          if (
            !isEtcd &&
            policy.autoReassign !== false &&
            !this.takeRate(a.role, now, policy.maxReassignPerHour)
          ) {
            this.reassign(
              cluster,
              a,
              'reassign-instance',
              `still failing on ${a.nodeId} after a re-provision; reassigning`,
              evictInstances,
            );
            this.trouble.delete(a.instanceId);
          }
        } else wakeIn(5000);
      }
    }
    for (const [inst, { to, force }] of this.moveTo) {
      const a = current.find((x) => x.instanceId === inst);
      if (!a) {
        this.moveTo.delete(inst);
        continue;
      }
      if (a.nodeId === to) {
        this.moveTo.delete(inst);
        continue;
      }
      const from = byId.get(a.nodeId);
      if (
        !force &&
        from &&
        from.state !== 'Unreachable' &&
        !healthyElsewhere(a) &&
        this.instanceHealthy(a, from)
      ) {
        this.holdOnce(a, `move of ${inst} held: it is the last healthy ${a.role} and its node is live`);
        wakeIn(2000); // look again: the hold ends when another instance is healthy or this one is not
        continue;
      }
      if (a.role === ETCD && !this.etcdGate(cluster, a, current, byId)) {
        this.moveTo.delete(inst);
        continue;
      }
      moveTo.set(inst, to);
    }
    return { evictNodes, evictInstances, moveTo, wakeAfterMs: wake };
  }

  /**
   * After placement wrote assignments: forget finished operator moves, and while an etcd member is
   * joining an existing cluster (moved or added late), make the membership match — before its plan
   * is pushed, so the new member finds itself in the member list. Returns a retry delay while a
   * membership change is still outstanding.
   */
  async afterPlacement(
    cluster: string,
    moved: Array<{ from: Assignment; to: Assignment }>,
  ): Promise<number | undefined> {
    for (const m of moved) {
      this.moveTo.delete(m.to.instanceId);
      this.held.delete(m.to.instanceId);
      this.decided.delete(`${m.from.instanceId}@${m.from.epoch}`);
    }
    const key = (a: Assignment) => `${a.instanceId}@${a.epoch}@${a.nodeId}`;
    const joiners = this.engine
      .currentAssignments(cluster)
      .filter(
        (a) =>
          a.role === ETCD &&
          (a as { existing?: boolean }).existing === true &&
          !this.etcdConfirmed.has(key(a)),
      );
    if (joiners.length === 0) return undefined;
    try {
      const done = await this.reconcileEtcdMembership(cluster);
      if (done) for (const a of joiners) this.etcdConfirmed.add(key(a));
      return done ? undefined : 1000;
    } catch (err) {
      this.log.warn({ err, cluster }, 'etcd membership change failed; will retry');
      return 5000;
    }
  }

  /**
   * Level-triggered etcd membership: makes the member list match the etcd assignments, one change
   * at a time, through the members that still answer. Safe to re-run after a coordinator crash
   * in the middle: a member already removed or already added is simply not touched again.
   */
  async reconcileEtcdMembership(cluster: string): Promise<boolean> {
    if (this.etcdBusy) return false;
    this.etcdBusy = true;
    try {
      const etcdA = this.engine.currentAssignments(cluster).filter((a) => a.role === ETCD);
      const nodes = new Map(this.engine.placementNodes(cluster).map((n) => [n.id, n]));
      const want = new Map<string, Assignment>();
      for (const a of etcdA) {
        const n = nodes.get(a.nodeId);
        if (n) want.set(this.peerUrl(n), a);
      }
      const clientUrls = etcdA
        .map((a) => nodes.get(a.nodeId))
        .filter((n): n is NodeRecord => !!n && n.state !== 'Unreachable')
        .map((n) => this.clientUrl(n));
      const admin = new EtcdAdmin(clientUrls, this.opts.etcdTls);
      const members = await admin.memberList();
      const healthy = await admin.healthyEndpoints(
        members.flatMap((m) => m.clientURLs).filter((u) => clientUrls.includes(u)),
      );
      const stale = members.filter((m) => !m.peerURLs.some((u) => want.has(u)));
      // Only a joining member (moved or placed after the bootstrap) is added. A bootstrap member
      // missing from the list was removed (e.g. by a coordinator that crashed before its move was
      // durable): its old data holds a removed member id and it can never rejoin, so re-adding its
      // URL would only put a dead voter in the cluster. It is replaced when its node is repaired.
      // Nor is a member added for a node that is Unreachable: it could not start.
      const missing = [...want.keys()].filter((u) => {
        if (members.some((m) => m.peerURLs.includes(u))) return false;
        const a = want.get(u)!;
        if ((a as { existing?: boolean }).existing === true && nodes.get(a.nodeId)?.state !== 'Unreachable')
          return true;
        this.log.warn(
          { cluster, instanceId: a.instanceId, nodeId: a.nodeId, peerUrl: u },
          'etcd member is not in the member list and cannot rejoin as it is; not adding it back (it is replaced when its node is repaired)',
        );
        return false;
      });
      if (stale.length === 0 && missing.length === 0) return true;
      const q = replacementKeepsQuorum(members.length, healthy.length);
      if (!q.ok) {
        this.engine.events.emit({
          kind: 'etcd.replace-refused',
          severity: 'error',
          cluster,
          role: ETCD,
          message: `etcd membership change refused: ${q.reason}`,
        });
        this.onRepair?.('etcd-refused');
        throw coordinatorError('DROVER_ERR_ETCD_QUORUM', q.reason ?? 'quorum');
      }
      const s = stale[0];
      if (s) {
        await admin.memberRemove(s.id, healthy);
        this.engine.events.emit({
          kind: 'etcd.member-removed',
          severity: 'warning',
          cluster,
          role: ETCD,
          message: `etcd member ${s.name || s.id} (${s.peerURLs.join(',')}) removed through the surviving members`,
        });
      }
      const add = missing[0];
      if (add) {
        await admin.memberAdd([add], healthy);
        const a = want.get(add)!;
        this.engine.events.emit({
          kind: 'etcd.member-added',
          severity: 'info',
          cluster,
          role: ETCD,
          instanceId: a.instanceId,
          nodeId: a.nodeId,
          message: `etcd member for ${a.instanceId} added at ${add}; it starts with initial-cluster-state=existing`,
        });
        this.onRepair?.('etcd-replaced');
      }
      return stale.length <= 1 && missing.length <= 1;
    } finally {
      this.etcdBusy = false;
    }
  }

  // ------------------------------------------------------------------ internals

  /** The drain budget over this cluster's assignments (coordinator/drain.ts). */
  private drainDecision(
    current: Assignment[],
    byId: Map<string, NodeRecord>,
    topology: ReturnType<Engine['topology']>,
  ): DrainDecision & { waits: Map<string, DrainWait> } {
    const nodeStates = new Map([...byId.values()].map((n) => [n.id, n.state]));
    if (![...nodeStates.values()].includes('Draining')) return { leave: [], wait: [], waits: new Map() };
    const d = drainBudget({
      assignments: current,
      healthy: new Set(
        current.filter((a) => this.instanceHealthy(a, byId.get(a.nodeId))).map((a) => a.instanceId),
      ),
      nodeStates,
      everywhere: everywhereRoles(topology),
    });
    for (const id of d.leave) this.drainWaits.delete(id);
    return { ...d, waits: new Map(d.wait.map((w) => [w.instanceId, w])) };
  }

  /** A `repair.held` event when an instance's drain wait starts or its reason changes. */
  private noteDrainWait(a: Assignment, message: string): void {
    if (this.drainWaits.get(a.instanceId) === message) return;
    this.drainWaits.set(a.instanceId, message);
    this.engine.events.emit({
      kind: 'repair.held',
      severity: 'info',
      nodeId: a.nodeId,
      role: a.role,
      instanceId: a.instanceId,
      message,
    });
  }

  private reassign(cluster: string, a: Assignment, result: string, why: string, evict: Set<string>): void {
    this.engine.events.emit({
      kind: 'repair.reassign',
      severity: 'warning',
      cluster,
      nodeId: a.nodeId,
      role: a.role,
      instanceId: a.instanceId,
      message: `${a.instanceId}: ${why}`,
    });
    this.onRepair?.(result);
    evict.add(a.instanceId);
  }

  private etcdGate(
    cluster: string,
    a: Assignment,
    current: Assignment[],
    byId: Map<string, NodeRecord>,
  ): boolean {
    const etcd = current.filter((x) => x.role === ETCD);
    if (
      etcd.some(
        (x) =>
          x.previousNodeId !== undefined &&
          x.instanceId !== a.instanceId &&
          !this.instanceHealthy(x, byId.get(x.nodeId)),
      )
    ) {
      this.refuseEtcdOnce(cluster, a, 'another etcd member change is still in flight; one change at a time');
      return false;
    }
    const healthy = etcd.filter(
      (x) => x.instanceId !== a.instanceId && this.instanceHealthy(x, byId.get(x.nodeId)),
    ).length;
    const q = replacementKeepsQuorum(etcd.length, healthy);
    if (!q.ok) {
      this.refuseEtcdOnce(cluster, a, q.reason!);
      return false;
    }
    this.refusedEtcd.delete(a.instanceId);
    return true;
  }

  /** RepairHooks.removeRefusal: the replacement rule, for each etcd member the node holds. */
  removeRefusal(cluster: string, nodeId: string): string | undefined {
    const current = this.engine.currentAssignments(cluster);
    const etcd = current.filter((x) => x.role === ETCD);
    const byId = new Map(this.engine.placementNodes(cluster).map((n) => [n.id, n]));
    for (const a of etcd.filter((x) => x.nodeId === nodeId)) {
      const healthy = etcd.filter(
        (x) => x.instanceId !== a.instanceId && this.instanceHealthy(x, byId.get(x.nodeId)),
      ).length;
      const q = replacementKeepsQuorum(etcd.length, healthy);
      if (!q.ok) return `${a.instanceId} is an etcd member: ${q.reason}`;
    }
    return undefined;
  }

  private refuseEtcdOnce(cluster: string, a: Assignment, reason: string): void {
    if (this.refusedEtcd.has(a.instanceId)) return;
    this.refusedEtcd.add(a.instanceId);
    this.engine.events.emit({
      kind: 'etcd.replace-refused',
      severity: 'error',
      cluster,
      role: ETCD,
      instanceId: a.instanceId,
      nodeId: a.nodeId,
      message: `not replacing ${a.instanceId}: ${reason}`,
    });
  }

  /**
   * Takes one automatic reassignment of `role` from its budget: `maxReassignPerRolePerMinute`,
   * and the role's own `repair.maxReassignPerHour` when set. Returns why not, or undefined.
   */
  private takeRate(role: string, now: number, perHour?: number): string | undefined {
    const list = (this.recentMoves.get(role) ?? []).filter((t) => now - t < 3_600_000);
    this.recentMoves.set(role, list);
    const perMinute = this.opts.maxReassignPerRolePerMinute;
    if (list.filter((t) => now - t < 60_000).length >= perMinute) return `${perMinute}/min for ${role}`;
    if (perHour !== undefined && list.length >= perHour)
      return `${perHour}/hour for ${role}, its repair.maxReassignPerHour`;
    list.push(now);
    return undefined;
  }

  private holdOnce(a: Assignment, message: string): void {
    if (this.held.has(a.instanceId)) return;
    this.held.add(a.instanceId);
    this.engine.events.emit({
      kind: 'repair.held',
      severity: 'warning',
      nodeId: a.nodeId,
      role: a.role,
      instanceId: a.instanceId,
      message,
    });
  }

  private instanceStatus(a: Assignment): InstanceStatus | undefined {
    return this.engine.nodes.liveness(a.nodeId)?.status?.instances.find((i) => i.id === a.instanceId);
  }

  instanceHealthy(a: Assignment, node: NodeRecord | undefined): boolean {
    if (!node || node.state === 'Unreachable' || node.state === 'Suspect') return false;
    const s = this.instanceStatus(a);
    return !!s && isHealthy(s) && s.epoch === a.epoch;
  }

  private observe(st: NodeStatus): void {
    const now = this.clock.now();
    for (const i of st.instances) {
      const bad = i.phase === 'CrashLoop' || i.phase === 'Failed';
      const t = this.trouble.get(i.id);
      if (bad && !t) this.trouble.set(i.id, { since: now });
      if (!bad && t) this.trouble.delete(i.id);
      if (isHealthy(i)) this.held.delete(i.id);
    }
  }

  private reprovision(a: Assignment): void {
    this.engine.events.emit({
      kind: 'repair.reprovision',
      severity: 'warning',
      nodeId: a.nodeId,
      role: a.role,
      instanceId: a.instanceId,
      message: `${a.instanceId} keeps failing on ${a.nodeId}; asking the agent to re-provision it (rewrite files, restart)`,
    });
    this.onRepair?.('reprovision');
    void this.engine
      .runTask({ nodeId: a.nodeId, kind: 'reprovision', instanceId: a.instanceId })
      .catch((err) => this.log.warn({ err, instanceId: a.instanceId }, 'reprovision task failed'));
  }

  private peerUrl(n: NodeRecord): string {
    return `http://${n.address}:${this.opts.etcdPeerPort ?? 2380}`;
  }

  private clientUrl(n: NodeRecord): string {
    return `http://${n.address}:${this.opts.etcdClientPort ?? 2379}`;
  }
}

/** A role's `repair` overrides from the topology (durations already in ms). */
export function roleRepairPolicy(spec: unknown): {
  reassignAfter?: number;
  maxReassignPerHour?: number;
  autoReassign?: boolean;
} {
  const v = (spec as { repair?: Record<string, unknown> } | undefined)?.repair ?? {};
  const num = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x : undefined);
  return {
    reassignAfter: num(v.reassignAfterMs) ?? num(v.reassignAfter),
    maxReassignPerHour: num(v.maxReassignPerHour),
    autoReassign: typeof v.autoReassign === 'boolean' ? v.autoReassign : undefined,
  };
}
