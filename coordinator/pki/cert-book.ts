/**
 * What the coordinator has issued and when it expires: the newest leaf per (cluster, node,
 * instance, profile), recorded when a CSR is signed (store keys `certificates/…`), and the CAs.
 * Read by `drover get certificates`, the metric `drover_certificate_expiry_seconds` and the daily
 * CA check, which raises `pki.ca-expiring` 30 days before a CA's certificate expires.
 *
 * Renewal is the coordinator's (coordinator/pki/renewal-roll.ts): 37 days before expiry, at most the
 * last half of the lifetime, rolled through the rollout gate; a row's `renewAt` is that moment. The
 * agent's own renewal (lib/cert-renewal.ts: 30 days before expiry, at most the last third;
 * `renewAt()` here) is the fallback. Either way the new certificate replaces the record.
 */

import { DAY_MS, DEFAULT_RENEW_BEFORE_MS, issuedLifetime } from '../../lib/cert-renewal.js';
import type { Logger } from '../../lib/logger.js';
import type { EventInput } from '../events.js';
import type { Store } from '../store/types.js';
import type { CaName } from './profiles.js';

export const CERT_PREFIX = 'certificates/';
/** a CA is announced this long before it expires */
export const CA_WARN_BEFORE_MS = 30 * DAY_MS;

export interface IssuedLeaf {
  cluster: string;
  nodeId: string;
  instanceId: string;
  profile: string;
  serialNumber: string;
  notBefore: string;
  notAfter: string;
}

export interface CertificateRow {
  kind: 'leaf' | 'ca';
  cluster: string;
  node: string;
  instance: string;
  profile: string;
  serialNumber: string;
  notBefore: string;
  notAfter: string;
  /** when the holder renews it: the agent (leaves) or the daily CA rotation (CAs, in their last year) */
  renewAt: string;
}

/** When a certificate of that validity enters its renewal window (lib/cert-renewal.ts). */
export function renewAt(
  notBefore: string,
  notAfter: string,
  renewBeforeMs = DEFAULT_RENEW_BEFORE_MS,
): string {
  const nb = Date.parse(notBefore);
  const na = Date.parse(notAfter);
  return new Date(na - Math.min(renewBeforeMs, issuedLifetime(nb, na) / 3)).toISOString();
}

/** How much earlier than the agent's own window the coordinator renews (coordinator/pki/renewal-roll.ts). */
export const COORDINATOR_RENEW_LEAD_MS = 7 * DAY_MS;

/**
 * When the coordinator renews a leaf of that validity, through the rollout gate: `renewBefore`
 * plus 7 days before expiry (37 days by default), at most the last half of its lifetime.
 */
export function coordinatorRenewAt(
  notBefore: string,
  notAfter: string,
  renewBeforeMs = DEFAULT_RENEW_BEFORE_MS,
): number {
  const nb = Date.parse(notBefore);
  const na = Date.parse(notAfter);
  return na - Math.min(renewBeforeMs + COORDINATOR_RENEW_LEAD_MS, issuedLifetime(nb, na) / 2);
}

const key = (l: Pick<IssuedLeaf, 'cluster' | 'nodeId' | 'instanceId' | 'profile'>) =>
  `${CERT_PREFIX}${l.cluster}/${l.nodeId}/${l.instanceId}/${l.profile}`;

const isLeaf = (v: unknown): v is IssuedLeaf =>
  !!v &&
  ['cluster', 'nodeId', 'instanceId', 'profile', 'serialNumber', 'notBefore', 'notAfter'].every(
    (k) => typeof (v as Record<string, unknown>)[k] === 'string',
  );

export class CertificateBook {
  private readonly leaves = new Map<string, IssuedLeaf>();
  private readonly warned = new Set<string>();

  constructor(
    private readonly p: {
      store: Store;
      cas: () => Array<{ ca: CaName; notBefore: string; notAfter: string; serialNumber: string }>;
      emit: (e: EventInput) => void;
      log: Logger;
    },
  ) {}

  async load(): Promise<void> {
    for (const e of await this.p.store.list<unknown>(CERT_PREFIX))
      if (isLeaf(e.value)) this.leaves.set(e.key, e.value);
  }

  /** A leaf was signed: it replaces the one before it for the same holder and profile. */
  async issued(l: IssuedLeaf): Promise<void> {
    this.leaves.set(key(l), l);
    await this.p.store
      .put(key(l), l)
      .catch((err) => this.p.log.warn({ err, key: key(l) }, 'cannot record an issued certificate'));
  }

  /** Leaves of nodes or instances that are gone are dropped (`keep` says which holders remain). */
  async forget(keep: (l: IssuedLeaf) => boolean): Promise<void> {
    for (const [k, l] of [...this.leaves])
      if (!keep(l)) {
        this.leaves.delete(k);
        await this.p.store.delete(k).catch(() => {});
      }
  }

  /** A cluster's leaves as recorded, unsorted: what the renewal overlay reads on every cluster reconcile. */
  leavesOf(cluster: string): IssuedLeaf[] {
    return [...this.leaves.values()].filter((l) => l.cluster === cluster);
  }

  rows(): CertificateRow[] {
    const cas: CertificateRow[] = this.p.cas().map((c) => ({
      kind: 'ca',
      cluster: '',
      node: '',
      instance: '',
      profile: `ca:${c.ca}`,
      serialNumber: c.serialNumber,
      notBefore: c.notBefore,
      notAfter: c.notAfter,
      // ClusterPki.rotateIfNeeded re-signs a CA in its last year
      renewAt: new Date(Date.parse(c.notAfter) - 365 * DAY_MS).toISOString(),
    }));
    const leaves: CertificateRow[] = [...this.leaves.values()]
      .map((l) => ({
        kind: 'leaf' as const,
        cluster: l.cluster,
        node: l.nodeId,
        instance: l.instanceId,
        profile: l.profile,
        serialNumber: l.serialNumber,
        notBefore: l.notBefore,
        notAfter: l.notAfter,
        // the coordinator's renewal (the agent's own, at `renewAt()`, is the fallback)
        renewAt: new Date(coordinatorRenewAt(l.notBefore, l.notAfter)).toISOString(),
      }))
      .sort((a, b) => a.notAfter.localeCompare(b.notAfter) || a.node.localeCompare(b.node));
    return [...cas, ...leaves];
  }

  /** The CAs within 30 days of expiry: one `pki.ca-expiring` event per CA certificate. Returns them. */
  checkCas(now: number): string[] {
    const out: string[] = [];
    for (const c of this.p.cas()) {
      const left = Date.parse(c.notAfter) - now;
      if (left > CA_WARN_BEFORE_MS) continue;
      out.push(c.ca);
      const id = `${c.ca}/${c.serialNumber}`;
      if (this.warned.has(id)) continue;
      this.warned.add(id);
      this.p.emit({
        kind: 'pki.ca-expiring',
        severity: left <= 0 ? 'error' : 'warning',
        message:
          left <= 0
            ? `the ${c.ca} CA certificate expired at ${c.notAfter}: every certificate it issued fails to verify; rotate it (docs/operations.md, "Certificates")`
            : `the ${c.ca} CA certificate expires at ${c.notAfter}, in ${Math.ceil(left / DAY_MS)} day(s): rotate it (docs/operations.md, "Certificates")`,
        data: { ca: c.ca, notAfter: c.notAfter },
      });
    }
    return out;
  }
}
