/**
 * The `Store` on a NATS JetStream KV bucket: the replicated store for coordinator HA (R3 on a
 * three-server JetStream cluster), passing the same conformance suite as the lowdb file.
 *
 * - A key's revision is the stream sequence of its last write, so revisions are store-wide and
 *   only grow, as the Store contract wants. `revision()` is the last sequence this store has seen.
 * - Reads come from a local mirror fed by a watch of the whole bucket, so a follower's view stays
 *   current; every write waits until the mirror has seen it (read-your-writes).
 * - `watch(prefix, from)` replays the stream from `from + 1` with an ordered consumer. When a
 *   change after `from` is gone (beyond the bucket's per-key history, `history` ≤ 64), the watcher
 *   gets DROVER_ERR_STORE_COMPACTED, as with the file store.
 * - Store keys may hold any character but control characters; KV keys may not (`#`, `:`, spaces),
 *   so each key is escaped (`=XX` per UTF-8 byte outside `[A-Za-z0-9_/-]`) and filtered here.
 * - The bucket's description carries the schema version; a bucket of another schema is refused.
 *
 * Built on the `nats` 2.x package's KV API (see docs/architecture.md, "nats.js").
 */
import { type KV, type KvEntry, type NatsConnection, type QueuedIterator, StringCodec } from 'nats';
import type { Logger } from '../../lib/logger.js';
import { silentLogger } from '../../lib/logger.js';
import { checkKey, toStored } from './core.js';
import { StoreError } from './errors.js';
import type { Entry, Store, WatchEvent, Watcher } from './types.js';

export const JETSTREAM_STORE_SCHEMA = 'drover-store/v1';
/** JetStream keeps at most 64 revisions per key */
export const MAX_KV_HISTORY = 64;

export interface JetStreamStoreOptions {
  /** a connection with JetStream access (the coordinator's own); the store does not close it */
  nc: NatsConnection;
  /** bucket name; default `drover-state` */
  bucket?: string;
  /** replicas of the bucket's stream: 3 on a three-server cluster; default 1 */
  replicas?: number;
  /** revisions kept per key for watch replay (1–64); default 64 */
  history?: number;
  logger?: Logger;
}

const sc = StringCodec();
const SAFE = /^[A-Za-z0-9_/-]$/;

/** A store key as a KV key: `=XX` for every UTF-8 byte outside `[A-Za-z0-9_/-]`. */
export function encodeKvKey(key: string): string {
  let out = '';
  for (const ch of key) {
    if (SAFE.test(ch)) out += ch;
    else for (const b of Buffer.from(ch, 'utf8')) out += `=${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

export function decodeKvKey(k: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < k.length; i++) {
    if (k[i] === '=' && i + 2 < k.length) {
      bytes.push(Number.parseInt(k.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(...Buffer.from(k[i]!, 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8');
}

/**
 * JetStream answered "no responders" (503): no stream leader right now (one being elected after a
 * server died, or the stream's peers still forming). Nothing was written, so any call is safe to
 * try again.
 */
const noLeaderYet = (err: unknown) => {
  const e = err as { code?: string; message?: string } | undefined;
  return e?.code === '503' || /no responders|503/i.test(e?.message ?? '');
};

/** How long a write waits for the mirror's watch to show it before the watch is started again. */
const MIRROR_STALL_MS = 3000;

/** How long a call waits out a leader election before it fails. */
const LEADER_WAIT_MS = 15_000;

/** A request JetStream did not answer in time: it may or may not have been applied. */
const timedOut = (err: unknown) =>
  /TIMEOUT/i.test(String((err as { code?: string })?.code ?? (err as Error)?.message));

/**
 * Runs `fn` through a leader election: "no responders" is always retried; a timeout only when
 * `idempotent` (a put or a read: doing it twice changes nothing but a revision). A write that
 * timed out otherwise fails as DROVER_ERR_STORE_WRITE (transient: the caller re-reads and retries).
 */
export async function withLeader<T>(fn: () => Promise<T>, idempotent = true): Promise<T> {
  const deadline = Date.now() + LEADER_WAIT_MS;
  for (let delay = 50; ; delay = Math.min(delay * 2, 1000)) {
    try {
      return await fn();
    } catch (err) {
      const retry = noLeaderYet(err) || (idempotent && timedOut(err));
      if (!retry || Date.now() + delay > deadline) {
        if (timedOut(err))
          throw new StoreError(
            'DROVER_ERR_STORE_WRITE',
            'JetStream did not answer in time (a leader election?); re-read and retry',
            {},
            err,
          );
        throw err;
      }
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/** A compare-and-set JetStream refused, as the Store's conflict; any other error as it is. */
function asConflict(err: unknown, key: string, expectedRevision: number | undefined): unknown {
  if (!wrongSequence(err)) return err;
  return new StoreError('DROVER_ERR_STORE_CONFLICT', `key ${key} is not at revision ${expectedRevision}`, {
    key,
    expectedRevision,
  });
}

const wrongSequence = (err: unknown) =>
  /wrong last sequence|10071/i.test(String((err as Error)?.message ?? err));

interface Mirrored {
  value: unknown;
  revision: number;
}

export class JetStreamStore implements Store {
  private readonly mirror = new Map<string, Mirrored>();
  /** revisions of deleted keys, so a late put of an older revision does not bring one back */
  private readonly tombstones = new Map<string, number>();
  private mirrorRestart?: Promise<void>;
  private lastSeq = 0;
  private readonly seen: Array<{ seq: number; resolve: () => void }> = [];
  private readonly watchers = new Set<{ stop(): void; onError?: (e: Error) => void }>();
  private closing?: Promise<void>;
  private mirrorIter?: QueuedIterator<KvEntry>;
  private readonly log: Logger;

  private constructor(
    private readonly kv: KV,
    private readonly o: Required<Pick<JetStreamStoreOptions, 'bucket' | 'history'>> & JetStreamStoreOptions,
  ) {
    this.log = o.logger ?? silentLogger;
  }

  /** Opens (creating when missing) the bucket and loads the mirror. Errors name what is wrong. */
  static async open(opts: JetStreamStoreOptions): Promise<JetStreamStore> {
    const bucket = opts.bucket ?? 'drover-state';
    const history = opts.history ?? MAX_KV_HISTORY;
    if (!Number.isInteger(history) || history < 1 || history > MAX_KV_HISTORY)
      throw new StoreError('DROVER_ERR_STORE_OPTIONS', `history must be 1–${MAX_KV_HISTORY}, got ${history}`);
    const replicas = opts.replicas ?? 1;
    if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5)
      throw new StoreError('DROVER_ERR_STORE_OPTIONS', `replicas must be 1–5, got ${replicas}`);
    // a server that just (re)started may let the account info request time out: waited out
    const jsm = await withLeader(() => opts.nc.jetstreamManager()).catch((err: Error) => {
      throw new StoreError(
        'DROVER_ERR_STORE_OPTIONS',
        `JetStream is not available on the NATS servers: ${err.message}`,
        {},
        err,
      );
    });
    const stream = `KV_${bucket}`;
    // a server that just died leaves requests unanswered for a moment: wait that out, but a
    // missing stream is an answer (it is created below)
    const existing = await withLeader(() => jsm.streams.info(stream)).catch((err: Error) => {
      if (/not found|10059/i.test(err.message)) return undefined;
      throw new StoreError(
        'DROVER_ERR_STORE_OPTIONS',
        `cannot read bucket ${bucket} from JetStream: ${err.message}`,
        { bucket },
        err,
      );
    });
    if (existing) {
      if (existing.config.description !== JETSTREAM_STORE_SCHEMA)
        throw new StoreError(
          'DROVER_ERR_STORE_VERSION',
          `bucket ${bucket} holds ${JSON.stringify(existing.config.description ?? 'no schema')}, not ${JETSTREAM_STORE_SCHEMA}: refusing to use it`,
        );
    }
    let kv: KV;
    try {
      kv = await withLeader(() =>
        opts.nc.jetstream().views.kv(bucket, {
          history,
          replicas,
          description: JETSTREAM_STORE_SCHEMA,
        }),
      );
    } catch (err) {
      throw new StoreError(
        'DROVER_ERR_STORE_OPTIONS',
        `cannot open bucket ${bucket} with ${replicas} replica(s): ${(err as Error).message}`,
        { bucket, replicas },
        err,
      );
    }
    const store = new JetStreamStore(kv, { ...opts, bucket, history });
    const info = await withLeader(() => jsm.streams.info(stream));
    store.lastSeq = info.state.last_seq;
    await store.startMirror();
    return store;
  }

  private async startMirror(): Promise<void> {
    let ready!: () => void;
    const initialized = new Promise<void>((r) => {
      ready = r;
    });
    this.mirrorIter = await this.kv.watch({ key: '>', initializedFn: () => ready() });
    this.runMirror(this.mirrorIter);
    await initialized;
  }

  /** Feeds the mirror from `iter`; a watch that ends while the store is open is started again. */
  private runMirror(iter: QueuedIterator<KvEntry>): void {
    void (async () => {
      try {
        for await (const e of iter) this.applyToMirror(e);
      } catch (err) {
        if (!this.closing) this.log.error({ err }, 'the store mirror stopped');
      }
      if (!this.closing && this.mirrorIter === iter) setTimeout(() => void this.restartMirror(), 1000);
    })();
  }

  /**
   * The mirror takes a key's change only when it is newer than what it holds: the watch and this
   * store's own writes (applied at once, see `written`) may deliver one change twice, or out of
   * order.
   */
  private setMirrored(key: string, revision: number, value: unknown, deleted: boolean): void {
    const held = this.mirror.get(key)?.revision ?? this.tombstones.get(key) ?? 0;
    if (revision <= held) return;
    if (deleted) {
      this.mirror.delete(key);
      this.tombstones.set(key, revision);
    } else {
      this.mirror.set(key, { value, revision });
      this.tombstones.delete(key);
    }
  }

  private applyToMirror(e: KvEntry): void {
    const key = decodeKvKey(e.key);
    if (e.operation === 'PUT') {
      try {
        this.setMirrored(key, e.revision, JSON.parse(sc.decode(e.value)), false);
      } catch (err) {
        this.log.error({ err, key, revision: e.revision }, 'an unreadable value in the bucket; skipped');
      }
    } else this.setMirrored(key, e.revision, undefined, true);
    if (e.revision > this.lastSeq) this.lastSeq = e.revision;
    for (let i = this.seen.length - 1; i >= 0; i--)
      if (this.seen[i]!.seq <= this.lastSeq) this.seen.splice(i, 1)[0]!.resolve();
  }

  /**
   * Waits until the mirror holds every write the stream has acknowledged so far (its last
   * sequence), e.g. those of a leader that just died: a new leader loads its state only after.
   * Fails after `timeoutMs` naming how far behind the mirror is.
   */
  async catchUp(timeoutMs = 15_000): Promise<void> {
    this.live();
    const jsm = await this.o.nc.jetstreamManager();
    const info = await withLeader(() => jsm.streams.info(`KV_${this.o.bucket}`));
    const target = info.state.last_seq;
    // a mirror that is behind may be on a watch that died with a server: watch again meanwhile
    const kick = setTimeout(() => {
      if (this.lastSeq < target) void this.restartMirror();
    }, MIRROR_STALL_MS);
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.caughtUp(target),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new StoreError(
                'DROVER_ERR_STORE_WRITE',
                `the store's mirror is at sequence ${this.lastSeq}, behind the bucket's ${target}, after ${timeoutMs} ms`,
              ),
            ),
          timeoutMs,
        );
      }),
    ]).finally(() => {
      clearTimeout(timer);
      clearTimeout(kick);
    });
  }

  /** Resolves once the mirror has seen sequence `seq` (read-your-writes). */
  private caughtUp(seq: number): Promise<void> {
    if (this.lastSeq >= seq) return Promise.resolve();
    return new Promise((resolve) => this.seen.push({ seq, resolve }));
  }

  private live(): void {
    if (this.closing) throw new StoreError('DROVER_ERR_STORE_CLOSED', 'the store is closed');
  }

  revision(): number {
    return this.lastSeq;
  }

  async get<T>(key: string): Promise<Entry<T> | undefined> {
    this.live();
    checkKey(key);
    const m = this.mirror.get(key);
    return m ? { key, value: structuredClone(m.value) as T, revision: m.revision } : undefined;
  }

  async list<T>(prefix: string): Promise<Array<Entry<T>>> {
    this.live();
    const out: Array<Entry<T>> = [];
    for (const [key, m] of this.mirror)
      if (key.startsWith(prefix))
        out.push({ key, value: structuredClone(m.value) as T, revision: m.revision });
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  private prepare(key: string, value: unknown): Uint8Array {
    this.live();
    checkKey(key);
    return sc.encode(toStored(key, value).json);
  }

  /**
   * After a write JetStream acknowledged: the mirror holds it at once (read-your-writes), and the
   * call waits a moment for the watch to catch up to it. A watch that does not (its consumer was
   * on a server that died) is started again from the last sequence it saw; the write stands.
   */
  private async written(seq: number, key: string, data?: Uint8Array): Promise<number> {
    // exactly what the watch would deliver: the stored JSON, parsed
    this.setMirrored(key, seq, data ? JSON.parse(sc.decode(data)) : undefined, !data);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stalled = await Promise.race([
      this.caughtUp(seq).then(() => false),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(true), MIRROR_STALL_MS);
      }),
    ]).finally(() => clearTimeout(timer));
    if (stalled && !this.closing) {
      this.log.warn(
        { seq, mirror: this.lastSeq },
        'the store mirror fell behind its own write; watching again',
      );
      void this.restartMirror();
    }
    return seq;
  }

  /** A new watch of the bucket from the last sequence the mirror saw (one at a time). */
  private restartMirror(): Promise<void> {
    this.mirrorRestart ??= (async () => {
      try {
        this.mirrorIter?.stop();
        this.mirrorIter = await withLeader(() =>
          this.kv.watch({ key: '>', resumeFromRevision: this.lastSeq + 1 }),
        );
        this.runMirror(this.mirrorIter);
      } catch (err) {
        // JetStream is not answering yet (servers restarting): try again in a moment
        this.log.error({ err }, 'cannot watch the bucket again; retrying');
        if (!this.closing) setTimeout(() => void this.restartMirror(), 1000);
      } finally {
        this.mirrorRestart = undefined;
      }
    })();
    return this.mirrorRestart;
  }

  async create<T>(key: string, value: T): Promise<number> {
    const data = this.prepare(key, value);
    try {
      return await this.written(
        await withLeader(() => this.kv.create(encodeKvKey(key), data), false),
        key,
        data,
      );
    } catch (err) {
      if (wrongSequence(err))
        throw new StoreError('DROVER_ERR_STORE_EXISTS', `key ${key} already exists`, { key });
      throw err;
    }
  }

  async update<T>(key: string, value: T, expectedRevision: number): Promise<number> {
    const data = this.prepare(key, value);
    const k = encodeKvKey(key);
    const cur = await withLeader(() => this.kv.get(k));
    if (cur?.operation !== 'PUT')
      throw new StoreError('DROVER_ERR_STORE_NOT_FOUND', `key ${key} does not exist`, { key });
    // what JetStream holds now: the mirror takes it too (its watch may lag after a server died),
    // so a caller that re-reads after a conflict sees the current value
    try {
      this.setMirrored(key, cur.revision, JSON.parse(sc.decode(cur.value)), false);
    } catch {}
    try {
      // a present key's revision is at least 1; JetStream would take 0 as "no check"
      if (!(expectedRevision >= 1)) throw new Error('wrong last sequence');
      return await this.written(
        await withLeader(() => this.kv.update(k, data, expectedRevision), false),
        key,
        data,
      );
    } catch (err) {
      throw asConflict(err, key, expectedRevision);
    }
  }

  async put<T>(key: string, value: T): Promise<number> {
    const data = this.prepare(key, value);
    return this.written(await withLeader(() => this.kv.put(encodeKvKey(key), data)), key, data);
  }

  async delete(key: string, expectedRevision?: number): Promise<void> {
    this.live();
    checkKey(key);
    const k = encodeKvKey(key);
    const cur = await withLeader(() => this.kv.get(k));
    if (cur?.operation !== 'PUT') {
      if (expectedRevision === undefined) return;
      throw new StoreError('DROVER_ERR_STORE_NOT_FOUND', `key ${key} does not exist`, { key });
    }
    try {
      if (expectedRevision !== undefined && !(expectedRevision >= 1)) throw new Error('wrong last sequence');
      await withLeader(
        () =>
          this.kv.delete(k, expectedRevision === undefined ? undefined : { previousSeq: expectedRevision }),
        expectedRevision === undefined,
      );
    } catch (err) {
      throw asConflict(err, key, expectedRevision);
    }
    // the delete marker's sequence is not returned: read it back, then wait for the mirror
    const marker = await withLeader(() => this.kv.get(k));
    if (marker) await this.written(marker.revision, key);
  }

  watch<T>(
    prefix: string,
    fromRevision: number,
    fn: (e: WatchEvent<T>) => void,
    onError?: (err: Error) => void,
  ): Watcher {
    let stopped = false;
    let iter: QueuedIterator<KvEntry> | undefined;
    const handle = {
      stop: () => {
        stopped = true;
        iter?.stop();
        this.watchers.delete(handle);
      },
      onError,
    };
    const fail = (err: Error) => {
      if (stopped) return;
      handle.stop();
      try {
        onError?.(err);
      } catch {}
    };
    if (this.closing) {
      queueMicrotask(() => fail(new StoreError('DROVER_ERR_STORE_CLOSED', 'the store is closed')));
      return handle;
    }
    this.watchers.add(handle);
    void (async () => {
      try {
        const compacted = await this.compactedAfter(fromRevision);
        if (compacted) {
          fail(
            new StoreError(
              'DROVER_ERR_STORE_COMPACTED',
              `revision ${fromRevision} is older than the retained history (${compacted})`,
              { fromRevision },
            ),
          );
          return;
        }
        if (stopped) return;
        iter = await withLeader(() => this.kv.watch({ key: '>', resumeFromRevision: fromRevision + 1 }));
        if (stopped) {
          iter.stop();
          return;
        }
        for await (const e of iter) {
          if (stopped) break;
          if (e.revision <= fromRevision) continue;
          const key = decodeKvKey(e.key);
          if (!key.startsWith(prefix)) continue;
          let ev: WatchEvent<T>;
          if (e.operation === 'PUT') {
            try {
              ev = { type: 'put', key, value: JSON.parse(sc.decode(e.value)) as T, revision: e.revision };
            } catch {
              continue;
            }
          } else ev = { type: 'delete', key, revision: e.revision };
          try {
            fn(ev);
          } catch (err) {
            this.log.warn({ err, key }, 'a store watcher threw; it keeps its subscription');
          }
        }
      } catch (err) {
        fail(err instanceof Error ? err : new Error(String(err)));
      }
    })();
    return handle;
  }

  /** Why a watch from `from` would miss changes (messages after it gone), or undefined. */
  private async compactedAfter(from: number): Promise<string | undefined> {
    const jsm = await this.o.nc.jetstreamManager();
    const info = await withLeader(() => jsm.streams.info(`KV_${this.o.bucket}`, { deleted_details: true }));
    const s = info.state;
    if (from >= s.last_seq) return undefined;
    if (s.messages > 0 && s.first_seq > from + 1) return `the oldest retained revision is ${s.first_seq}`;
    const gone = (s.deleted ?? []).find((seq) => seq > from);
    return gone !== undefined ? `revision ${gone} is gone` : undefined;
  }

  async flush(): Promise<void> {
    // every write is acknowledged by the stream (and its replicas) before it returns
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.mirrorIter?.stop();
      const closed = new StoreError('DROVER_ERR_STORE_CLOSED', 'the store is closed');
      for (const w of [...this.watchers]) {
        w.stop();
        try {
          w.onError?.(closed);
        } catch {}
      }
      for (const s of this.seen.splice(0)) s.resolve();
    })();
    return this.closing;
  }
}

export function openJetStreamStore(opts: JetStreamStoreOptions): Promise<JetStreamStore> {
  return JetStreamStore.open(opts);
}
