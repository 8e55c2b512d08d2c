/**
 * How each cluster's etcd is reached: mutual TLS from the etcd CA (every cluster bootstrapped by
 * a coordinator with a PKI), or plain HTTP for a legacy cluster bootstrapped before Drover ran
 * etcd with TLS.
 *
 * Drover does not convert a running plain-HTTP etcd to TLS. Switching every member's URLs at once
 * would restart all of them with peer URLs the member list does not know, and lose quorum; a
 * rolling conversion is not built. So a cluster that already had etcd members when this
 * coordinator first started with TLS is recorded as `plain` (store key `etcd-transport/<cluster>`),
 * keeps working as it did, and is reported at every start with the event `etcd.plain-http`, which
 * names the migration (docs/operations.md, "Moving a plain-HTTP etcd to TLS").
 */

import { needsRenewal } from '../../lib/cert-renewal.js';
import type { Clock } from '../../lib/clock.js';
import type { EventInput } from '../events.js';
import type { Assignment } from '../model.js';
import type { Store } from '../store/index.js';
import type { EtcdTls } from './admin.js';

export type EtcdTransport = 'tls' | 'plain';

export const ETCD_TRANSPORT_PREFIX = 'etcd-transport/';
/** written once the data dir has been run by a coordinator that runs etcd with TLS */
export const ETCD_TRANSPORT_MARKER = 'meta/etcd-transport';

export interface EtcdTransportRecord {
  transport: EtcdTransport;
  /** when it was recorded (ms since the epoch) */
  since: number;
  reason: string;
}

/** What the membership client needs to reach a cluster's members. */
export interface EtcdClientTransport {
  scheme: 'http' | 'https';
  tls?: EtcdTls;
}

/** A member's URL on its node's address (IPv6 in brackets). */
export function etcdMemberUrl(scheme: 'http' | 'https', address: string, port: number): string {
  return `${scheme}://${address.includes(':') ? `[${address}]` : address}:${port}`;
}

export const PLAIN_HTTP_MIGRATION =
  'to move it to TLS, back up etcd (`etcdctl snapshot save`), then follow docs/operations.md "Moving a plain-HTTP etcd to TLS"';

/**
 * The per-cluster transport records, read once at start-up and kept in memory (the render path
 * asks for every plan). A cluster without a record runs TLS.
 */
export class EtcdTransportBook {
  private readonly records = new Map<string, EtcdTransportRecord>();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  async load(): Promise<void> {
    for (const e of await this.store.list<EtcdTransportRecord>(ETCD_TRANSPORT_PREFIX)) {
      const v = e.value;
      if (v && (v.transport === 'tls' || v.transport === 'plain'))
        this.records.set(e.key.slice(ETCD_TRANSPORT_PREFIX.length), v);
    }
  }

  get(cluster: string): EtcdTransport {
    return this.records.get(cluster)?.transport ?? 'tls';
  }

  record(cluster: string): EtcdTransportRecord | undefined {
    return this.records.get(cluster);
  }

  /**
   * Start-up, before the first reconcile. The first time a coordinator that runs etcd with TLS
   * starts on a data dir (no `meta/etcd-transport` marker yet), every cluster that already has
   * etcd members was bootstrapped over plain HTTP by an earlier Drover: it is recorded `plain`.
   * Clusters created after that run TLS and need no record. Every plain cluster is reported
   * (event `etcd.plain-http`, error) with the way to migrate. Returns the plain clusters.
   */
  async adoptLegacy(emit: (e: EventInput) => void): Promise<string[]> {
    if (!(await this.store.get(ETCD_TRANSPORT_MARKER))) {
      const legacy = new Set<string>();
      for (const e of await this.store.list<Assignment>('assignments/'))
        if (e.value?.role === 'etcd' && typeof e.value.cluster === 'string') legacy.add(e.value.cluster);
      for (const cluster of [...legacy].sort())
        if (!this.records.has(cluster)) {
          const rec: EtcdTransportRecord = {
            transport: 'plain',
            since: this.clock.now(),
            reason: 'etcd members were running over plain HTTP before this coordinator ran etcd with TLS',
          };
          await this.store.put(`${ETCD_TRANSPORT_PREFIX}${cluster}`, rec);
          this.records.set(cluster, rec);
        }
      await this.store.put(ETCD_TRANSPORT_MARKER, { since: this.clock.now() });
    }
    const plain = [...this.records].filter(([, r]) => r.transport === 'plain').map(([c]) => c);
    for (const cluster of plain.sort())
      emit({
        kind: 'etcd.plain-http',
        severity: 'error',
        cluster,
        role: 'etcd',
        message: `etcd of cluster ${cluster} serves plain HTTP without client authentication (bootstrapped before TLS); Drover keeps it plain and will not switch a running cluster to TLS in place: ${PLAIN_HTTP_MIGRATION}`,
      });
    return plain;
  }
}

/**
 * The coordinator's etcd client credentials, issued on first use and re-issued inside their
 * renewal window (a third of the lifetime at most), so the membership client never presents an
 * expired certificate.
 */
export function renewingEtcdCredentials(
  issue: () => Promise<{ caPem: string; certPem: string; keyPem: string }>,
  clock: Clock,
): () => Promise<EtcdTls> {
  let current: { caPem: string; certPem: string; keyPem: string } | undefined;
  let pending: Promise<EtcdTls> | undefined;
  return () => {
    if (current && !needsRenewal(current.certPem, clock.now()))
      return Promise.resolve({ ca: current.caPem, cert: current.certPem, key: current.keyPem });
    pending ??= issue()
      .then((c) => {
        current = c;
        return { ca: c.caPem, cert: c.certPem, key: c.keyPem };
      })
      .finally(() => {
        pending = undefined;
      });
    return pending;
  };
}
