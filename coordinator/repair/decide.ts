/**
 * The repair decision, pure: cluster state, repair memory and now in; evictions and a list of
 * effects out. Nothing here emits, sends, spends or remembers — the reconcile applies the effects
 * (effects.ts), a preview (`drover diff`, `PUT /v1/topology?dryRun=true`) just drops them.
 *
 * The ladder, per assignment:
 * 1. the agent restarts crashed instances locally (agent side);
 * 2. an instance failing for `reprovisionAfterMs` gets a reprovision task (files rewritten, restart);
 * 3. an instance still failing `instanceReassignAfterMs` later, or any instance on a node
 *    Unreachable for `reassignAfterMs` (etcd: `etcdReassignAfterMs`), is reassigned elsewhere —
 *    unless the storm guard, the per-role rate limit, the last-healthy rule or etcd quorum says no.
 * Draining nodes go by the disruption budget (coordinator/drain.ts); operator requests (move,
 * immediate reassign) by the same safety rules.
 */
import { type DrainWait, drainBudget, everywhereRoles } from '../drain.js';
import type { EventInput } from '../events.js';
import type { Assignment, NodeRecord } from '../model.js';
import { stormVerdict } from '../storm-guard.js';
import type { Topology } from '../topology/index.js';
import type { MarkSet, RepairEffect } from './effects.js';
import type { RepairMemoryView } from './memory.js';
import {
  ETCD,
  etcdChangeRefusal,
  instanceHealthy,
  type LivenessView,
  type RepairOptions,
  roleRepairPolicy,
} from './policy.js';

export interface RepairInput {
  cluster: string;
  /** the cluster's assignments now */
  current: readonly Assignment[];
  /** the cluster's placement nodes (effective states) */
  nodes: readonly NodeRecord[];
  topology: Topology | undefined;
  /** a node's liveness: since when it is in its state, its last status report */
  liveness: (nodeId: string) => LivenessView | undefined;
  /**
   * instances whose rollout restart is in flight (still healthy in their last status); asked
   * only while a node drains (it walks the rollout gate's slots)
   */
  restarting?: () => ReadonlySet<string>;
  memory: RepairMemoryView;
  now: number;
  options: Pick<
    RepairOptions,
    | 'reassignAfterMs'
    | 'etcdReassignAfterMs'
    | 'stormThreshold'
    | 'maxReassignPerRolePerMinute'
    | 'reprovisionAfterMs'
    | 'instanceReassignAfterMs'
  >;
}

export interface RepairEvictions {
  evictNodes: Set<string>;
  evictInstances: Set<string>;
  moveTo: Map<string, string>;
  /** run the reconcile again after this long: a grace period or a hold ends */
  wakeAfterMs?: number;
}

export interface RepairDecision {
  evictions: RepairEvictions;
  effects: RepairEffect[];
}

const HOUR = 3_600_000;

/**
 * The decision's scratch view of the memory: reads see the changes decided earlier in the same
 * pass (an announcement made once, a rate budget spent twice), every change is an effect.
 */
class Draft {
  readonly effects: RepairEffect[] = [];
  private readonly marks = new Map<string, boolean>();
  private readonly spent = new Map<string, number[]>();

  constructor(
    readonly memory: RepairMemoryView,
    private readonly now: number,
  ) {}

  has(set: MarkSet, id: string): boolean {
    return this.marks.get(`${set}\0${id}`) ?? this.memory[set].has(id);
  }

  /** Adds `id` to `set`; false when it was there already. */
  add(set: MarkSet, id: string): boolean {
    if (this.has(set, id)) return false;
    this.marks.set(`${set}\0${id}`, true);
    this.effects.push({ type: 'mark', set, op: 'add', id });
    return true;
  }

  delete(set: MarkSet, id: string): void {
    if (!this.has(set, id)) return;
    this.marks.set(`${set}\0${id}`, false);
    this.effects.push({ type: 'mark', set, op: 'delete', id });
  }

  emit(event: EventInput): void {
    this.effects.push({ type: 'event', event });
  }

  push(effect: RepairEffect): void {
    this.effects.push(effect);
  }

  /**
   * Takes one automatic reassignment of `role` from its budget: `perMinute`, and the role's own
   * `repair.maxReassignPerHour` when set. Returns why not, or undefined.
   */
  takeRate(role: string, perMinute: number, perHour?: number): string | undefined {
    const now = this.now;
    const spent = this.spent.get(role) ?? [];
    const list = [...(this.memory.recentMoves.get(role) ?? []).filter((t) => now - t < HOUR), ...spent];
    if (list.filter((t) => now - t < 60_000).length >= perMinute) return `${perMinute}/min for ${role}`;
    if (perHour !== undefined && list.length >= perHour)
      return `${perHour}/hour for ${role}, its repair.maxReassignPerHour`;
    spent.push(now);
    this.spent.set(role, spent);
    this.effects.push({ type: 'rate', role, at: now });
    return undefined;
  }
}

export function decideRepair(input: RepairInput): RepairDecision {
  const { cluster, current, nodes, topology, now, options: opts } = input;
  const d = new Draft(input.memory, now);
  const mem = input.memory;
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const healthy = (a: Assignment) => instanceHealthy(a, byId.get(a.nodeId), input.liveness(a.nodeId));
  const evictNodes = new Set<string>();
  const evictInstances = new Set<string>();
  const moveTo = new Map<string, string>();
  let wake: number | undefined;
  const wakeIn = (ms: number) => {
    wake = wake === undefined ? ms : Math.min(wake, ms);
  };

  // ---- the storm guard: announce a pause or a resume when it turns
  const verdict = stormVerdict(
    nodes.map((n) => n.state),
    opts.stormThreshold,
  );
  const { share, unreachable } = verdict;
  const forced = now < mem.forceUntil;
  const storm = verdict.storm && !forced;
  if (storm !== (mem.paused.get(cluster) === true)) {
    d.push({ type: 'storm', cluster, paused: storm });
    d.emit(
      storm
        ? {
            kind: 'repair.paused',
            severity: 'error',
            cluster,
            message: `automatic reassignment paused: ${unreachable} of ${nodes.length} nodes (${Math.round(share * 100)}%) are Unreachable, above the ${Math.round(opts.stormThreshold * 100)}% storm threshold — probably a partition on the coordinator's side; \`drover repair --force\` overrides`,
            data: { unreachable, nodes: nodes.length },
          }
        : { kind: 'repair.resumed', severity: 'info', cluster, message: 'automatic reassignment resumed' },
    );
  }
  if (storm) wakeIn(5000);

  // ---- announcements, each once
  const reassign = (a: Assignment, result: string, why: string) => {
    d.emit({
      kind: 'repair.reassign',
      severity: 'warning',
      cluster,
      nodeId: a.nodeId,
      role: a.role,
      instanceId: a.instanceId,
      message: `${a.instanceId}: ${why}`,
    });
    d.push({ type: 'count', result });
    evictInstances.add(a.instanceId);
  };
  const holdOnce = (a: Assignment, message: string) => {
    if (!d.add('held', a.instanceId)) return;
    d.emit({
      kind: 'repair.held',
      severity: 'warning',
      nodeId: a.nodeId,
      role: a.role,
      instanceId: a.instanceId,
      message,
    });
  };
  const noteDrainWait = (a: Assignment, message: string) => {
    if (mem.drainWaits.get(a.instanceId) === message) return;
    d.push({ type: 'drain-wait', instanceId: a.instanceId, message });
    d.emit({
      kind: 'repair.held',
      severity: 'info',
      nodeId: a.nodeId,
      role: a.role,
      instanceId: a.instanceId,
      message,
    });
  };
  /** etcd quorum and one member change at a time (policy.ts); a refusal is announced once */
  const etcdGate = (a: Assignment): boolean => {
    const reason = etcdChangeRefusal(current, a, healthy);
    if (reason !== undefined) {
      if (!d.add('refusedEtcd', a.instanceId)) return false;
      d.emit({
        kind: 'etcd.replace-refused',
        severity: 'error',
        cluster,
        role: ETCD,
        instanceId: a.instanceId,
        nodeId: a.nodeId,
        message: `not replacing ${a.instanceId}: ${reason}`,
      });
      return false;
    }
    d.delete('refusedEtcd', a.instanceId);
    return true;
  };

  // ---- the drain budget (coordinator/drain.ts): one instance of a role at a time
  const nodeStates = new Map(nodes.map((n) => [n.id, n.state]));
  const drainWaits = new Map<string, DrainWait>();
  if ([...nodeStates.values()].includes('Draining')) {
    const budget = drainBudget({
      assignments: current,
      healthy: new Set(current.filter(healthy).map((a) => a.instanceId)),
      restarting: input.restarting?.(),
      nodeStates,
      everywhere: everywhereRoles(topology),
    });
    for (const id of budget.leave) if (mem.drainWaits.has(id)) d.push({ type: 'drain-wait', instanceId: id });
    for (const w of budget.wait) drainWaits.set(w.instanceId, w);
  }

  // ---- the ladder, per assignment
  for (const a of current) {
    const node = byId.get(a.nodeId);
    const l = input.liveness(a.nodeId);
    const isEtcd = a.role === ETCD;
    if (!node) continue; // removed nodes: placement drops the assignment by itself
    if (node.state === 'Draining') {
      const w = drainWaits.get(a.instanceId);
      if (w) {
        noteDrainWait(a, `${a.instanceId} stays on draining node ${a.nodeId} for now: ${w.reason}`);
        wakeIn(w.blocked ? 5000 : 500);
        continue;
      }
      if (isEtcd && !etcdGate(a)) {
        wakeIn(5000);
        continue;
      }
      evictInstances.add(a.instanceId);
      continue;
    }
    if (d.has('immediate', a.instanceId)) {
      const gated = isEtcd && !etcdGate(a);
      d.delete('immediate', a.instanceId);
      if (!gated) reassign(a, 'reassign-forced', `reassigning off ${a.nodeId} on an operator's command`);
      continue;
    }
    const policy = roleRepairPolicy(topology?.roles?.[a.role]);
    const decision = `${a.instanceId}@${a.epoch}`;
    if (node.state !== 'Unreachable') d.delete('decided', decision);
    if (node.state === 'Unreachable' && l && !storm && d.has('decided', decision)) {
      // Decided before, but placement found no eligible node yet (the role is Degraded): keep
      // trying on every reconcile without announcing it again or spending the rate budget.
      if (isEtcd && !etcdGate(a)) continue;
      evictInstances.add(a.instanceId);
      continue;
    }
    if (node.state === 'Unreachable' && l && !storm) {
      const after = policy.reassignAfter ?? (isEtcd ? opts.etcdReassignAfterMs : opts.reassignAfterMs);
      const waited = now - l.since;
      if (waited < after) {
        wakeIn(after - waited + 50);
        continue;
      }
      if (policy.autoReassign === false) {
        holdOnce(
          a,
          `${a.instanceId} stays on Unreachable node ${a.nodeId}: automatic reassignment is off for ${a.role} (repair.autoReassign: false); \`drover move\` or \`drover repair ${a.nodeId}\` moves it`,
        );
        continue;
      }
      // the quorum gate before the rate limit: a refused etcd change must not use up the budget
      if (isEtcd && !etcdGate(a)) {
        wakeIn(5000);
        continue;
      }
      const limited = d.takeRate(a.role, opts.maxReassignPerRolePerMinute, policy.maxReassignPerHour);
      if (limited) {
        holdOnce(a, `reassigning ${a.instanceId} is rate-limited (${limited})`);
        wakeIn(10_000);
        continue;
      }
      d.add('decided', decision);
      reassign(
        a,
        'reassign',
        `node ${a.nodeId} Unreachable for ${(waited / 1000).toFixed(0)}s (≥ ${after / 1000}s); reassigning`,
      );
      continue;
    }
    // Instance-level ladder on a live node.
    const t = mem.trouble.get(a.instanceId);
    if (t && !storm) {
      if (t.reprovisionedAt === undefined && now - t.since >= opts.reprovisionAfterMs) {
        d.push({ type: 'trouble', instanceId: a.instanceId, reprovisionedAt: now });
        d.emit({
          kind: 'repair.reprovision',
          severity: 'warning',
          nodeId: a.nodeId,
          role: a.role,
          instanceId: a.instanceId,
          message: `${a.instanceId} keeps failing on ${a.nodeId}; asking the agent to re-provision it (rewrite files, restart)`,
        });
        d.push({ type: 'count', result: 'reprovision' });
        d.push({ type: 'reprovision', nodeId: a.nodeId, instanceId: a.instanceId });
      } else if (t.reprovisionedAt !== undefined && now - t.reprovisionedAt >= opts.instanceReassignAfterMs) {
        // etcd members are never moved for a failing process: that is the member-replacement path
        if (
          !isEtcd &&
          policy.autoReassign !== false &&
          !d.takeRate(a.role, opts.maxReassignPerRolePerMinute, policy.maxReassignPerHour)
        ) {
          reassign(a, 'reassign-instance', `still failing on ${a.nodeId} after a re-provision; reassigning`);
          d.push({ type: 'trouble', instanceId: a.instanceId, clear: true });
        }
      } else wakeIn(5000);
    }
  }

  // ---- operator moves: the last-healthy rule (unless forced) and etcd quorum (always)
  const healthyElsewhere = (a: Assignment) =>
    current.some((o) => o.role === a.role && o.instanceId !== a.instanceId && healthy(o));
  for (const [inst, { to, force }] of mem.moveTo) {
    const a = current.find((x) => x.instanceId === inst);
    if (!a || a.nodeId === to) {
      d.push({ type: 'move-done', instanceId: inst });
      continue;
    }
    const from = byId.get(a.nodeId);
    if (!force && from && from.state !== 'Unreachable' && !healthyElsewhere(a) && healthy(a)) {
      holdOnce(a, `move of ${inst} held: it is the last healthy ${a.role} and its node is live`);
      wakeIn(2000); // look again: the hold ends when another instance is healthy or this one is not
      continue;
    }
    if (a.role === ETCD && !etcdGate(a)) {
      d.push({ type: 'move-done', instanceId: inst });
      continue;
    }
    moveTo.set(inst, to);
  }
  return { evictions: { evictNodes, evictInstances, moveTo, wakeAfterMs: wake }, effects: d.effects };
}
