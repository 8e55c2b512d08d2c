/**
 * `drover etcd restore`: rebuilds a cluster's etcd from a snapshot after a lost quorum. The
 * decision is pure (restore-decide.ts); this module acts on it and drives the restore to the end:
 *
 *   1. checks, before touching anything: the snapshot is this cluster's (Drover cluster and etcd
 *      cluster id), its file matches its SHA-256, quorum is lost (unless forced), a member's node
 *      is up to restore onto;
 *   2. records the restore (`etcd-restores/<cluster>`) and has the cluster reconcile apply its
 *      overlay: every member gets a new epoch (a fresh data dir), the target a seed and a
 *      single-member `--initial-cluster`, the others are parked (rendered nowhere);
 *   3. the target's agent fetches the snapshot over the bus (`serveChunk`: only that node, only
 *      for that instance), restores it and starts a new cluster; the API servers point at it;
 *   4. the members are let back in one at a time, each once the cluster so far is healthy and its
 *      node is Ready: the membership reconcile adds it through the members so far.
 *
 * Each step is an event (`etcd.restore-*`). Progress is level-triggered from the record, checked
 * every second on the leader, so a coordinator that restarts or fails over mid-way carries on.
 */
import { randomBytes } from 'node:crypto';
import type { Clock } from '../../lib/clock.js';
import type { Logger } from '../../lib/logger.js';
import {
  type DroverError,
  type InstanceSpec,
  type NodePlan,
  PROTOCOL_VERSION,
  SNAPSHOT_CHUNK_BYTES,
  type SnapshotChunkReply,
  type SnapshotChunkRequest,
} from '../../protocol/index.js';
import { ETCD_CLIENT_PORT, ETCD_PEER_PORT, etcdInitialCluster } from '../catalog/roles/etcd.js';
import { coordinatorError } from '../errors.js';
import type { EventInput } from '../events.js';
import type { Assignment, NodeRecord } from '../model.js';
import type { Store } from '../store/types.js';
import { type EtcdAdminFactory, type EtcdTls, etcdReconfigNotReady } from './admin.js';
import {
  decideRestore,
  isActive,
  lineageOf,
  RESTORE_PREFIX,
  type RestoreMember,
  type RestoreRecord,
  restoreOverlay,
  targetInitialCluster,
} from './restore-decide.js';
import { type EtcdMemberStatus, memberStatus } from './snapshot.js';
import type { SnapshotBook } from './snapshot-book.js';
import { etcdMemberUrl } from './transport.js';

export interface EtcdRestorePorts {
  store: Store;
  snapshots: Pick<SnapshotBook, 'record' | 'read'>;
  /** a cluster's etcd assignments (parked ones too) and its nodes */
  assignments(cluster: string): Assignment[];
  node(id: string): NodeRecord | undefined;
  /** a node's liveness and the instances its last status reports */
  liveness(id: string):
    | {
        state: 'Ready' | 'Suspect' | 'Unreachable';
        status?: { instances: Array<{ id: string; epoch?: number; phase: string; health: string }> };
      }
    | undefined;
  /** how the cluster's members are reached: https with the coordinator's client certificate, or http */
  transport(cluster: string): Promise<{ scheme: 'http' | 'https'; tls: EtcdTls }>;
  admin: EtcdAdminFactory;
  /** a node's desired plan (what a chunk request is checked against) */
  desiredPlan(nodeId: string): NodePlan | undefined;
  enqueue(key: string): void;
  emit(e: EventInput): void;
  clock: Clock;
  log: Logger;
  /** a member's status (default over etcd's JSON gateway) */
  status?: (endpoint: string, tls: EtcdTls) => Promise<EtcdMemberStatus>;
}

export interface RestoreRequest {
  cluster: string;
  snapshotId: string;
  force?: boolean;
  dryRun?: boolean;
  by?: string;
}

export interface RestoreStarted {
  restore: RestoreRecord;
  steps: string[];
  dryRun: boolean;
}

const ETCD = 'etcd';
const healthyPhase = (p: string) => p === 'Healthy' || p === 'Running';
const runningPhase = (p: string) => ['Starting', 'Running', 'Healthy', 'Unhealthy'].includes(p);

export class EtcdRestore {
  private readonly records = new Map<string, { r: RestoreRecord; revision?: number }>();
  private timer: { stop(): void } | undefined;
  private ticking = false;
  /** the snapshot bytes being served, briefly (a seed fetches it chunk by chunk) */
  private served?: { id: string; bytes: Uint8Array; until: number };

  constructor(private readonly p: EtcdRestorePorts) {}

  async load(): Promise<void> {
    for (const e of await this.p.store.list<RestoreRecord>(RESTORE_PREFIX))
      if (e.value && typeof e.value.cluster === 'string' && e.value.target)
        this.records.set(e.value.cluster, { r: e.value, revision: e.revision });
      else this.p.log.warn({ key: e.key }, 'ignoring a malformed etcd restore record');
  }

  /** The cluster's latest restore (running or ended). */
  get(cluster: string): RestoreRecord | undefined {
    return this.records.get(cluster)?.r;
  }

  /** Whether a restore of the cluster is running (its plans skip the rollout gate). */
  running(cluster: string): boolean {
    return isActive(this.get(cluster));
  }

  list(): RestoreRecord[] {
    return [...this.records.values()].map((x) => x.r).sort((a, b) => b.startedAt.localeCompare(a.startedAt));
  }

  /** The cluster reconcile's overlay: the assignments as an active restore wants them. */
  overlay(cluster: string, current: Assignment[]): Assignment[] {
    return restoreOverlay(current, this.get(cluster));
  }

  /** What the decision sees of the members now: liveness, reported health, and their etcd cluster id. */
  private async members(cluster: string): Promise<{ members: RestoreMember[]; tls: boolean }> {
    const t = await this.p.transport(cluster);
    const status = this.p.status ?? memberStatus;
    const members = await Promise.all(
      this.p
        .assignments(cluster)
        .filter((a) => a.role === ETCD)
        .map(async (a): Promise<RestoreMember> => {
          const node = this.p.node(a.nodeId);
          const l = this.p.liveness(a.nodeId);
          const i = l?.status?.instances.find((x) => x.id === a.instanceId);
          let clusterId: string | undefined;
          if (node && l?.state !== 'Unreachable')
            clusterId = await status(etcdMemberUrl(t.scheme, node.address, ETCD_CLIENT_PORT), t.tls).then(
              (s) => s.clusterId,
              () => undefined,
            );
          return {
            assignment: a,
            node,
            state: l?.state,
            healthy: !!i && healthyPhase(i.phase) && i.health !== 'unhealthy',
            running: !!i && runningPhase(i.phase),
            ...(clusterId ? { clusterId } : {}),
          };
        }),
    );
    return { members, tls: t.scheme === 'https' };
  }

  /**
   * Starts a restore (or, with `dryRun`, says what it would do). Every refusal comes before
   * anything is written: DROVER_ERR_RESTORE_REFUSED, DROVER_ERR_SNAPSHOT_DAMAGED, or
   * DROVER_ERR_SNAPSHOT_NOT_FOUND.
   */
  async start(req: RestoreRequest): Promise<RestoreStarted> {
    const snapshot = this.p.snapshots.record(req.snapshotId);
    let damaged: string | undefined;
    if (snapshot.cluster === req.cluster)
      await this.p.snapshots.read(snapshot.id).catch((err) => {
        if ((err as DroverError).code !== 'DROVER_ERR_SNAPSHOT_DAMAGED') throw err;
        damaged = `${(err as Error).message}; nothing was touched`;
      });
    const { members, tls } = await this.members(req.cluster);
    const current = this.get(req.cluster);
    const d = decideRestore({
      cluster: req.cluster,
      snapshot,
      ...(damaged ? { damaged } : {}),
      members,
      force: req.force === true,
      ...(current ? { current } : {}),
      tls,
    });
    if (!d.ok) {
      if (!req.dryRun)
        this.p.emit({
          kind: 'etcd.restore-refused',
          severity: 'warning',
          cluster: req.cluster,
          role: ETCD,
          message: `etcd restore of cluster ${req.cluster} from snapshot ${snapshot.id} refused: ${d.reason}`,
          data: { snapshot: snapshot.id },
        });
      throw coordinatorError(d.code, d.reason, { snapshot: snapshot.id, cluster: req.cluster });
    }
    const now = new Date(this.p.clock.now()).toISOString();
    const t = d.target.assignment;
    const rec: RestoreRecord = {
      id: `restore-${req.cluster}-${now.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${randomBytes(2).toString('hex')}`,
      cluster: req.cluster,
      snapshotId: snapshot.id,
      sha256: snapshot.sha256,
      size: snapshot.size,
      revision: snapshot.revision,
      snapshotClusterId: snapshot.etcdClusterId,
      ...(d.clusterIdBefore ? { clusterIdBefore: d.clusterIdBefore } : {}),
      target: {
        instanceId: t.instanceId,
        nodeId: t.nodeId,
        epoch: t.epoch + 1,
        initialCluster: targetInitialCluster(d.target, tls),
      },
      parked: d.parked.map((m) => ({ instanceId: m.assignment.instanceId, epoch: m.assignment.epoch + 1 })),
      released: [],
      rejoined: [],
      phase: 'stopping',
      forced: req.force === true,
      ...(req.by ? { by: req.by } : {}),
      startedAt: now,
      lineage: lineageOf(current),
    };
    if (req.dryRun) return { restore: rec, steps: d.steps, dryRun: true };
    await this.save(rec);
    this.p.emit({
      kind: 'etcd.restore-started',
      severity: 'warning',
      cluster: req.cluster,
      role: ETCD,
      instanceId: t.instanceId,
      nodeId: t.nodeId,
      message: `etcd restore ${rec.id} of cluster ${req.cluster} started from snapshot ${snapshot.id} (revision ${snapshot.revision})${rec.forced ? ', forced while quorum held' : ''}: every member stops; ${t.instanceId} on ${t.nodeId} is restored as a new cluster, then ${rec.parked.map((x) => x.instanceId).join(', ') || 'no other member'} rejoin one at a time`,
      data: {
        restore: rec.id,
        snapshot: snapshot.id,
        healthy: d.healthy,
        members: members.length,
        by: req.by,
      },
    });
    this.p.enqueue(`cluster:${req.cluster}`);
    return { restore: rec, steps: d.steps, dryRun: false };
  }

  private async save(r: RestoreRecord): Promise<void> {
    const key = `${RESTORE_PREFIX}${r.cluster}`;
    const cur = this.records.get(r.cluster);
    const revision =
      cur?.revision !== undefined && cur.r.id === r.id
        ? await this.p.store.update(key, r, cur.revision)
        : await this.p.store.put(key, r);
    await this.p.store.flush();
    this.records.set(r.cluster, { r, revision });
  }

  /** One pass over the running restores: each moves on at most one step. Never throws. */
  async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      for (const { r } of [...this.records.values()])
        if (isActive(r))
          await this.step(r).catch((err) =>
            this.p.log.warn(
              { err, cluster: r.cluster, restore: r.id },
              'etcd restore step failed; trying again',
            ),
          );
    } finally {
      this.ticking = false;
    }
  }

  private memberOf(r: RestoreRecord, instanceId: string): { a: Assignment; node?: NodeRecord } | undefined {
    const a = this.p.assignments(r.cluster).find((x) => x.instanceId === instanceId);
    return a ? { a, node: this.p.node(a.nodeId) } : undefined;
  }

  private async step(r: RestoreRecord): Promise<void> {
    const t = await this.p.transport(r.cluster);
    const url = (n: NodeRecord, port = ETCD_CLIENT_PORT) => etcdMemberUrl(t.scheme, n.address, port);
    const now = () => new Date(this.p.clock.now()).toISOString();
    const target = this.memberOf(r, r.target.instanceId);
    if (!target?.node) return;
    if (r.phase === 'stopping') {
      // every other member stopped, or its node down: only then is the target restarted on the
      // snapshot, so no API server ever talks to the old cluster and the new one at once
      const still = r.parked.filter((p) => this.stillRuns(r, p.instanceId, p.epoch));
      if (still.length > 0) return;
      await this.save({ ...r, phase: 'seeding' });
      this.p.emit({
        kind: 'etcd.restore-stopped',
        severity: 'info',
        cluster: r.cluster,
        role: ETCD,
        message: `etcd restore ${r.id}: the other members are stopped (${r.parked.map((p) => p.instanceId).join(', ') || 'none'}); ${r.target.instanceId} on ${r.target.nodeId} restarts on snapshot ${r.snapshotId}`,
        data: { restore: r.id },
      });
      this.p.enqueue(`cluster:${r.cluster}`);
      return;
    }
    if (target.a.epoch !== r.target.epoch) return; // the overlay is not written yet
    const status = this.p.status ?? memberStatus;
    const admin = this.p.admin([url(target.node)], t.tls, this.p.clock);
    if (r.phase === 'seeding') {
      // the restored member: a single-member cluster (the old process would list its old peers)
      const st = await status(url(target.node), t.tls).catch(() => undefined);
      if (!st || (await admin.healthyEndpoints([url(target.node)])).length === 0) return;
      if ((await admin.memberList([url(target.node)]).catch(() => [])).length !== 1) return;
      const next: RestoreRecord = { ...r, phase: 'rejoining', seededAt: now(), clusterIdAfter: st.clusterId };
      await this.save(next);
      this.p.emit({
        kind: 'etcd.restore-seeded',
        severity: 'info',
        cluster: r.cluster,
        role: ETCD,
        instanceId: r.target.instanceId,
        nodeId: r.target.nodeId,
        message: `etcd restore ${r.id}: ${r.target.instanceId} on ${r.target.nodeId} serves snapshot ${r.snapshotId} as etcd cluster ${st.clusterId} (revision ${st.revision}); the API servers now point at it`,
        data: { restore: r.id, clusterId: st.clusterId, revision: st.revision },
      });
      this.p.enqueue(`cluster:${r.cluster}`);
      return;
    }
    // rejoining: confirm the member in flight, then let the next one in
    const inside = [r.target.instanceId, ...r.rejoined];
    const insideUrls = inside
      .map((id) => this.memberOf(r, id)?.node)
      .filter((n): n is NodeRecord => !!n)
      .map((n) => url(n));
    if (r.joining) {
      const j = this.memberOf(r, r.joining);
      if (!j?.node) return;
      const members = await admin.memberList(insideUrls).catch(() => []);
      const peer = url(j.node, ETCD_PEER_PORT);
      const listed = members.find((m) => m.peerURLs.includes(peer));
      const healthy = (await admin.healthyEndpoints([url(j.node)])).length === 1;
      // healthy in the restored cluster, not an old process still serving the old one
      const inside = await status(url(j.node), t.tls).then(
        (s) => s.clusterId === r.clusterIdAfter,
        () => false,
      );
      if (!listed || !healthy || !inside) return;
      const next: RestoreRecord = { ...r, joining: undefined, rejoined: [...r.rejoined, r.joining] };
      delete next.joining;
      await this.save(next);
      this.p.emit({
        kind: 'etcd.restore-member-rejoined',
        severity: 'info',
        cluster: r.cluster,
        role: ETCD,
        instanceId: r.joining,
        nodeId: j.a.nodeId,
        message: `etcd restore ${r.id}: ${r.joining} on ${j.a.nodeId} rejoined; ${next.rejoined.length + 1} of ${r.parked.length + 1} members are back`,
        data: { restore: r.id },
      });
      this.p.enqueue(`cluster:${r.cluster}`);
      return;
    }
    const waiting = r.parked.filter((x) => !r.rejoined.includes(x.instanceId));
    if (waiting.length === 0) {
      const done: RestoreRecord = { ...r, phase: 'complete', completedAt: now() };
      await this.save(done);
      const ms = this.p.clock.now() - Date.parse(r.startedAt);
      this.p.emit({
        kind: 'etcd.restore-complete',
        severity: 'info',
        cluster: r.cluster,
        role: ETCD,
        message: `etcd restore ${r.id} of cluster ${r.cluster} complete in ${(ms / 1000).toFixed(1)} s: all ${r.parked.length + 1} members healthy on snapshot ${r.snapshotId} (etcd cluster ${r.clusterIdAfter})`,
        data: { restore: r.id, durationMs: ms, clusterId: r.clusterIdAfter },
      });
      this.p.enqueue(`cluster:${r.cluster}`);
      return;
    }
    // every member inside healthy before the next one is added: etcd adds one voter at a time
    if ((await admin.healthyEndpoints(insideUrls)).length < insideUrls.length) return;
    const ready = waiting
      .map((x) => this.memberOf(r, x.instanceId))
      .filter(
        (m): m is { a: Assignment; node: NodeRecord } =>
          !!m?.node && this.p.liveness(m.a.nodeId)?.state === 'Ready',
      )
      .sort((a, b) => a.a.ordinal - b.a.ordinal)[0];
    if (!ready) return;
    // the member is added before its plan goes out, so it starts into a cluster that expects it;
    // etcd turns a second add down until the last joiner has been connected for a while: next pass
    const peer = url(ready.node, ETCD_PEER_PORT);
    const listed = await admin.memberList(insideUrls);
    if (!listed.some((m) => m.peerURLs.includes(peer)))
      try {
        await admin.memberAdd([peer], insideUrls, 0);
      } catch (err) {
        if (etcdReconfigNotReady(err)) return;
        throw err;
      }
    const list = etcdInitialCluster(
      [...inside.map((id) => this.memberOf(r, id)!), ready]
        .filter((m) => !!m.node)
        .map((m) => ({ assignment: m.a, node: m.node! })),
      t.scheme === 'https',
    );
    const next: RestoreRecord = {
      ...r,
      joining: ready.a.instanceId,
      released: [...r.released, { instanceId: ready.a.instanceId, initialCluster: list, at: now() }],
    };
    await this.save(next);
    this.p.emit({
      kind: 'etcd.restore-member-rejoining',
      severity: 'info',
      cluster: r.cluster,
      role: ETCD,
      instanceId: ready.a.instanceId,
      nodeId: ready.a.nodeId,
      message: `etcd restore ${r.id}: ${ready.a.instanceId} on ${ready.a.nodeId} rejoins with a fresh data dir: added as a member through ${inside.join(', ')}; it starts with initial-cluster-state=existing`,
      data: { restore: r.id, initialCluster: list },
    });
    this.p.enqueue(`cluster:${r.cluster}`);
  }

  /**
   * Whether a parked member may still run at an older epoch: its node is up and its last status
   * lists the instance running below the epoch the restore gave it.
   */
  private stillRuns(r: RestoreRecord, instanceId: string, epoch: number): boolean {
    const m = this.memberOf(r, instanceId);
    if (!m) return false;
    const l = this.p.liveness(m.a.nodeId);
    if (!l || l.state === 'Unreachable') return false;
    const i = l.status?.instances.find((x) => x.id === instanceId);
    return !!i && runningPhase(i.phase) && (i.epoch === undefined || i.epoch < epoch);
  }

  /**
   * A chunk of the snapshot a node's plan seeds an instance from. The node is the sender's
   * identity (its subject); only a node whose desired plan seeds that instance from that snapshot,
   * during a running restore, gets anything.
   */
  async serveChunk(req: SnapshotChunkRequest): Promise<SnapshotChunkReply> {
    const base = { v: PROTOCOL_VERSION, type: 'snapshot-chunk-reply' as const };
    const refuse = (code: string, message: string): SnapshotChunkReply => ({
      ...base,
      ok: false,
      error: { code, message },
    });
    const spec: InstanceSpec | undefined = this.p
      .desiredPlan(req.nodeId)
      ?.instances.find((i) => i.id === req.instanceId);
    const active = this.list().some(
      (r) =>
        (r.phase === 'seeding' || r.phase === 'rejoining') &&
        r.snapshotId === req.snapshotId &&
        r.target.nodeId === req.nodeId,
    );
    if (spec?.seed?.snapshotId !== req.snapshotId || !active) {
      this.p.log.warn(
        { nodeId: req.nodeId, instanceId: req.instanceId, snapshot: req.snapshotId },
        'refused a snapshot chunk: the node is not restoring that instance from it',
      );
      return refuse(
        'DROVER_ERR_FORBIDDEN',
        `node ${req.nodeId} is not restoring ${req.instanceId} from etcd snapshot ${req.snapshotId}`,
      );
    }
    const now = this.p.clock.now();
    if (this.served?.id !== req.snapshotId || this.served.until < now) {
      try {
        const { bytes } = await this.p.snapshots.read(req.snapshotId);
        this.served = { id: req.snapshotId, bytes, until: now + 5 * 60_000 };
      } catch (err) {
        return refuse((err as DroverError).code ?? 'DROVER_ERR_INTERNAL', (err as Error).message);
      }
    }
    const { bytes } = this.served;
    if (req.offset >= bytes.length)
      return refuse(
        'DROVER_ERR_BAD_REQUEST',
        `offset ${req.offset} is past the snapshot's ${bytes.length} bytes`,
      );
    const chunk = bytes.subarray(req.offset, req.offset + SNAPSHOT_CHUNK_BYTES);
    return {
      ...base,
      ok: true,
      offset: req.offset,
      size: bytes.length,
      data: Buffer.from(chunk).toString('base64'),
    };
  }

  /** Steps the running restores every `everyMs` (default 1 s). */
  startDriving(everyMs = 1000): void {
    this.timer ??= this.p.clock.every(everyMs, () => void this.tick());
  }

  stop(): void {
    this.timer?.stop();
    this.timer = undefined;
  }
}
