import type { InstanceStatus } from '../../protocol/index.js';
import type {
  InstanceView,
  NodeDetail,
  NodeView,
  RoleView,
  StatusView,
} from '../../protocol/rest/schemas.js';
import type { Engine } from '../engine.js';
import { type Assignment, isHealthy, type NodeRecord } from '../model.js';
import { unplacedReasons } from '../placement/index.js';

/**
 * Read models for the API: node records + liveness + assignments + agent status joined into what
 * operators want to see. Pure functions of the engine's current state.
 */

export type ViewEngine = Pick<
  Engine,
  | 'nodes'
  | 'events'
  | 'epoch'
  | 'clusterOf'
  | 'clusterNames'
  | 'currentAssignments'
  | 'allAssignments'
  | 'unplacedFor'
  | 'desiredPlan'
  | 'converged'
  | 'topology'
  | 'listTopologies'
>;

/**
 * Healthy as `isHealthy` (coordinator/model.ts) says. A phase from an unreachable node is not
 * trusted (see toView).
 */
export { isHealthy };

function toView(a: Assignment | undefined, s: InstanceStatus | undefined, trusted: boolean): InstanceView {
  const v: InstanceView = {
    id: (a?.instanceId ?? s?.id)!,
    role: (a?.role ?? s?.role)!,
    nodeId: a?.nodeId,
    epoch: a?.epoch ?? s?.epoch ?? 0,
    assigned: !!a,
    phase: s && trusted ? s.phase : 'Unknown',
    health: s && trusted ? s.health : 'unknown',
    restarts: s?.restarts ?? 0,
    simulated: s?.simulated ?? false,
  };
  if (s?.simulator) v.simulator = s.simulator;
  if (s?.lastError) v.lastError = s.lastError;
  if (s?.lastOutput) v.lastOutput = s.lastOutput;
  if (s?.lastExitCode !== undefined) v.lastExitCode = s.lastExitCode;
  if (s?.startedAt && trusted) v.startedAt = s.startedAt;
  // An instance reported under an older epoch is the fenced copy, not the assigned one.
  if (a && s && s.epoch !== a.epoch) {
    v.phase = 'Pending';
    v.health = 'unknown';
  }
  return v;
}

function reported(engine: ViewEngine, nodeId: string): Map<string, InstanceStatus> {
  return new Map((engine.nodes.liveness(nodeId)?.status?.instances ?? []).map((i) => [i.id, i]));
}

function trustedNode(engine: ViewEngine, rec: NodeRecord | undefined): boolean {
  if (!rec) return false;
  const l = engine.nodes.liveness(rec.id);
  return !!l && l.state !== 'Unreachable';
}

export function nodeView(engine: ViewEngine, rec: NodeRecord): NodeView {
  const l = engine.nodes.liveness(rec.id);
  const cluster = engine.clusterOf(rec);
  const assigned = engine.currentAssignments(cluster).filter((a) => a.nodeId === rec.id);
  const status = reported(engine, rec.id);
  const trusted = trustedNode(engine, rec);
  const instances: InstanceView[] = assigned.map((a) => toView(a, status.get(a.instanceId), trusted));
  const seen = new Set(assigned.map((a) => a.instanceId));
  for (const s of status.values())
    if (!seen.has(s.id)) instances.push({ ...toView(undefined, s, trusted), nodeId: rec.id });
  instances.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const desired = engine.desiredPlan(rec.id);
  const plan: NodeView['plan'] = {
    generation: desired?.generation ?? 0,
    checksum: desired?.checksum ?? '',
    appliedGeneration: l?.applied?.generation ?? null,
    appliedChecksum: l?.applied?.checksum ?? null,
    converged: !desired || l?.applied?.checksum === desired.checksum,
  };
  if (l?.status) {
    plan.state = l.status.plan.state;
    if (l.status.plan.error) plan.error = l.status.plan.error;
  }
  return {
    id: rec.id,
    hostname: rec.hostname,
    address: rec.address,
    cluster,
    state: engine.nodes.effectiveState(rec),
    approved: rec.approved,
    cordoned: rec.cordoned,
    labels: rec.labels,
    lastHeartbeat: l ? new Date(l.lastSeenAt).toISOString() : null,
    cpuCores: rec.facts?.cpu?.cores ?? 0,
    memoryBytes: rec.facts?.memory?.totalBytes ?? 0,
    machineId: rec.fingerprint?.machineId ?? '',
    plan,
    instances,
    createdAt: rec.createdAt,
  };
}

export function nodeDetail(engine: ViewEngine, rec: NodeRecord): NodeDetail {
  return {
    ...nodeView(engine, rec),
    facts: rec.facts,
    fingerprint: rec.fingerprint,
    operatorLabels: rec.operatorLabels ?? {},
    events: engine.events.list({ nodeId: rec.id, limit: 20 }),
  };
}

/** Role names a topology declares, whatever the container shape (map or list of `{ name }`). */
export function declaredRoles(topology: unknown): string[] {
  const roles = (topology as { roles?: unknown } | undefined)?.roles;
  if (Array.isArray(roles))
    return roles.map((r) => (r as { name?: unknown }).name).filter((n): n is string => typeof n === 'string');
  if (roles && typeof roles === 'object') return Object.keys(roles);
  return [];
}

export function roleViews(engine: ViewEngine, cluster?: string): RoleView[] {
  const out: RoleView[] = [];
  const clusters = cluster ? [cluster] : engine.clusterNames();
  for (const c of clusters) {
    const assignments = engine.currentAssignments(c);
    const unplaced = engine.unplacedFor(c);
    const names = new Set<string>([
      ...declaredRoles(engine.topology(c)),
      ...assignments.map((a) => a.role),
      ...unplaced.map((u) => u.role),
    ]);
    for (const name of [...names].sort()) out.push(roleView(engine, c, name, assignments, unplaced));
  }
  return out;
}

function roleView(
  engine: ViewEngine,
  cluster: string,
  name: string,
  all: Assignment[],
  allUnplaced: ReturnType<Engine['unplacedFor']>,
): RoleView {
  const mine = all.filter((a) => a.role === name).sort((a, b) => a.ordinal - b.ordinal);
  // An instance that must move but has nowhere to go keeps its assignment: it counts once, as
  // placed (its node makes the role Degraded), with placement's reason; not as unschedulable.
  const placedIds = new Set(mine.map((a) => a.instanceId));
  const stuck = allUnplaced.filter((u) => u.role === name && placedIds.has(u.instanceId));
  const unplaced = allUnplaced.filter((u) => u.role === name && !placedIds.has(u.instanceId));
  const reasons: string[] = [];
  let degraded = false;
  let progressing = false;
  const instances: InstanceView[] = [];
  for (const a of mine) {
    const rec = engine.nodes.get(a.nodeId);
    const v = toView(a, reported(engine, a.nodeId).get(a.instanceId), trustedNode(engine, rec));
    instances.push(v);
    if (isHealthy(v)) continue;
    const state = rec ? engine.nodes.effectiveState(rec) : 'Removed';
    if (state === 'Unreachable' || state === 'Suspect' || state === 'Removed') {
      degraded = true;
      reasons.push(`${a.instanceId} on ${a.nodeId}: node is ${state}`);
    } else if (
      v.phase === 'Unhealthy' ||
      v.phase === 'CrashLoop' ||
      v.phase === 'Failed' ||
      v.phase === 'Stopped'
    ) {
      degraded = true;
      reasons.push(`${a.instanceId} on ${a.nodeId}: ${v.phase}${v.lastError ? `: ${v.lastError}` : ''}`);
    } else {
      progressing = true;
      reasons.push(`${a.instanceId} on ${a.nodeId}: ${v.phase === 'Unknown' ? 'not reported yet' : v.phase}`);
    }
  }
  for (const u of stuck) reasons.push(u.reason);
  reasons.push(...unplacedReasons(unplaced));
  const healthy = instances.filter(isHealthy).length;
  const status: RoleView['status'] = unplaced.length
    ? 'Unschedulable'
    : degraded
      ? 'Degraded'
      : progressing
        ? 'Progressing'
        : 'Healthy';
  return {
    name,
    cluster,
    desired: mine.length + unplaced.length,
    placed: mine.length,
    healthy,
    simulated: instances.filter((i) => i.simulated).length,
    status,
    reasons,
    instances,
  };
}

export function assignmentViews(engine: ViewEngine, cluster?: string): Array<Assignment & InstanceView> {
  const list = cluster ? engine.currentAssignments(cluster) : engine.allAssignments();
  return list
    .map((a) => ({
      ...a,
      ...toView(
        a,
        reported(engine, a.nodeId).get(a.instanceId),
        trustedNode(engine, engine.nodes.get(a.nodeId)),
      ),
    }))
    .sort((a, b) => (a.cluster + a.instanceId < b.cluster + b.instanceId ? -1 : 1));
}

/** Convergence as `drover apply --wait` sees it: plans applied everywhere and every role Healthy. */
export function statusView(engine: ViewEngine, natsConnected: boolean): StatusView {
  const nodes: Record<string, number> = {};
  for (const n of engine.nodes.all()) {
    const s = engine.nodes.effectiveState(n);
    nodes[s] = (nodes[s] ?? 0) + 1;
  }
  const clusters = engine.clusterNames().map((name) => {
    const roles = roleViews(engine, name);
    const plansApplied = engine.converged(name);
    const healthyRoles = roles.filter((r) => r.status === 'Healthy').length;
    const reasons = roles.flatMap((r) => r.reasons.map((x) => `${r.name}: ${x}`));
    if (!plansApplied) {
      for (const n of engine.nodes.all()) {
        if (engine.clusterOf(n) !== name || !n.approved) continue;
        const v = nodeView(engine, n);
        if (!v.plan.converged && v.state !== 'Unreachable')
          reasons.push(
            `node ${n.id}: plan generation ${v.plan.generation} not applied yet${v.plan.error ? ` (${v.plan.error})` : ''}`,
          );
      }
    }
    return {
      name,
      converged: plansApplied && healthyRoles === roles.length,
      plansApplied,
      roles: roles.length,
      healthyRoles,
      unplaced: engine.unplacedFor(name).length,
      reasons,
    };
  });
  return {
    converged: clusters.every((c) => c.converged),
    epoch: engine.epoch,
    natsConnected,
    nodes,
    clusters,
  };
}
