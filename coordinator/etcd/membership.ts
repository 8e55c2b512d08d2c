/**
 * The etcd membership reconcile: makes the member list match the etcd assignments, one change at
 * a time, through the members that still answer. It runs on its own work-queue key per cluster,
 * `etcd:<cluster>`, so the queue's one-in-flight-per-key rule serialises the membership changes of
 * a cluster (no busy flag). The cluster reconcile asks for a run (`afterPlacement`) while a member
 * is joining an existing cluster and waits for it, so the joiner's plan goes out after its
 * `member add`.
 */
import type { Clock } from '../../lib/clock.js';
import type { Logger } from '../../lib/logger.js';
import { isParked } from '../catalog/types.js';
import { coordinatorError } from '../errors.js';
import type { EventInput } from '../events.js';
import type { Assignment, NodeRecord } from '../model.js';
import { type EtcdAdminFactory, type EtcdTls, etcdReconfigNotReady } from './admin.js';
import { replacementKeepsQuorum } from './quorum.js';
import { type EtcdClientTransport, etcdMemberUrl } from './transport.js';

const ETCD = 'etcd';

/** The work-queue key of a cluster's membership reconcile. */
export const etcdKey = (cluster: string): string => `etcd:${cluster}`;

/** What the membership reconcile reads and does; wired from the engine at the composition root. */
export interface EtcdMembershipPorts {
  assignments(cluster: string): Assignment[];
  nodes(cluster: string): NodeRecord[];
  emit(event: EventInput): void;
  /** queues a work-queue key (the engine's queue) */
  enqueue(key: string): void;
  admin: EtcdAdminFactory;
  /**
   * How a cluster's members are reached: https with the coordinator's etcd client certificate, or
   * plain http for a legacy cluster (coordinator/etcd/transport.ts). Default: http with `tls`.
   */
  transport?: (cluster: string) => Promise<EtcdClientTransport>;
  clock: Clock;
  log: Logger;
  /** a repair outcome for the metrics: `etcd-refused`, `etcd-replaced` */
  onRepair?: (result: string) => void;
}

export interface EtcdMembershipOptions {
  tls?: EtcdTls;
  clientPort?: number;
  peerPort?: number;
  /** how long the cluster reconcile waits for a requested run; default 30 s */
  waitMs?: number;
}

/**
 * The outcome of one run: in sync; one change made with more to do; etcd not ready for the change
 * yet (`not-ready`: its reconfig check, retried shortly); or failed (retry later).
 */
export type MembershipOutcome = 'done' | 'pending' | 'not-ready' | 'failed';

/** How soon the cluster reconcile asks again after each outcome (undefined: in sync). */
const RETRY_MS: Record<MembershipOutcome, number | undefined> = {
  done: undefined,
  // as often as the admin client's own retry of "unhealthy cluster" (coordinator/etcd/admin.ts)
  'not-ready': 500,
  pending: 1000,
  failed: 5000,
};

export class EtcdMembership {
  /** `instance@epoch@node` of joining members whose `member add` is confirmed */
  private readonly confirmed = new Set<string>();
  /** callers waiting for the next run of a cluster's key */
  private readonly waiters = new Map<string, Array<(o: MembershipOutcome) => void>>();
  private closed = false;

  constructor(
    private readonly ports: EtcdMembershipPorts,
    private readonly opts: EtcdMembershipOptions = {},
  ) {}

  /**
   * After placement wrote assignments: while an etcd member is joining an existing cluster (moved
   * or added late), run the membership reconcile and wait for it. Returns a retry delay while a
   * membership change is still outstanding.
   */
  async afterPlacement(cluster: string): Promise<number | undefined> {
    const key = (a: Assignment) => `${a.instanceId}@${a.epoch}@${a.nodeId}`;
    const joiners = this.ports
      .assignments(cluster)
      .filter(
        (a) =>
          a.role === ETCD &&
          !isParked(a) &&
          (a as { existing?: boolean }).existing === true &&
          !this.confirmed.has(key(a)),
      );
    if (joiners.length === 0) return undefined;
    const outcome = await this.request(cluster);
    if (outcome === 'done') for (const a of joiners) this.confirmed.add(key(a));
    return RETRY_MS[outcome];
  }

  /**
   * Queues `etcd:<cluster>` and resolves with the outcome of a run that starts after this call
   * (`pending` if none finished within `waitMs`, e.g. the queue was closed).
   */
  request(cluster: string): Promise<MembershipOutcome> {
    if (this.closed) return Promise.resolve('pending');
    return new Promise((resolve) => {
      let settled = false;
      const timer = this.ports.clock.setTimeout(() => finish('pending'), this.opts.waitMs ?? 30_000);
      const finish = (o: MembershipOutcome) => {
        if (settled) return;
        settled = true;
        this.ports.clock.clearTimeout(timer);
        resolve(o);
      };
      const list = this.waiters.get(cluster) ?? [];
      list.push(finish);
      this.waiters.set(cluster, list);
      this.ports.enqueue(etcdKey(cluster));
    });
  }

  /**
   * Shutdown: whoever waits for a run hears `pending` now (the closed queue starts none), so a
   * cluster reconcile in flight ends and the queue's close does not wait out `waitMs`.
   */
  close(): void {
    this.closed = true;
    const all = [...this.waiters.values()].flat();
    this.waiters.clear();
    for (const w of all) w('pending');
  }

  /**
   * The handler of `etcd:<cluster>`: one level-triggered pass; whoever asked hears the outcome.
   * `log`: the queue's per-run logger (`{ reconcile: id, key }`), else the module's own.
   */
  async reconcile(cluster: string, log: Logger = this.ports.log): Promise<undefined> {
    const waiting = this.waiters.get(cluster) ?? [];
    this.waiters.delete(cluster);
    let outcome: MembershipOutcome;
    try {
      outcome = await this.sync(cluster, log);
    } catch (err) {
      log.warn({ err, cluster }, 'etcd membership change failed; will retry');
      outcome = 'failed';
    }
    for (const w of waiting) w(outcome);
    // The cluster reconcile retries (its requeue) while a change is outstanding.
    return undefined;
  }

  /**
   * One pass: at most one member removed and one added. Safe to re-run after a coordinator crash
   * in the middle: a member already removed or already added is simply not touched again.
   * Returns `done` when the member list matches the assignments after it, `pending` when more
   * changes are due, `not-ready` when etcd turned the add down for now (it is asked again soon).
   */
  private async sync(cluster: string, log: Logger): Promise<MembershipOutcome> {
    const { ports } = this;
    // a member a restore parked is out of the cluster until its turn (coordinator/etcd/restore.ts)
    const etcdA = ports.assignments(cluster).filter((a) => a.role === ETCD && !isParked(a));
    const nodes = new Map(ports.nodes(cluster).map((n) => [n.id, n]));
    const t: EtcdClientTransport = (await ports.transport?.(cluster)) ?? {
      scheme: 'http',
      ...(this.opts.tls ? { tls: this.opts.tls } : {}),
    };
    const want = new Map<string, Assignment>();
    for (const a of etcdA) {
      const n = nodes.get(a.nodeId);
      if (n) want.set(this.url(t, n, this.opts.peerPort ?? 2380), a);
    }
    const clientUrls = etcdA
      .map((a) => nodes.get(a.nodeId))
      .filter((n): n is NodeRecord => !!n && n.state !== 'Unreachable')
      .map((n) => this.url(t, n, this.opts.clientPort ?? 2379));
    // On the injected clock, but nothing in a run waits on it: `member add` is tried once and a
    // "not ready yet" answer ends the run (`not-ready`), so the cluster reconcile asks again soon.
    const admin = ports.admin(clientUrls, t.tls, ports.clock);
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
      log.warn(
        { cluster, instanceId: a.instanceId, nodeId: a.nodeId, peerUrl: u },
        'etcd member is not in the member list and cannot rejoin as it is; not adding it back (it is replaced when its node is repaired)',
      );
      return false;
    });
    if (stale.length === 0 && missing.length === 0) return 'done';
    const q = replacementKeepsQuorum(members.length, healthy.length);
    if (!q.ok) {
      ports.emit({
        kind: 'etcd.replace-refused',
        severity: 'error',
        cluster,
        role: ETCD,
        message: `etcd membership change refused: ${q.reason}`,
      });
      ports.onRepair?.('etcd-refused');
      throw coordinatorError('DROVER_ERR_ETCD_QUORUM', q.reason ?? 'quorum');
    }
    const s = stale[0];
    if (s) {
      await admin.memberRemove(s.id, healthy);
      ports.emit({
        kind: 'etcd.member-removed',
        severity: 'warning',
        cluster,
        role: ETCD,
        message: `etcd member ${s.name || s.id} (${s.peerURLs.join(',')}) removed through the surviving members`,
      });
    }
    const add = missing[0];
    if (add) {
      try {
        await admin.memberAdd([add], healthy, 0);
      } catch (err) {
        if (!etcdReconfigNotReady(err)) throw err;
        log.debug({ cluster, peerUrl: add, err }, 'etcd is not ready to add a member yet; asking again soon');
        return 'not-ready';
      }
      const a = want.get(add)!;
      ports.emit({
        kind: 'etcd.member-added',
        severity: 'info',
        cluster,
        role: ETCD,
        instanceId: a.instanceId,
        nodeId: a.nodeId,
        message: `etcd member for ${a.instanceId} added at ${add}; it starts with initial-cluster-state=existing`,
      });
      ports.onRepair?.('etcd-replaced');
    }
    return stale.length <= 1 && missing.length <= 1 ? 'done' : 'pending';
  }

  private url(t: EtcdClientTransport, n: NodeRecord, port: number): string {
    return etcdMemberUrl(t.scheme, n.address, port);
  }
}
