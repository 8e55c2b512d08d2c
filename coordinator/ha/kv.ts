/**
 * The HA bucket on JetStream, beside the state bucket: the leader lease (`leader`) and one
 * presence record per coordinator (`member.<id>`), replicated like the store. Separate from the
 * state bucket so a lease renewal every few hundred ms never shows up in the store's revisions
 * or its watchers.
 */
import type { JetStreamManager, KV, NatsConnection } from 'nats';
import { StoreError } from '../store/errors.js';
import { withLeader } from '../store/jetstream.js';
import { LeaseConflict, type LeaseEntry, type LeaseKv, type LeaseRecord } from './lease.js';

export const HA_BUCKET_SCHEMA = 'drover-ha/v1';
const LEADER = 'leader';
const SEED = 'seed';
const MEMBER = (id: string) => `member.${id}`;

/** What each coordinator says of itself, every second. */
export interface MemberRecord {
  id: string;
  /** its API address (how the CLI and the other coordinators reach it) */
  api?: string;
  host: string;
  pid: number;
  startedAt: string;
  /** a random id per process start: a second process with the same id shows as a new incarnation */
  incarnation: string;
  /** the engine's epoch while it leads */
  epoch?: number;
  seenAt: string;
}

const wrongSequence = (err: unknown) =>
  /wrong last sequence|10071|key exists/i.test(String((err as Error)?.message ?? err));

export class HaBucket implements LeaseKv {
  private constructor(
    private readonly kv: KV,
    private readonly jsm: JetStreamManager,
    readonly name: string,
  ) {}

  /**
   * `timeoutMs` bounds each request: a lease renewal that went to a server that just died must
   * fail fast, so the next one (on the reconnected link) comes before the renew deadline.
   */
  static async open(nc: NatsConnection, name: string, replicas: number, timeoutMs = 1000): Promise<HaBucket> {
    const jsm = await withLeader(() => nc.jetstreamManager());
    const existing = await withLeader(() => jsm.streams.info(`KV_${name}`)).catch((err: Error) => {
      if (/not found|10059/i.test(err.message)) return undefined;
      throw err;
    });
    if (existing && existing.config.description !== HA_BUCKET_SCHEMA)
      throw new StoreError(
        'DROVER_ERR_STORE_VERSION',
        `bucket ${name} holds ${JSON.stringify(existing.config.description ?? 'no schema')}, not ${HA_BUCKET_SCHEMA}: refusing to use it`,
      );
    try {
      const kv = await withLeader(() =>
        nc.jetstream({ timeout: timeoutMs }).views.kv(name, {
          history: 1,
          replicas,
          description: HA_BUCKET_SCHEMA,
          timeout: timeoutMs,
        }),
      );
      return new HaBucket(kv, jsm, name);
    } catch (err) {
      throw new StoreError(
        'DROVER_ERR_STORE_OPTIONS',
        `cannot open the HA bucket ${name} with ${replicas} replica(s): ${(err as Error).message}`,
        { bucket: name, replicas },
        err,
      );
    }
  }

  async read(): Promise<LeaseEntry | undefined> {
    const e = await this.kv.get(LEADER);
    if (e?.operation !== 'PUT' || e.value.length === 0) return undefined;
    try {
      return { value: e.json<LeaseRecord>(), revision: e.revision };
    } catch {
      // an unreadable record is a dead one: a follower may take it over (at its revision)
      return {
        value: { holder: '', term: 0, leaseMs: 0, renewedAt: '', acquiredAt: '' },
        revision: e.revision,
      };
    }
  }

  async create(v: LeaseRecord): Promise<number> {
    try {
      return await this.kv.create(LEADER, JSON.stringify(v));
    } catch (err) {
      if (wrongSequence(err)) throw new LeaseConflict('the lease exists');
      throw err;
    }
  }

  async update(v: LeaseRecord, revision: number): Promise<number> {
    try {
      return await this.kv.update(LEADER, JSON.stringify(v), revision);
    } catch (err) {
      if (wrongSequence(err)) throw new LeaseConflict(`the lease is not at revision ${revision}`);
      throw err;
    }
  }

  /**
   * The fleet's plan-signing key fingerprint: recorded by the first coordinator, returned to
   * every later one (which must have the same key).
   */
  async claimSeed(fingerprint: string): Promise<string> {
    try {
      await withLeader(() => this.kv.create(SEED, JSON.stringify({ signingKey: fingerprint })));
      return fingerprint;
    } catch (err) {
      if (!wrongSequence(err) && !/did not answer in time/.test(String((err as Error).message))) throw err;
    }
    const e = await withLeader(() => this.kv.get(SEED));
    return e ? (e.json<{ signingKey: string }>().signingKey ?? '') : fingerprint;
  }

  async putMember(m: MemberRecord): Promise<void> {
    await this.kv.put(MEMBER(m.id), JSON.stringify(m));
  }

  async member(id: string): Promise<{ value: MemberRecord; revision: number } | undefined> {
    const e = await withLeader(() => this.kv.get(MEMBER(id)));
    if (e?.operation !== 'PUT' || e.value.length === 0) return undefined;
    return { value: e.json<MemberRecord>(), revision: e.revision };
  }

  async removeMember(id: string): Promise<void> {
    await this.kv.delete(MEMBER(id));
  }

  /**
   * Every presence record. The keys come from the stream's subject list (a STREAM.INFO request),
   * not from a consumer: with one server of three gone, nats-server 2.9 may not make a consumer
   * for a while, and `drover get coordinators` must still answer.
   */
  async members(): Promise<MemberRecord[]> {
    const out: MemberRecord[] = [];
    const prefix = `$KV.${this.name}.member.`;
    const info = await withLeader(() =>
      this.jsm.streams.info(`KV_${this.name}`, { subjects_filter: `${prefix}>` }),
    );
    const ids = Object.keys(info.state.subjects ?? {}).map((s) => s.slice(prefix.length));
    for (const id of ids.sort()) {
      const m = await this.member(id).catch(() => undefined);
      if (m) out.push(m.value);
    }
    return out;
  }
}
