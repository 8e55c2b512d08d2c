import { timingSafeEqual } from 'node:crypto';
import type { Clock } from '../lib/clock.js';
import type { Facts, Fingerprint, Labels, NodeState, NodeStatus, StatusDigest } from '../protocol/index.js';
import type { NodeRecord } from './model.js';
import type { Store } from './store/types.js';

/** What a node's agent last told us; memory only, never written per message. */
export interface Liveness {
  lastSeenAt: number;
  /** Ready while heartbeats flow, then Suspect, then Unreachable; undefined until the first heartbeat */
  state: 'Ready' | 'Suspect' | 'Unreachable';
  since: number;
  digest?: StatusDigest;
  status?: NodeStatus;
  /** last plan the agent confirmed, by push reply or digest */
  applied?: { generation: number; checksum: string; coordinatorEpoch: number };
  lastPushOkAt?: number;
  /** since when heartbeats name instance states the held status does not (a status lost on the way) */
  statusBehindSince?: number;
  /** when a push was last asked for to bring a lost status back (see Intake.statusLost) */
  statusResyncAt?: number;
  /** a push is due though the plan is applied: the agent answers it with its full status */
  statusResync?: boolean;
}

export interface LivenessTimings {
  heartbeatIntervalMs: number;
  suspectAfterMissed: number;
  unreachableAfterMs: number;
}

const KEY = (id: string) => `nodes/${id}`;

export function constantTimeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  if (ab.length !== bb.length) {
    // Compare anyway so the time does not reveal the length check short-circuit too cheaply.
    timingSafeEqual(ab, ab);
    return false;
  }
  return timingSafeEqual(ab, bb);
}

/** True when a registration's fingerprint proves it is the same machine as the recorded one. */
export function sameMachine(recorded: Fingerprint, incoming: Fingerprint): boolean {
  if (recorded.machineId && incoming.machineId) return recorded.machineId === incoming.machineId;
  const macs = new Set(recorded.macs.map((m) => m.toLowerCase()));
  return incoming.macs.some((m) => macs.has(m.toLowerCase()));
}

/**
 * Node records (persisted) plus liveness (memory). The effective state combines them: operator
 * states (Pending, Removed, Draining, Cordoned) come from the record, liveness (Suspect,
 * Unreachable) from heartbeats.
 */
export class NodeRegistry {
  private readonly records = new Map<string, { rec: NodeRecord; revision: number }>();
  private readonly live = new Map<string, Liveness>();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private timings: LivenessTimings,
  ) {}

  async load(): Promise<void> {
    for (const e of await this.store.list<NodeRecord>('nodes/'))
      this.records.set(e.value.id, { rec: e.value, revision: e.revision });
  }

  /**
   * A record as the store's watch delivers it (a follower coordinator: the leader wrote it);
   * without a value, the record was deleted.
   */
  applyRecord(id: string, rec: NodeRecord | undefined, revision: number): void {
    if (!rec) {
      this.records.delete(id);
      this.live.delete(id);
      return;
    }
    const cur = this.records.get(id);
    if (cur && cur.revision >= revision) return;
    this.records.set(id, { rec, revision });
  }

  get(id: string): NodeRecord | undefined {
    return this.records.get(id)?.rec;
  }

  all(): NodeRecord[] {
    return [...this.records.values()].map((r) => r.rec);
  }

  liveness(id: string): Liveness | undefined {
    return this.live.get(id);
  }

  /**
   * A live node with this advertise address, other than `exceptId`. Hostnames are not compared:
   * duplicates are common (labs, cloned images) and prove nothing; an address is a host's.
   */
  findByAddress(address: string, exceptId: string): NodeRecord | undefined {
    for (const { rec } of this.records.values()) {
      if (rec.id !== exceptId && rec.state !== 'Removed' && rec.address === address) return rec;
    }
    return undefined;
  }

  /** Creates or replaces the record (compare-and-set against the revision we hold). */
  async save(rec: NodeRecord): Promise<void> {
    const cur = this.records.get(rec.id);
    rec.updatedAt = new Date(this.clock.now()).toISOString();
    const revision = cur
      ? await this.store.update(KEY(rec.id), rec, cur.revision)
      : await this.store.create(KEY(rec.id), rec);
    this.records.set(rec.id, { rec, revision });
  }

  /**
   * Changes a known record by `fn` (an operator's cordon, drain, approve): when another write
   * came first (the store's compare-and-set fails: a report in flight, a coordinator that just
   * took over), the record is read again from the store and `fn` applied to it, up to `attempts`
   * times. Returns the record as written.
   */
  async change(id: string, fn: (rec: NodeRecord) => NodeRecord, attempts = 3): Promise<NodeRecord> {
    for (let i = 1; ; i++) {
      const cur = this.records.get(id);
      if (!cur) throw new Error(`no node record ${id}`);
      const next = fn(cur.rec);
      try {
        await this.save(next);
        return next;
      } catch (err) {
        if ((err as { code?: string }).code !== 'DROVER_ERR_STORE_CONFLICT' || i >= attempts) throw err;
        const fresh = await this.store.get<NodeRecord>(KEY(id));
        if (!fresh) throw err;
        this.records.set(id, { rec: fresh.value, revision: fresh.revision });
      }
    }
  }

  async forget(id: string): Promise<void> {
    const cur = this.records.get(id);
    if (!cur) return;
    await this.store.delete(KEY(id), cur.revision);
    this.records.delete(id);
    this.live.delete(id);
  }

  /** Effective lifecycle state as operators and placement see it. */
  effectiveState(rec: NodeRecord): NodeState {
    if (rec.state === 'Removed' || rec.state === 'Pending' || !rec.approved)
      return rec.approved ? rec.state : 'Pending';
    const l = this.live.get(rec.id);
    if (!l) return 'Unreachable';
    if (l.state !== 'Ready') return l.state;
    if (rec.state === 'Draining') return 'Draining';
    if (rec.cordoned) return 'Cordoned';
    return 'Ready';
  }

  /** Records a heartbeat; returns the previous liveness state if it changed. */
  heartbeat(id: string, digest?: StatusDigest): Liveness['state'] | 'new' | undefined {
    const now = this.clock.now();
    const l = this.live.get(id);
    if (!l) {
      this.live.set(id, { lastSeenAt: now, state: 'Ready', since: now, digest });
      return 'new';
    }
    l.lastSeenAt = now;
    if (digest) l.digest = digest;
    if (l.state !== 'Ready') {
      const prev = l.state;
      l.state = 'Ready';
      l.since = now;
      return prev;
    }
    return undefined;
  }

  /** Moves silent nodes to Suspect then Unreachable; returns the transitions. O(nodes). */
  sweep(): Array<{ id: string; from: Liveness['state']; to: Liveness['state']; silentMs: number }> {
    const now = this.clock.now();
    const suspectMs = this.timings.heartbeatIntervalMs * this.timings.suspectAfterMissed;
    const out: Array<{ id: string; from: Liveness['state']; to: Liveness['state']; silentMs: number }> = [];
    for (const [id, l] of this.live) {
      const silent = now - l.lastSeenAt;
      const to: Liveness['state'] =
        silent >= this.timings.unreachableAfterMs ? 'Unreachable' : silent >= suspectMs ? 'Suspect' : 'Ready';
      if (to !== l.state && to !== 'Ready') {
        out.push({ id, from: l.state, to, silentMs: silent });
        l.state = to;
        l.since = now;
      }
    }
    return out;
  }

  /**
   * After a stall of the coordinator itself (coordinator/liveness-rebase.ts): every node not
   * already Unreachable counts as heard from at `now`. Returns how many were re-based.
   */
  rebaseLiveness(now: number): number {
    let n = 0;
    for (const l of this.live.values()) {
      if (l.state === 'Unreachable') continue;
      if (l.lastSeenAt < now) l.lastSeenAt = now;
      n++;
    }
    return n;
  }

  setTimings(t: LivenessTimings): void {
    this.timings = t;
  }

  static newRecord(input: {
    id: string;
    hostname: string;
    address: string;
    labels: Labels;
    facts: Facts;
    fingerprint: Fingerprint;
    approved: boolean;
    now: string;
    cluster?: string;
  }): NodeRecord {
    return {
      id: input.id,
      hostname: input.hostname,
      address: input.address,
      labels: input.labels,
      state: input.approved ? 'Ready' : 'Pending',
      facts: input.facts,
      fingerprint: input.fingerprint,
      approved: input.approved,
      cordoned: false,
      createdAt: input.now,
      updatedAt: input.now,
      cluster: input.cluster,
    };
  }
}
