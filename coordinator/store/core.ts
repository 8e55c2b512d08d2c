import type { Logger } from '../../lib/logger.js';
import { silentLogger } from '../../lib/logger.js';
import { StoreError } from './errors.js';
import type { Entry, Store, WatchEvent, Watcher } from './types.js';

/** A stored value: the JSON-cloned copy the store owns, never handed out as is. */
export interface StoredEntry {
  value: unknown;
  revision: number;
  /** the value as JSON text, kept so a file store does not serialize unchanged values again */
  json?: string;
}

export const MAX_KEY_LENGTH = 1024;
export const DEFAULT_HISTORY_LIMIT = 1000;

export function checkKey(key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length === 0)
    throw new StoreError('DROVER_ERR_STORE_BAD_KEY', 'store key must be a non-empty string', { key });
  if (key.length > MAX_KEY_LENGTH)
    throw new StoreError('DROVER_ERR_STORE_BAD_KEY', `store key longer than ${MAX_KEY_LENGTH} characters`, {
      key: key.slice(0, 64),
    });
  if (/[\u0000-\u001f\u007f]/.test(key))
    throw new StoreError(
      'DROVER_ERR_STORE_BAD_KEY',
      `store key ${JSON.stringify(key)} contains control characters`,
      {
        key,
      },
    );
}

/**
 * Values go through JSON on the way in, as they would into a file or a KV bucket, so every
 * implementation stores exactly the same thing and a caller mutating its object later changes nothing.
 */
export function toStored(key: string, value: unknown): { value: unknown; json: string } {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new StoreError(
      'DROVER_ERR_STORE_BAD_VALUE',
      `value for ${key} cannot be stored as JSON: ${(err as Error).message}`,
      { key },
      err,
    );
  }
  if (text === undefined)
    throw new StoreError(
      'DROVER_ERR_STORE_BAD_VALUE',
      `value for ${key} cannot be stored as JSON (${typeof value})`,
      {
        key,
      },
    );
  return { value: JSON.parse(text), json: text };
}

const copy = <T>(v: unknown): T => structuredClone(v) as T;

interface Subscription {
  prefix: string;
  fn: (e: WatchEvent<unknown>) => void;
  onError?: (err: Error) => void;
  queue: Array<WatchEvent<unknown> | Error>;
  scheduled: boolean;
  stopped: boolean;
}

/**
 * The in-memory heart shared by every local store: a key map with store-wide revisions, a bounded
 * change history for watch replay, and watchers. Subclasses persist (`afterCommit`) as they like.
 *
 * Watch delivery is always asynchronous (a microtask after the change or the `watch()` call) and
 * in revision order per watcher, so a callback never runs before `watch()` has returned.
 */
export abstract class BaseStore implements Store {
  protected readonly entries = new Map<string, StoredEntry>();
  protected rev = 0;
  /** events with revision <= compactedRev are no longer retained */
  protected compactedRev = 0;
  private readonly history: Array<WatchEvent<unknown>> = [];
  private readonly subs = new Set<Subscription>();
  protected closed = false;
  protected readonly log: Logger;
  protected readonly historyLimit: number;

  constructor(opts: { logger?: Logger; historyLimit?: number } = {}) {
    this.log = opts.logger ?? silentLogger;
    this.historyLimit = opts.historyLimit ?? DEFAULT_HISTORY_LIMIT;
  }

  /** Called after every committed change; persisting stores schedule a write. */
  protected abstract afterCommit(): Promise<void>;
  abstract flush(): Promise<void>;
  abstract close(): Promise<void>;

  revision(): number {
    return this.rev;
  }

  async get<T>(key: string): Promise<Entry<T> | undefined> {
    this.checkOpen();
    checkKey(key);
    const e = this.entries.get(key);
    return e ? { key, value: copy<T>(e.value), revision: e.revision } : undefined;
  }

  async list<T>(prefix: string): Promise<Array<Entry<T>>> {
    this.checkOpen();
    if (typeof prefix !== 'string')
      throw new StoreError('DROVER_ERR_STORE_BAD_KEY', 'list prefix must be a string', { prefix });
    const out: Array<Entry<T>> = [];
    for (const [key, e] of this.entries)
      if (key.startsWith(prefix)) out.push({ key, value: copy<T>(e.value), revision: e.revision });
    // Code-unit order, as NATS KV and most stores list keys; locale collation would differ per host.
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async create<T>(key: string, value: T): Promise<number> {
    this.checkOpen();
    checkKey(key);
    const stored = toStored(key, value);
    if (this.entries.has(key))
      throw new StoreError('DROVER_ERR_STORE_EXISTS', `${key} already exists`, { key });
    const r = this.commit('put', key, stored.value, stored.json);
    await this.afterCommit();
    return r;
  }

  async update<T>(key: string, value: T, expectedRevision: number): Promise<number> {
    this.checkOpen();
    checkKey(key);
    const stored = toStored(key, value);
    const e = this.entries.get(key);
    if (!e) throw new StoreError('DROVER_ERR_STORE_NOT_FOUND', `${key} does not exist`, { key });
    if (e.revision !== expectedRevision)
      throw new StoreError(
        'DROVER_ERR_STORE_CONFLICT',
        `${key} is at revision ${e.revision}, not ${expectedRevision}`,
        { key, revision: e.revision, expectedRevision },
      );
    const r = this.commit('put', key, stored.value, stored.json);
    await this.afterCommit();
    return r;
  }

  async put<T>(key: string, value: T): Promise<number> {
    this.checkOpen();
    checkKey(key);
    const stored = toStored(key, value);
    const r = this.commit('put', key, stored.value, stored.json);
    await this.afterCommit();
    return r;
  }

  async delete(key: string, expectedRevision?: number): Promise<void> {
    this.checkOpen();
    checkKey(key);
    const e = this.entries.get(key);
    if (expectedRevision !== undefined) {
      if (!e) throw new StoreError('DROVER_ERR_STORE_NOT_FOUND', `${key} does not exist`, { key });
      if (e.revision !== expectedRevision)
        throw new StoreError(
          'DROVER_ERR_STORE_CONFLICT',
          `${key} is at revision ${e.revision}, not ${expectedRevision}`,
          { key, revision: e.revision, expectedRevision },
        );
    }
    if (!e) return;
    this.commit('delete', key, undefined);
    await this.afterCommit();
  }

  watch<T>(
    prefix: string,
    fromRevision: number,
    fn: (e: WatchEvent<T>) => void,
    onError?: (err: Error) => void,
  ): Watcher {
    const sub: Subscription = {
      prefix,
      fn: fn as (e: WatchEvent<unknown>) => void,
      onError,
      queue: [],
      scheduled: false,
      stopped: false,
    };
    if (this.closed) {
      this.enqueue(sub, new StoreError('DROVER_ERR_STORE_CLOSED', 'the store is closed'));
      return this.stopper(sub);
    }
    if (!Number.isInteger(fromRevision) || fromRevision < 0) {
      this.enqueue(
        sub,
        new StoreError(
          'DROVER_ERR_STORE_BAD_KEY',
          `watch: fromRevision must be an integer >= 0, got ${fromRevision}`,
        ),
      );
      return this.stopper(sub);
    }
    if (fromRevision < this.compactedRev) {
      this.enqueue(
        sub,
        new StoreError(
          'DROVER_ERR_STORE_COMPACTED',
          `watch from revision ${fromRevision}: history before revision ${this.compactedRev + 1} is no longer retained`,
          { fromRevision, oldestRetained: this.compactedRev + 1 },
        ),
      );
      return this.stopper(sub);
    }
    for (const e of this.history)
      if (e.revision > fromRevision && e.key.startsWith(prefix)) sub.queue.push(e);
    this.subs.add(sub);
    this.schedule(sub);
    return {
      stop: () => {
        sub.stopped = true;
        this.subs.delete(sub);
      },
    };
  }

  private stopper(sub: Subscription): Watcher {
    return {
      stop: () => {
        sub.stopped = true;
      },
    };
  }

  /** Applies one change in memory and fans it out; returns the new revision. */
  protected commit(type: 'put' | 'delete', key: string, value: unknown, json?: string): number {
    const revision = ++this.rev;
    if (type === 'put') this.entries.set(key, { value, revision, json });
    else this.entries.delete(key);
    const event: WatchEvent<unknown> =
      type === 'put' ? { type, key, value, revision } : { type, key, revision };
    this.history.push(event);
    if (this.history.length > this.historyLimit) {
      const dropped = this.history.splice(0, this.history.length - this.historyLimit);
      this.compactedRev = dropped[dropped.length - 1]!.revision;
    }
    for (const sub of this.subs) if (key.startsWith(sub.prefix)) this.enqueue(sub, event);
    return revision;
  }

  protected checkOpen(): void {
    if (this.closed) throw new StoreError('DROVER_ERR_STORE_CLOSED', 'the store is closed');
  }

  /** Ends every watch (with DROVER_ERR_STORE_CLOSED to its onError) and refuses further calls. */
  protected shutdown(): void {
    this.closed = true;
    for (const sub of this.subs)
      this.enqueue(sub, new StoreError('DROVER_ERR_STORE_CLOSED', 'the store is closed'));
    this.subs.clear();
  }

  private enqueue(sub: Subscription, item: WatchEvent<unknown> | Error): void {
    sub.queue.push(item);
    this.schedule(sub);
  }

  private schedule(sub: Subscription): void {
    if (sub.scheduled) return;
    sub.scheduled = true;
    queueMicrotask(() => this.drain(sub));
  }

  private drain(sub: Subscription): void {
    sub.scheduled = false;
    while (sub.queue.length > 0 && !sub.stopped) {
      const item = sub.queue.shift()!;
      if (item instanceof Error) {
        sub.stopped = true;
        this.subs.delete(sub);
        if (sub.onError) this.safeCall(() => sub.onError!(item));
        else this.log.warn({ err: item, prefix: sub.prefix }, 'store watch ended');
        return;
      }
      const e: WatchEvent<unknown> =
        item.type === 'put'
          ? { ...item, value: copy(item.value) }
          : { type: item.type, key: item.key, revision: item.revision };
      this.safeCall(() => sub.fn(e), sub);
    }
  }

  private safeCall(f: () => void, sub?: Subscription): void {
    try {
      f();
    } catch (err) {
      // A throwing watcher must not break the store or other watchers.
      this.log.error({ err, prefix: sub?.prefix }, 'store watch callback threw');
    }
  }
}
