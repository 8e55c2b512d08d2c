/**
 * Draining a node with a disruption budget, the way a PodDisruptionBudget with maxUnavailable 1
 * guards a Deployment:
 *
 * - a replicated role loses at most one instance at a time: a healthy instance leaves its draining
 *   node only while every other instance of its role is healthy, and the next one only once the
 *   replacement of the previous one is healthy (at its new epoch) — so the role never drops below
 *   `replicas - 1` healthy;
 * - an instance that is not healthy anyway may always leave (it serves nothing);
 * - an instance restarting under the rollout gate (a dependency changed: a new etcd member list)
 *   counts as down: a drain move and a rollout restart never take the same role's budget twice;
 * - the last healthy instance of a role (replicas 1, or every other one down) stays: the drain is
 *   *blocked*, and says so (`drover move INSTANCE --to NODE --force` moves it anyway);
 * - etcd moves one member at a time, and only while the replacement keeps quorum
 *   (`replacementKeepsQuorum`: a 3-member cluster with all three healthy may replace one);
 * - roles that run on every matching node (`everywhere`) have no replacement: they just go.
 *
 * `drainBudget` is the pure decision (which instances may leave now, and why the others wait);
 * the repair policy turns it into evictions, and `drainProgress` into what `drover drain --wait`
 * shows and waits for.
 */
import type { NodePlan, NodeState } from '../protocol/index.js';
import { replacementKeepsQuorum } from './etcd/quorum.js';
import { type Assignment, isHealthy, type NodeRecord, type Unplaced } from './model.js';
import { appliedEmptyPlan } from './node-removal.js';
import type { Liveness } from './nodes.js';
import type { Topology } from './topology/index.js';

const ETCD = 'etcd';

export interface DrainBudgetInput {
  /** every assignment of the cluster */
  assignments: readonly Assignment[];
  /** instance ids that are healthy at their current epoch on a live node */
  healthy: ReadonlySet<string>;
  /**
   * instance ids restarting under the rollout gate (a new config pushed, the restart not yet
   * reported): their last status still says healthy, but they spend the role's budget
   */
  restarting?: ReadonlySet<string>;
  /** each node's effective state; instances on `Draining` nodes are the candidates */
  nodeStates: ReadonlyMap<string, NodeState>;
  /** roles with one instance per matching node (no replacement) */
  everywhere?: ReadonlySet<string>;
}

export interface DrainWait {
  instanceId: string;
  role: string;
  nodeId: string;
  reason: string;
  /** true when waiting alone will not get it moving (an operator must act) */
  blocked: boolean;
}

export interface DrainDecision {
  /** instance ids that may leave their draining node now */
  leave: string[];
  wait: DrainWait[];
}

const byId = (a: Assignment, b: Assignment) =>
  a.instanceId < b.instanceId ? -1 : a.instanceId > b.instanceId ? 1 : 0;

/** Pure: which instances on draining nodes may leave now (see the module comment). */
export function drainBudget(given: DrainBudgetInput): DrainDecision {
  const restarting = given.restarting;
  const input: DrainBudgetInput = restarting?.size
    ? { ...given, healthy: new Set([...given.healthy].filter((id) => !restarting.has(id))) }
    : given;
  const leave: string[] = [];
  const wait: DrainWait[] = [];
  const draining = (a: Assignment) => input.nodeStates.get(a.nodeId) === 'Draining';
  const roles = new Map<string, Assignment[]>();
  for (const a of input.assignments) roles.set(a.role, [...(roles.get(a.role) ?? []), a]);
  for (const [role, all] of [...roles].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const candidates = all.filter(draining).sort(byId);
    if (candidates.length === 0) continue;
    if (input.everywhere?.has(role)) {
      leave.push(...candidates.map((a) => a.instanceId));
      continue;
    }
    const healthy = all.filter((a) => input.healthy.has(a.instanceId));
    const unavailable = all.filter((a) => !input.healthy.has(a.instanceId));
    // the one disruption this role may take: spent by an instance already down or on its way
    let budget = unavailable.length === 0 ? 1 : 0;
    let etcdLeaving: string | undefined;
    for (const a of candidates) {
      const isHealthyNow = input.healthy.has(a.instanceId);
      const others = all.filter((o) => o.instanceId !== a.instanceId);
      const w = (reason: string, blocked: boolean) =>
        wait.push({ instanceId: a.instanceId, role, nodeId: a.nodeId, reason, blocked });
      if (role === ETCD) {
        // one membership change at a time, and only while it keeps quorum
        const down = others.find((o) => !input.healthy.has(o.instanceId));
        if (down) {
          w(
            `waits for etcd member ${down.instanceId} on ${down.nodeId} to be healthy: one member change at a time`,
            false,
          );
          continue;
        }
        const q = replacementKeepsQuorum(all.length, others.length);
        if (!q.ok) {
          w(`replacing this etcd member would break quorum: ${q.reason}`, true);
          continue;
        }
        if (etcdLeaving) {
          w(`waits for etcd member ${etcdLeaving} to be replaced first: one member change at a time`, false);
          continue;
        }
        etcdLeaving = a.instanceId;
        leave.push(a.instanceId);
        continue;
      }
      if (!isHealthyNow) {
        leave.push(a.instanceId); // not serving: moving it costs no availability
        continue;
      }
      if (healthy.length <= 1) {
        w(
          `${a.instanceId} is the last healthy ${role}: moving it would take ${role} down; scale ${role} up, or \`drover move ${a.instanceId} --to NODE --force\``,
          true,
        );
        continue;
      }
      if (budget === 0) {
        const down = unavailable[0] ?? candidates.find((c) => leave.includes(c.instanceId));
        w(
          down
            ? `waits for ${down.instanceId}${down.nodeId !== a.nodeId ? ` on ${down.nodeId}` : ''} to be healthy: one ${role} at a time (${healthy.length}/${all.length} healthy)`
            : `waits: one ${role} at a time`,
          false,
        );
        continue;
      }
      budget--;
      leave.push(a.instanceId);
    }
  }
  return { leave, wait };
}

/** The instance ids of a cluster that are healthy at their current epoch on a live node. */
export function healthyInstances(
  assignments: readonly Assignment[],
  nodeStates: ReadonlyMap<string, NodeState>,
  status: (
    nodeId: string,
  ) => ReadonlyArray<{ id: string; epoch: number; phase: string; health: string }> | undefined,
): Set<string> {
  const out = new Set<string>();
  for (const a of assignments) {
    const st = nodeStates.get(a.nodeId);
    if (!st || st === 'Unreachable' || st === 'Suspect' || st === 'Removed' || st === 'Pending') continue;
    const s = status(a.nodeId)?.find((i) => i.id === a.instanceId);
    if (s && isHealthy(s) && s.epoch === a.epoch) out.add(a.instanceId);
  }
  return out;
}

/**
 * Instances on live (heartbeating) nodes that are not healthy at their epoch — moving, starting,
 * crashed — per role. The rollout gate counts them against a role's restart budget. Instances on
 * silent nodes are left out: a dead host must not hold every rollout of its roles.
 */
export function unavailableByRole(
  assignments: readonly Assignment[],
  liveness: (nodeId: string) => Pick<Liveness, 'state' | 'status'> | undefined,
): Map<string, Set<string>> {
  const byRole = new Map<string, Set<string>>();
  for (const a of assignments) {
    const l = liveness(a.nodeId);
    if (l?.state !== 'Ready') continue;
    const s = l.status?.instances.find((i) => i.id === a.instanceId);
    if (s && s.epoch === a.epoch && isHealthy(s)) continue;
    const set = byRole.get(a.role) ?? new Set<string>();
    byRole.set(a.role, set);
    set.add(a.instanceId);
  }
  return byRole;
}

export type DrainItemState = 'waiting' | 'leaving' | 'blocked' | 'starting' | 'replaced';

export interface DrainItem {
  instanceId: string;
  role: string;
  /** where it is assigned now */
  nodeId: string;
  state: DrainItemState;
  reason?: string;
}

export interface DrainProgress {
  nodeId: string;
  state: NodeState;
  /** the node holds nothing, its agent stopped everything, and every replacement is healthy */
  done: boolean;
  /** some instance cannot leave without an operator (see the items' reasons) */
  blocked: boolean;
  /** the agent applied its (empty) plan */
  agentStopped: boolean;
  items: DrainItem[];
}

/**
 * Pure: how far the drain of `nodeId` has got — what is still on it (waiting for its turn,
 * leaving, or blocked) and the replacements placed from it (starting or healthy).
 */
export function drainProgress(input: {
  nodeId: string;
  state: NodeState;
  assignments: readonly Assignment[];
  healthy: ReadonlySet<string>;
  decision: DrainDecision;
  unplaced: readonly Unplaced[];
  agentStopped: boolean;
}): DrainProgress {
  const items: DrainItem[] = [];
  const waits = new Map(input.decision.wait.map((w) => [w.instanceId, w]));
  const leaving = new Set(input.decision.leave);
  const unplaced = new Map(input.unplaced.map((u) => [u.instanceId, u.reason]));
  for (const a of [...input.assignments].sort(byId)) {
    if (a.nodeId === input.nodeId) {
      const w = waits.get(a.instanceId);
      const stuck = unplaced.get(a.instanceId);
      if (stuck && leaving.has(a.instanceId))
        items.push({
          instanceId: a.instanceId,
          role: a.role,
          nodeId: a.nodeId,
          state: 'blocked',
          reason: stuck,
        });
      else if (w)
        items.push({
          instanceId: a.instanceId,
          role: a.role,
          nodeId: a.nodeId,
          state: w.blocked ? 'blocked' : 'waiting',
          reason: w.reason,
        });
      else items.push({ instanceId: a.instanceId, role: a.role, nodeId: a.nodeId, state: 'leaving' });
    } else if (a.previousNodeId === input.nodeId) {
      const ok = input.healthy.has(a.instanceId);
      items.push({
        instanceId: a.instanceId,
        role: a.role,
        nodeId: a.nodeId,
        state: ok ? 'replaced' : 'starting',
        ...(ok ? {} : { reason: `${a.instanceId} on ${a.nodeId} is not healthy yet` }),
      });
    }
  }
  const left = items.filter((i) => i.nodeId === input.nodeId);
  return {
    nodeId: input.nodeId,
    state: input.state,
    // an Unreachable node cannot confirm; its instances were moved by repair (fenced if it returns)
    done:
      (input.state === 'Draining' || input.state === 'Unreachable') &&
      left.length === 0 &&
      (input.agentStopped || input.state === 'Unreachable') &&
      items.every((i) => i.state === 'replaced'),
    blocked: items.some((i) => i.state === 'blocked'),
    agentStopped: input.agentStopped,
    items,
  };
}

/** What `drainStatusOf` reads from the engine (the Engine implements it). */
export interface DrainView {
  clusterOf(rec: NodeRecord): string;
  currentAssignments(cluster: string): Assignment[];
  placementNodes(cluster: string): NodeRecord[];
  unplacedFor(cluster: string): Unplaced[];
  topology(cluster?: string): Topology | undefined;
  desiredPlan(nodeId: string): NodePlan | undefined;
  nodes: {
    get(id: string): NodeRecord | undefined;
    effectiveState(rec: NodeRecord): NodeState;
    liveness(id: string): Liveness | undefined;
  };
}

/** The roles of a topology that run on every matching node. */
export function everywhereRoles(t: Topology | undefined): Set<string> {
  return new Set(
    Object.entries(t?.roles ?? {})
      .filter(([, spec]) => (spec as { everywhere?: boolean }).everywhere === true)
      .map(([r]) => r),
  );
}

/** The drain progress of a node as the engine sees it now (GET /v1/nodes/:id/drain). */
export function drainStatusOf(engine: DrainView, rec: NodeRecord): DrainProgress {
  const cluster = engine.clusterOf(rec);
  const assignments = engine.currentAssignments(cluster);
  const nodeStates = new Map(engine.placementNodes(cluster).map((n) => [n.id, n.state]));
  const healthy = healthyInstances(
    assignments,
    nodeStates,
    (n) => engine.nodes.liveness(n)?.status?.instances,
  );
  const decision = drainBudget({
    assignments,
    healthy,
    nodeStates,
    everywhere: everywhereRoles(engine.topology(cluster)),
  });
  return drainProgress({
    nodeId: rec.id,
    state: engine.nodes.effectiveState(rec),
    assignments,
    healthy,
    decision,
    unplaced: engine.unplacedFor(cluster),
    agentStopped: appliedEmptyPlan(engine.desiredPlan(rec.id), engine.nodes.liveness(rec.id)),
  });
}
