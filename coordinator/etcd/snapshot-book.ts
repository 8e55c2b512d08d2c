/**
 * etcd snapshots: taken from a healthy member on a schedule (per cluster, `cluster.etcdSnapshots`
 * in the topology: every 6 h, keeping the newest 10 scheduled ones, by default) or on demand
 * (`drover etcd snapshot save`), checksummed, and recorded with the etcd cluster id, revision,
 * size and time (store keys `etcd-snapshots/<id>`). The files live off the etcd hosts
 * (coordinator/etcd/snapshot-blobs.ts). Every served file is checked against its record first.
 *
 * Pruning keeps the newest `keep` scheduled snapshots of a cluster; snapshots an operator took are
 * kept until an operator deletes them.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Clock } from '../../lib/clock.js';
import type { Logger } from '../../lib/logger.js';
import { coordinatorError } from '../errors.js';
import type { EventInput } from '../events.js';
import type { Store } from '../store/types.js';
import type { EtcdTls } from './admin.js';
import { snapshotIntact, type TakenSnapshot, takeEtcdSnapshot } from './snapshot.js';
import type { SnapshotBlobs } from './snapshot-blobs.js';

export const SNAPSHOT_PREFIX = 'etcd-snapshots/';
export const SNAPSHOT_DEFAULTS = { every: 6 * 3600_000, keep: 10 } as const;

export interface SnapshotRecord {
  id: string;
  /** the Drover cluster (topology) it belongs to */
  cluster: string;
  /** etcd's own cluster id (uint64, decimal): a restore refuses a snapshot of another */
  etcdClusterId: string;
  /** the member it was taken from, and its client URL */
  memberId: string;
  endpoint: string;
  revision: number;
  etcdVersion: string;
  size: number;
  /** SHA-256 (hex) of the file as stored */
  sha256: string;
  takenAt: string;
  trigger: 'schedule' | 'operator';
  /** the token name that asked for it (operator) */
  by?: string;
}

export interface SnapshotSchedule {
  every: number;
  keep: number;
  enabled: boolean;
}

export interface SnapshotBookPorts {
  store: Store;
  blobs: SnapshotBlobs;
  /** the clusters that run etcd now, with their schedule (the topology's, defaults filled in) */
  clusters(): Array<{ cluster: string; schedule: SnapshotSchedule }>;
  /** a cluster's etcd client URLs (members on live nodes, healthy first) and how to reach them */
  members(cluster: string): Promise<{ endpoints: string[]; tls: EtcdTls }>;
  emit(e: EventInput): void;
  clock: Clock;
  log: Logger;
  /** takes the snapshot (default: over etcd's JSON gateway); a test may pass another */
  take?: (endpoints: readonly string[], tls: EtcdTls) => Promise<TakenSnapshot>;
}

const isRecord = (v: unknown): v is SnapshotRecord =>
  !!v &&
  typeof (v as SnapshotRecord).id === 'string' &&
  typeof (v as SnapshotRecord).cluster === 'string' &&
  typeof (v as SnapshotRecord).sha256 === 'string';

const stamp = (ms: number) =>
  new Date(ms)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');

export class SnapshotBook {
  private readonly records = new Map<string, SnapshotRecord>();
  /** one snapshot at a time per cluster */
  private readonly running = new Map<string, Promise<SnapshotRecord>>();
  private timer: { stop(): void } | undefined;
  private ticking = false;

  constructor(private readonly p: SnapshotBookPorts) {}

  async load(): Promise<void> {
    for (const e of await this.p.store.list<unknown>(SNAPSHOT_PREFIX))
      if (isRecord(e.value)) this.records.set(e.value.id, e.value);
      else this.p.log.warn({ key: e.key }, 'ignoring a malformed etcd snapshot record');
  }

  /** The records, newest first; of one cluster when given. */
  list(cluster?: string): SnapshotRecord[] {
    return [...this.records.values()]
      .filter((r) => !cluster || r.cluster === cluster)
      .sort((a, b) => b.takenAt.localeCompare(a.takenAt) || b.id.localeCompare(a.id));
  }

  record(id: string): SnapshotRecord {
    const r = this.records.get(id);
    if (!r)
      throw coordinatorError(
        'DROVER_ERR_SNAPSHOT_NOT_FOUND',
        `no etcd snapshot with id ${JSON.stringify(id)}; list them with \`drover etcd snapshot list\``,
        { id },
      );
    return r;
  }

  /**
   * Takes a snapshot of `cluster` now (a second request while one runs waits for it and gets the
   * same record). Refused when the cluster runs no etcd.
   */
  save(cluster: string, trigger: SnapshotRecord['trigger'], by?: string): Promise<SnapshotRecord> {
    const cur = this.running.get(cluster);
    if (cur) return cur;
    const run = this.take(cluster, trigger, by).finally(() => this.running.delete(cluster));
    this.running.set(cluster, run);
    return run;
  }

  private async take(
    cluster: string,
    trigger: SnapshotRecord['trigger'],
    by?: string,
  ): Promise<SnapshotRecord> {
    if (!this.p.clusters().some((c) => c.cluster === cluster))
      throw coordinatorError(
        'DROVER_ERR_BAD_REQUEST',
        `cluster ${JSON.stringify(cluster)} runs no etcd: nothing to snapshot`,
        { field: 'cluster' },
      );
    const { endpoints, tls } = await this.p.members(cluster);
    const started = this.p.clock.now();
    let s: TakenSnapshot;
    try {
      s = await (this.p.take ?? takeEtcdSnapshot)(endpoints, tls);
    } catch (err) {
      this.p.emit({
        kind: 'etcd.snapshot-failed',
        severity: 'error',
        cluster,
        role: 'etcd',
        message: `etcd snapshot of cluster ${cluster} failed: ${(err as Error).message}`,
      });
      throw err;
    }
    const id = `${cluster}-${stamp(started)}-${randomBytes(3).toString('hex')}`;
    const rec: SnapshotRecord = {
      id,
      cluster,
      etcdClusterId: s.clusterId,
      memberId: s.memberId,
      endpoint: s.endpoint,
      revision: s.revision,
      etcdVersion: s.version,
      size: s.bytes.length,
      sha256: s.sha256,
      takenAt: new Date(started).toISOString(),
      trigger,
      ...(by ? { by } : {}),
    };
    // the file first: a record never points at nothing
    await this.p.blobs.put(id, s.bytes);
    await this.p.store.put(`${SNAPSHOT_PREFIX}${id}`, rec);
    this.records.set(id, rec);
    this.p.emit({
      kind: 'etcd.snapshot-saved',
      severity: 'info',
      cluster,
      role: 'etcd',
      message: `etcd snapshot ${id} of cluster ${cluster} saved: revision ${rec.revision}, ${rec.size} bytes, from ${rec.endpoint}, in ${this.p.blobs.describe}`,
      data: { id, revision: rec.revision, size: rec.size, sha256: rec.sha256, trigger },
    });
    return rec;
  }

  /**
   * The file, checked against its record (SHA-256) and etcd's own trailing hash before anyone
   * gets it: a damaged one is refused with DROVER_ERR_SNAPSHOT_DAMAGED.
   */
  async read(id: string): Promise<{ record: SnapshotRecord; bytes: Uint8Array }> {
    const record = this.record(id);
    const bytes = await this.p.blobs.get(id);
    if (!bytes)
      throw coordinatorError(
        'DROVER_ERR_SNAPSHOT_NOT_FOUND',
        `etcd snapshot ${id} is recorded but its file is missing from ${this.p.blobs.describe}`,
        { id },
      );
    const sum = createHash('sha256').update(bytes).digest('hex');
    if (sum !== record.sha256 || !snapshotIntact(bytes))
      throw coordinatorError(
        'DROVER_ERR_SNAPSHOT_DAMAGED',
        `etcd snapshot ${id} is damaged: its SHA-256 is ${sum.slice(0, 16)}…, the record says ${record.sha256.slice(0, 16)}…${sum === record.sha256 ? " (etcd's trailing hash does not match)" : ''}; it is not served`,
        { id, sha256: sum, recorded: record.sha256 },
      );
    return { record, bytes };
  }

  async delete(id: string, why = 'deleted'): Promise<SnapshotRecord> {
    const record = this.record(id);
    await this.p.store.delete(`${SNAPSHOT_PREFIX}${id}`);
    this.records.delete(id);
    await this.p.blobs
      .delete(id)
      .catch((err) =>
        this.p.log.warn({ err, id }, 'the snapshot record is gone but its file could not be deleted'),
      );
    this.p.emit({
      kind: 'etcd.snapshot-deleted',
      severity: 'info',
      cluster: record.cluster,
      role: 'etcd',
      message: `etcd snapshot ${id} of cluster ${record.cluster} ${why}`,
      data: { id },
    });
    return record;
  }

  /**
   * Which clusters are due a scheduled snapshot now, and which scheduled snapshots fall out of
   * their `keep`: decided from the records alone, acting on nothing.
   */
  due(now: number): { take: string[]; prune: string[] } {
    const take: string[] = [];
    const prune: string[] = [];
    for (const { cluster, schedule } of this.p.clusters()) {
      const scheduled = this.list(cluster).filter((r) => r.trigger === 'schedule');
      if (schedule.enabled) {
        const newest = scheduled[0] ? Date.parse(scheduled[0].takenAt) : Number.NEGATIVE_INFINITY;
        if (now - newest >= schedule.every) take.push(cluster);
      }
      for (const r of scheduled.slice(schedule.keep)) prune.push(r.id);
    }
    return { take, prune };
  }

  /** One schedule pass: takes what is due, then prunes. Failures are events, never thrown. */
  async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      for (const cluster of this.due(this.p.clock.now()).take)
        await this.save(cluster, 'schedule').catch((err) =>
          this.p.log.warn({ err, cluster }, 'scheduled etcd snapshot failed; trying again next pass'),
        );
      for (const id of this.due(this.p.clock.now()).prune)
        await this.delete(id, 'pruned (older than the newest scheduled ones kept)').catch((err) =>
          this.p.log.warn({ err, id }, 'cannot prune an etcd snapshot'),
        );
    } finally {
      this.ticking = false;
    }
  }

  /** Checks the schedule every `everyMs` (default a minute: the shortest schedule allowed). */
  start(everyMs = 60_000): void {
    this.timer ??= this.p.clock.every(everyMs, () => void this.tick());
  }

  stop(): void {
    this.timer?.stop();
    this.timer = undefined;
  }
}
