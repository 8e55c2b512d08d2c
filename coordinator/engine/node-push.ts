/**
 * The node reconcile (`node:<id>`): pushes a node's desired plan from the plan book until the
 * agent's applied checksum matches, through the rollout gate (one restart per role at a time,
 * within the drain budget).
 */
import type { Clock } from '../../lib/clock.js';
import type { Logger } from '../../lib/logger.js';
import type { PlanResult } from '../../protocol/index.js';
import { unavailableByRole } from '../drain.js';
import { coordinatorError } from '../errors.js';
import type { EventLog } from '../events.js';
import { isHealthy } from '../model.js';
import { RolloutGate } from '../rollout.js';
import type { ClusterState } from '../state/cluster-state.js';
import type { PlanBook } from './plan-book.js';
import type { AgentBus, Enqueue, Reconciled } from './ports.js';

const NONE: ReadonlySet<string> = new Set();

export interface NodePushPorts {
  state: ClusterState;
  plans: PlanBook;
  events: EventLog;
  clock: Clock;
  log: Logger;
  enqueue: Enqueue;
  bus: () => AgentBus | undefined;
  epoch: () => number;
  pushTimeoutMs: number;
  onPush?: (ok: boolean) => void;
  /**
   * Plans that go out without waiting for the rollout gate: the nodes of a cluster whose etcd is
   * being restored (its control plane is down or being rebuilt; holding a parked member's stop or a
   * joiner's start behind an API server's rolling restart only keeps etcd without quorum longer)
   */
  bypassRollout?: (nodeId: string) => boolean;
}

export class NodePush {
  private readonly rollout: RolloutGate;
  /** instances per role across clusters, refreshed on every cluster reconcile */
  private roleCounts = new Map<string, number>();
  private unavailableMemo?: { at: number; byRole: Map<string, Set<string>> };

  constructor(private readonly p: NodePushPorts) {
    const nodes = p.state.nodes;
    this.rollout = new RolloutGate(p.clock, (nodeId, instanceId, checksum) => {
      const l = nodes.liveness(nodeId);
      if (!l || l.state === 'Unreachable') return true;
      const i = l.status?.instances.find((x) => x.id === instanceId);
      return !!i && i.checksum === checksum && this.backUp(nodeId, i);
    });
  }

  /**
   * Whether a restarted instance counts as back for the rollout: its probe passed (Healthy) when
   * its plan has one; merely Running is not enough then (an etcd member that runs but has not
   * rejoined yet), or the next instance of the role would go down beside it.
   */
  private backUp(nodeId: string, i: { id: string; phase: string; health: string }): boolean {
    const probed = this.p.plans.get(nodeId)?.plan.instances.find((x) => x.id === i.id)?.health !== undefined;
    return probed ? i.phase === 'Healthy' && i.health !== 'unhealthy' : isHealthy(i);
  }

  /** Counts instances per role over every assignment (after a cluster reconcile wrote them). */
  refreshRoleCounts(): void {
    const counts = new Map<string, number>();
    for (const a of this.p.state.allAssignments()) counts.set(a.role, (counts.get(a.role) ?? 0) + 1);
    this.roleCounts = counts;
    // New assignments (a move, a drain step) change who is down at once: never judge the pushes
    // that the same reconcile books by a picture from before it.
    this.unavailableMemo = undefined;
  }

  /** An instance's status came in: once it is back up, the pushes it held back may go now. */
  released(
    nodeId: string,
    i: { id: string; role: string; checksum: string; phase: string; health: string },
  ): void {
    if (!this.backUp(nodeId, i)) return;
    for (const next of this.rollout.release(i.role, i.id, i.checksum)) this.p.enqueue(`node:${next}`);
  }

  /** Instances restarting under the rollout gate now (see RolloutGate.restarting). */
  restarting(): Set<string> {
    return this.rollout.restarting();
  }

  /** A removed node holds no rollout slot. */
  forget(nodeId: string): void {
    this.rollout.forget(nodeId);
  }

  /** `log`: the queue's per-run logger (`{ reconcile: id, key }`), else this module's own. */
  async reconcile(nodeId: string, log: Logger = this.p.log): Promise<Reconciled> {
    const { plans, state, clock } = this.p;
    const d = plans.get(nodeId);
    const rec = state.nodes.get(nodeId);
    const l = state.nodes.liveness(nodeId);
    const bus = this.p.bus();
    if (!d || !rec?.approved || !l || l.state === 'Unreachable' || !bus) return undefined;
    const a = l.applied;
    if (
      a &&
      a.checksum === d.plan.checksum &&
      a.coordinatorEpoch === this.p.epoch() &&
      a.generation >= d.plan.generation &&
      !l.statusResync
    )
      return undefined;
    const blocked = this.p.bypassRollout?.(nodeId)
      ? []
      : this.rollout.acquire(
          nodeId,
          d.plan,
          (role) => this.roleCounts.get(role) ?? 0,
          (role) => this.unavailableByRole().get(role) ?? NONE,
        );
    if (blocked.length) {
      log.debug(
        { nodeId, roles: blocked },
        'plan push waits: another instance of these roles is still restarting',
      );
      return { requeueAfterMs: 500 };
    }
    let res: PlanResult;
    try {
      res = await bus.pushPlan(nodeId, d.signed, this.p.pushTimeoutMs);
    } catch (err) {
      this.p.onPush?.(false);
      throw coordinatorError(
        'DROVER_ERR_NODE_UNREACHABLE',
        `plan push to ${nodeId} failed: ${(err as Error).message}`,
        undefined,
        err,
      );
    }
    this.p.onPush?.(res.accepted);
    if (!res.accepted) {
      this.p.events.emit({
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
    l.applied = { generation: res.generation, checksum: res.checksum, coordinatorEpoch: this.p.epoch() };
    l.lastPushOkAt = clock.now();
    l.statusResync = false;
    this.rollout.pushed(nodeId, d.plan);
    return undefined;
  }

  /**
   * unavailableByRole (coordinator/drain.ts) over every assignment, memoized for 100 ms and
   * dropped whenever assignments change (refreshRoleCounts). Restarts the gate itself started are
   * held by its slots; this covers instances down for other reasons (moved, starting, crashed).
   */
  private unavailableByRole(): Map<string, Set<string>> {
    const now = this.p.clock.now();
    if (this.unavailableMemo && now - this.unavailableMemo.at < 100) return this.unavailableMemo.byRole;
    const byRole = unavailableByRole(this.p.state.allAssignments(), (n) => this.p.state.nodes.liveness(n));
    this.unavailableMemo = { at: now, byRole };
    return byRole;
  }
}
