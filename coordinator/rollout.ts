import type { Clock } from '../lib/clock.js';
import type { NodePlan } from '../protocol/index.js';

interface Slot {
  nodeId: string;
  checksum: string;
  since: number;
}

/**
 * Rolls restarts of a replicated role a few instances at a time (a quarter of them, at least one:
 * one of three API servers; 1,250 of 5,000 kubelets). When a dependency changes — a new etcd member
 * list, a moved API endpoint — every instance of a dependent role gets a new plan at once;
 * restarting all three API servers together would leave nothing behind the load balancer.
 * A push that would restart an instance waits while the role's restart budget is used up by
 * instances still restarting; one is done when it reports healthy at its new checksum, when its
 * node is gone, or after `timeoutMs` (a stuck instance must not block the rollout forever).
 */
export class RolloutGate {
  private readonly slots = new Map<string, Map<string, Slot>>();
  private readonly lastPushed = new Map<string, NodePlan>();

  constructor(
    private readonly clock: Clock,
    /** true when the instance runs healthy at that checksum, or can no longer be waited for */
    private readonly settled: (nodeId: string, instanceId: string, checksum: string) => boolean,
    private readonly timeoutMs = 60_000,
  ) {}

  /** How many instances of a role of `count` may restart at once. */
  static budget(count: number): number {
    return Math.max(1, Math.floor(count / 4));
  }

  /**
   * Roles that block pushing `plan` to `nodeId` now; when none do, takes their slots and returns [].
   * Only restarts of instances the node already runs count; new instances and reloads never wait.
   */
  acquire(nodeId: string, plan: NodePlan, roleCount: (role: string) => number): string[] {
    const prev = this.lastPushed.get(nodeId);
    if (!prev) return [];
    const before = new Map(prev.instances.map((i) => [i.id, i.checksum]));
    const restarting = plan.instances.filter(
      (i) =>
        before.has(i.id) && before.get(i.id) !== i.checksum && !i.run.reloadSignal && roleCount(i.role) > 1,
    );
    if (restarting.length === 0) return [];
    const now = this.clock.now();
    const blocked = new Set<string>();
    for (const i of restarting) {
      const slots = this.slots.get(i.role);
      if (!slots) continue;
      for (const [id, s] of slots) {
        if (now - s.since >= this.timeoutMs || this.settled(s.nodeId, id, s.checksum)) slots.delete(id);
      }
      const busy = [...slots.keys()].filter((id) => id !== i.id).length;
      if (busy >= RolloutGate.budget(roleCount(i.role))) blocked.add(i.role);
    }
    if (blocked.size) return [...blocked];
    for (const i of restarting) {
      let slots = this.slots.get(i.role);
      if (!slots) {
        slots = new Map();
        this.slots.set(i.role, slots);
      }
      slots.set(i.id, { nodeId, checksum: i.checksum, since: now });
    }
    return [];
  }

  pushed(nodeId: string, plan: NodePlan): void {
    this.lastPushed.set(nodeId, plan);
  }

  forget(nodeId: string): void {
    this.lastPushed.delete(nodeId);
  }
}
