/**
 * Certificate renewal driven by the coordinator, rolled through the rollout gate. A leaf issued to
 * an instance is renewed when its remaining validity falls to `min(renewBefore + 7 days, half its
 * lifetime)`: 37 days before expiry for the default one-year leaves. The instance's assignment
 * records the serial to replace (`certRenew`), the plan carries it (`PlanCertificate.renewSerial`),
 * and the plan change goes out through the rollout gate: a quarter of a role's instances at a time,
 * at least one, each when the others are healthy. Three etcd members or API servers whose
 * certificates were issued together therefore never restart together.
 *
 * The agent's own renewal, 30 days before expiry (lib/cert-renewal.ts), stays as the fallback for
 * a host no coordinator reached in time (static stability); it restarts the instance on the spot.
 *
 * `renewalOverlay` decides purely; `CertRenewals` wakes the cluster reconcile (the one writer of
 * assignments) when a renewal is due.
 */
import { DEFAULT_RENEW_BEFORE_MS } from '../../lib/cert-renewal.js';
import type { Clock } from '../../lib/clock.js';
import type { CertRenewalExtras } from '../catalog/types.js';
import type { Assignment } from '../model.js';
import { coordinatorRenewAt, type IssuedLeaf } from './cert-book.js';

export { COORDINATOR_RENEW_LEAD_MS, coordinatorRenewAt } from './cert-book.js';

type WithRenew = Assignment & CertRenewalExtras;

/**
 * The assignments with the serials due for renewal recorded: a leaf row of the instance, on the
 * node it is assigned to, past its coordinator renewal time and not asked for yet. Applying it
 * twice changes nothing; a renewed certificate (a new serial) is due again only in its own time.
 */
export function renewalOverlay(
  current: readonly Assignment[],
  leaves: readonly IssuedLeaf[],
  now: number,
  renewBeforeMs = DEFAULT_RENEW_BEFORE_MS,
): Assignment[] {
  const due = new Map<string, Map<string, string>>();
  for (const l of leaves) {
    if (now < coordinatorRenewAt(l.notBefore, l.notAfter, renewBeforeMs)) continue;
    const k = `${l.cluster}\u0000${l.nodeId}\u0000${l.instanceId}`;
    const m = due.get(k) ?? new Map<string, string>();
    m.set(l.profile, l.serialNumber);
    due.set(k, m);
  }
  if (due.size === 0) return [...current];
  return current.map((a) => {
    const d = due.get(`${a.cluster}\u0000${a.nodeId}\u0000${a.instanceId}`);
    if (!d) return a;
    const had = (a as WithRenew).certRenew ?? {};
    if ([...d].every(([p, s]) => had[p] === s)) return a;
    return { ...a, certRenew: { ...had, ...Object.fromEntries(d) } } as Assignment;
  });
}

/** Wakes a cluster's reconcile when one of its certificates is due, every `everyMs` (default 10 min). */
export class CertRenewals {
  private timer: { stop(): void } | undefined;

  constructor(
    private readonly p: {
      /** the newest leaf per holder and profile of a cluster (read on every cluster reconcile) */
      leaves: (cluster: string) => IssuedLeaf[];
      clusters: () => string[];
      assignments: (cluster: string) => Assignment[];
      enqueue: (key: string) => void;
      clock: Clock;
      renewBeforeMs?: number;
    },
  ) {}

  /** The cluster reconcile's overlay. */
  overlay(cluster: string, current: Assignment[]): Assignment[] {
    return renewalOverlay(current, this.p.leaves(cluster), this.p.clock.now(), this.p.renewBeforeMs);
  }

  /** One pass: the clusters whose assignments the overlay would change are reconciled. */
  check(): string[] {
    const woken: string[] = [];
    for (const c of this.p.clusters()) {
      const cur = this.p.assignments(c);
      const next = this.overlay(c, cur);
      if (next.some((a, i) => a !== cur[i])) {
        woken.push(c);
        this.p.enqueue(`cluster:${c}`);
      }
    }
    return woken;
  }

  start(everyMs = 10 * 60_000): void {
    this.timer ??= this.p.clock.every(everyMs, () => void this.check());
  }

  stop(): void {
    this.timer?.stop();
    this.timer = undefined;
  }
}
