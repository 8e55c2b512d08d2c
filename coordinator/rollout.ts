import type { Clock } from '../lib/clock.js';
import { isReloadOnly, type NodePlan } from '../protocol/index.js';

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
 *
 * Cost at scale: a slot is freed as soon as the engine passes on a healthy status (`release`), and
 * the full re-check of a role's slots against `settled` runs at most every `PRUNE_EVERY_MS`, so
 * thousands of held nodes asking again do not each scan thousands of slots. Nodes that were held
 * are handed back by `release` as the budget frees up, to be pushed without waiting for a retry.
 */
export class RolloutGate {
  static readonly PRUNE_EVERY_MS = 100;
  private readonly slots = new Map<string, Map<string, Slot>>();
  private readonly lastPushed = new Map<string, NodePlan>();
  private readonly prunedAt = new Map<string, number>();
  /** nodes held per role, in the order they asked */
  private readonly waiting = new Map<string, Set<string>>();

  constructor(
    private readonly clock: Clock,
    /** true when the instance runs healthy at that checksum, or can no longer be waited for */
    private readonly settled: (nodeId: string, instanceId: string, checksum: string) => boolean,
    private readonly timeoutMs = 60_000,
  ) {}

  /**
   * The instance runs healthy at `checksum`: frees its slot if it held one. Returns the held nodes
   * that may now try again (as many as slots were freed), so the caller can push to them at once.
   */
  release(role: string, instanceId: string, checksum: string): string[] {
    const slots = this.slots.get(role);
    const s = slots?.get(instanceId);
    if (!slots || !s || s.checksum !== checksum) return [];
    slots.delete(instanceId);
    const waiters = this.waiting.get(role);
    const next = waiters?.values().next();
    if (!waiters || !next || next.done) return [];
    waiters.delete(next.value);
    return [next.value];
  }

  private prune(role: string, slots: Map<string, Slot>, now: number): void {
    if (now - (this.prunedAt.get(role) ?? Number.NEGATIVE_INFINITY) < RolloutGate.PRUNE_EVERY_MS) return;
    this.prunedAt.set(role, now);
    for (const [id, s] of slots) {
      if (now - s.since >= this.timeoutMs || this.settled(s.nodeId, id, s.checksum)) slots.delete(id);
    }
  }

  /** How many instances of a role of `count` may restart at once. */
  static budget(count: number): number {
    return Math.max(1, Math.floor(count / 4));
  }

  /**
   * Roles that block pushing `plan` to `nodeId` now; when none do, takes their slots and returns [].
   * Only restarts of instances the node already runs count; new instances and reloads never wait.
   */
  acquire(
    nodeId: string,
    plan: NodePlan,
    roleCount: (role: string) => number,
    /**
     * instance ids of the role that are not healthy now (moving, starting, crashed): a restart of
     * a healthy instance counts them against the budget too, so a rollout and a drain or repair
     * move together never take a role below its budget (a restart of an instance that is down
     * anyway costs nothing and does not wait for them)
     */
    unavailable?: (role: string) => ReadonlySet<string>,
  ): string[] {
    const prev = this.lastPushed.get(nodeId);
    if (!prev) return [];
    const before = new Map(prev.instances.map((i) => [i.id, i]));
    const restarting = plan.instances.filter((i) => {
      const b = before.get(i.id);
      return b && b.checksum !== i.checksum && !isReloadOnly(b, i) && roleCount(i.role) > 1;
    });
    if (restarting.length === 0) return [];
    const now = this.clock.now();
    const blocked = new Set<string>();
    for (const i of restarting) {
      const slots = this.slots.get(i.role);
      if (!slots && !unavailable) continue;
      const budget = RolloutGate.budget(roleCount(i.role));
      const down = unavailable?.(i.role);
      const others = () => {
        if (!down || down.has(i.id)) return 0;
        let n = 0;
        for (const id of down) if (!slots?.has(id)) n++;
        return n;
      };
      const busy = () => (slots ? slots.size - (slots.has(i.id) ? 1 : 0) : 0) + others();
      if (busy() >= budget && slots) this.prune(i.role, slots, now);
      if (busy() >= budget) blocked.add(i.role);
    }
    if (blocked.size) {
      for (const role of blocked) {
        let w = this.waiting.get(role);
        if (!w) {
          w = new Set();
          this.waiting.set(role, w);
        }
        w.add(nodeId);
      }
      return [...blocked];
    }
    for (const i of restarting) {
      this.waiting.get(i.role)?.delete(nodeId);
      let slots = this.slots.get(i.role);
      if (!slots) {
        slots = new Map();
        this.slots.set(i.role, slots);
      }
      slots.set(i.id, { nodeId, checksum: i.checksum, since: now });
    }
    return [];
  }

  /**
   * Instances whose restart was pushed and has not settled yet (a slot held): they still look
   * healthy in the last status, so a drain must count them as down before it moves another one.
   */
  restarting(): Set<string> {
    const now = this.clock.now();
    const out = new Set<string>();
    for (const [role, slots] of this.slots) {
      this.prune(role, slots, now);
      for (const id of slots.keys()) out.add(id);
    }
    return out;
  }

  pushed(nodeId: string, plan: NodePlan): void {
    this.lastPushed.set(nodeId, plan);
  }

  forget(nodeId: string): void {
    this.lastPushed.delete(nodeId);
    for (const w of this.waiting.values()) w.delete(nodeId);
  }
}
