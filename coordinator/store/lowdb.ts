import { readFile } from 'node:fs/promises';
import { type Adapter, Low } from 'lowdb';
import { writeFileAtomic } from '../../lib/atomic-file.js';
import { Backoff } from '../../lib/backoff.js';
import { type Clock, systemClock } from '../../lib/clock.js';
import type { Logger } from '../../lib/logger.js';
import { silentLogger } from '../../lib/logger.js';
import { BaseStore, DEFAULT_HISTORY_LIMIT, MAX_KEY_LENGTH } from './core.js';
import { StoreError } from './errors.js';

/** The schema version this build writes. Bump it and add a migration when the file layout changes. */
export const STORE_SCHEMA_VERSION = 1;

/** The file: `{ schemaVersion, revision, entries: { key: { revision, value } } }`. */
export interface StoreFile {
  schemaVersion: number;
  revision: number;
  entries: Record<string, { revision: number; value: unknown }>;
}

/** Migrates the whole parsed file from `from` to `from + 1`. Must return a new or mutated document. */
export interface StoreMigration {
  from: number;
  migrate(file: Record<string, unknown>): Record<string, unknown>;
}

export interface LowdbStoreOptions {
  /** the JSON file; created (with its directory) when missing */
  path: string;
  /** default silent */
  logger?: Logger;
  /**
   * Writes are batched: the first change after a write starts a timer of this many ms, and every
   * change until it fires goes into the same file write. Default 5.
   */
  flushDelayMs?: number;
  /** changes retained for `watch(fromRevision)` replay; default 1000 */
  historyLimit?: number;
  /** schema migrations, applied in order from the file's version to `schemaVersion` */
  migrations?: StoreMigration[];
  /** the version to migrate to; default STORE_SCHEMA_VERSION (tests of the migration hook raise it) */
  schemaVersion?: number;
  /**
   * false (default): create/update/put/delete resolve once the change is committed in memory and
   * visible to get/list/watch; call `flush()` where durability matters. true: they resolve once the
   * batch holding the change is on disk (concurrent callers still share one write).
   */
  awaitDurable?: boolean;
  /** default systemClock */
  clock?: Clock;
}

export const DEFAULT_LOWDB_STORE_OPTIONS = Object.freeze({
  flushDelayMs: 5,
  historyLimit: DEFAULT_HISTORY_LIMIT,
  awaitDurable: false,
});

export interface CompiledLowdbStoreOptions {
  readonly path: string;
  readonly logger: Logger;
  readonly flushDelayMs: number;
  readonly historyLimit: number;
  readonly migrations: readonly StoreMigration[];
  readonly schemaVersion: number;
  readonly awaitDurable: boolean;
  readonly clock: Clock;
}

const KNOWN = new Set([
  'path',
  'logger',
  'flushDelayMs',
  'historyLimit',
  'migrations',
  'schemaVersion',
  'awaitDurable',
  'clock',
]);

export function compileLowdbStoreOptions(opts: LowdbStoreOptions): CompiledLowdbStoreOptions {
  const bad = (field: string, msg: string) =>
    new StoreError('DROVER_ERR_STORE_OPTIONS', `store options: ${field}: ${msg}`, { field });
  if (typeof opts !== 'object' || opts === null) throw bad('', 'must be an object');
  for (const k of Object.keys(opts)) if (!KNOWN.has(k)) throw bad(k, 'unknown option');
  if (typeof opts.path !== 'string' || opts.path.length === 0)
    throw bad('path', 'must be a non-empty string');
  const flushDelayMs = opts.flushDelayMs ?? DEFAULT_LOWDB_STORE_OPTIONS.flushDelayMs;
  if (!Number.isFinite(flushDelayMs) || flushDelayMs < 0) throw bad('flushDelayMs', 'must be a number >= 0');
  const historyLimit = opts.historyLimit ?? DEFAULT_LOWDB_STORE_OPTIONS.historyLimit;
  if (!Number.isInteger(historyLimit) || historyLimit < 1)
    throw bad('historyLimit', 'must be an integer >= 1');
  const schemaVersion = opts.schemaVersion ?? STORE_SCHEMA_VERSION;
  if (!Number.isInteger(schemaVersion) || schemaVersion < 1)
    throw bad('schemaVersion', 'must be an integer >= 1');
  const migrations = opts.migrations ?? [];
  if (!Array.isArray(migrations)) throw bad('migrations', 'must be an array');
  const seen = new Set<number>();
  for (const [i, m] of migrations.entries()) {
    if (!Number.isInteger(m?.from) || typeof m?.migrate !== 'function')
      throw bad(`migrations[${i}]`, 'must be { from: integer, migrate(file) }');
    if (seen.has(m.from)) throw bad(`migrations[${i}]`, `a second migration from version ${m.from}`);
    seen.add(m.from);
  }
  return Object.freeze({
    path: opts.path,
    logger: opts.logger ?? silentLogger,
    flushDelayMs,
    historyLimit,
    migrations: Object.freeze([...migrations]),
    schemaVersion,
    awaitDurable: opts.awaitDurable ?? DEFAULT_LOWDB_STORE_OPTIONS.awaitDurable,
    clock: opts.clock ?? systemClock,
  });
}

/**
 * lowdb adapter: reads the file as JSON, writes it atomically (temp file, fsync, rename, fsync of
 * the directory) so a crash leaves the old file or the new one, never a torn mix. Counts writes.
 */
export class AtomicJsonFile implements Adapter<StoreFile> {
  writes = 0;
  bytesWritten = 0;
  constructor(readonly path: string) {}

  /** null when the file does not exist; throws StoreError DROVER_ERR_STORE_CORRUPT on anything else. */
  async read(): Promise<StoreFile | null> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw corrupt(this.path, `cannot be read: ${(err as Error).message}`, err);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw corrupt(
        this.path,
        text.trim() === '' ? 'is empty' : `is not valid JSON (${(err as Error).message})`,
        err,
      );
    }
    // lowdb reads null as "no file": a file holding `null` must not be mistaken for a missing one.
    if (parsed === null) throw corrupt(this.path, 'holds null instead of a store');
    return parsed as StoreFile;
  }

  async write(data: StoreFile): Promise<void> {
    await this.writeText(JSON.stringify(data));
  }

  /** Writes already-serialized file content (the store keeps each value's JSON, see LowdbStore). */
  async writeText(text: string): Promise<void> {
    await writeFileAtomic(this.path, text, 0o600);
    this.writes++;
    this.bytesWritten += Buffer.byteLength(text);
  }
}

function corrupt(path: string, what: string, cause?: unknown): StoreError {
  return new StoreError(
    'DROVER_ERR_STORE_CORRUPT',
    `store file ${path} ${what}; refusing to start. The file was left untouched: restore it from a backup or move it aside to start empty.`,
    { path },
    cause,
  );
}

/** Checks the parsed file's shape; returns a message naming the first problem, or undefined. */
function shapeProblem(f: unknown): string | undefined {
  if (typeof f !== 'object' || f === null || Array.isArray(f)) return 'is not a JSON object';
  const o = f as Record<string, unknown>;
  if (!Number.isInteger(o.schemaVersion) || (o.schemaVersion as number) < 1)
    return 'has no valid schemaVersion';
  if (!Number.isInteger(o.revision) || (o.revision as number) < 0) return 'has no valid revision';
  if (typeof o.entries !== 'object' || o.entries === null || Array.isArray(o.entries))
    return 'has no entries object';
  for (const [key, e] of Object.entries(o.entries as Record<string, unknown>)) {
    if (key.length === 0 || key.length > MAX_KEY_LENGTH)
      return `has an invalid key ${JSON.stringify(key.slice(0, 64))}`;
    const entry = e as { revision?: unknown; value?: unknown } | null;
    if (typeof entry !== 'object' || entry === null || !('value' in entry))
      return `entry ${JSON.stringify(key)} has no value`;
    if (
      !Number.isInteger(entry.revision) ||
      (entry.revision as number) < 1 ||
      (entry.revision as number) > (o.revision as number)
    )
      return `entry ${JSON.stringify(key)} has an invalid revision`;
  }
  return undefined;
}

export interface LowdbStoreStats {
  /** file writes done since open (including the initial one for a new file) */
  writes: number;
  bytesWritten: number;
  /** revision known to be on disk */
  durableRevision: number;
  /** consecutive failed writes (0 when healthy) */
  failures: number;
}

interface FlushWaiter {
  target: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * The default store: every key in one lowdb JSON file. lowdb's `Low` reads the file through the
 * atomic adapter; batched writes go through the same adapter's `writeText` with the file text
 * assembled from each value's cached JSON (see `serialize`).
 *
 * Durability: changes commit in memory first (visible to get/list/watch at once) and a write of the
 * whole file follows within `flushDelayMs`, so a burst of changes costs one write. Mutating calls
 * resolve after the in-memory commit unless `awaitDurable`; `flush()` resolves once everything
 * accepted so far is on disk. A failed write is logged and retried with backoff (100 ms to 5 s);
 * pending `flush()` calls reject with DROVER_ERR_STORE_WRITE meanwhile.
 *
 * The change history for `watch` replay is memory only: after a restart, watching from a revision
 * older than the file's revision reports DROVER_ERR_STORE_COMPACTED (re-list, then watch).
 */
export class LowdbStore extends BaseStore {
  private readonly adapter: AtomicJsonFile;
  private readonly opts: CompiledLowdbStoreOptions;
  private durableRev: number;
  private timer: unknown;
  private writing: Promise<void> | undefined;
  private waiters: FlushWaiter[] = [];
  private failures = 0;
  private readonly retry = new Backoff({ initialMs: 100, maxMs: 5000 });
  private closing: Promise<void> | undefined;

  /** Use `openLowdbStore()`. */
  constructor(opts: CompiledLowdbStoreOptions, adapter: AtomicJsonFile, file: StoreFile) {
    super({ logger: opts.logger, historyLimit: opts.historyLimit });
    this.opts = opts;
    this.adapter = adapter;
    for (const [key, e] of Object.entries(file.entries))
      this.entries.set(key, { value: e.value, revision: e.revision });
    this.rev = file.revision;
    this.compactedRev = file.revision;
    this.durableRev = file.revision;
  }

  get path(): string {
    return this.opts.path;
  }

  stats(): LowdbStoreStats {
    return {
      writes: this.adapter.writes,
      bytesWritten: this.adapter.bytesWritten,
      durableRevision: this.durableRev,
      failures: this.failures,
    };
  }

  /**
   * A timer for a pending write, kept referenced: a write the store has accepted must reach the
   * disk before the process may exit (a CLI such as `migrate` has nothing else keeping it alive).
   */
  private pendingTimer(fn: () => void, ms: number): unknown {
    const t = this.opts.clock.setTimeout(fn, ms);
    (t as { ref?: () => void } | undefined)?.ref?.();
    return t;
  }

  protected async afterCommit(): Promise<void> {
    if (this.timer === undefined && !this.closed)
      this.timer = this.pendingTimer(() => {
        this.timer = undefined;
        void this.writeNow();
      }, this.opts.flushDelayMs);
    if (this.opts.awaitDurable) await this.waitDurable(this.rev);
  }

  flush(): Promise<void> {
    if (this.closed && !this.closing)
      return Promise.reject(new StoreError('DROVER_ERR_STORE_CLOSED', 'the store is closed'));
    return this.waitDurable(this.rev, true);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      let error: unknown;
      try {
        await this.waitDurable(this.rev, true);
      } catch (err) {
        error = err;
        this.opts.logger.error(
          { err, path: this.opts.path },
          'store: final write failed; recent changes are lost',
        );
      }
      if (this.timer !== undefined) this.opts.clock.clearTimeout(this.timer);
      this.timer = undefined;
      this.shutdown();
      if (error) throw error;
    })();
    return this.closing;
  }

  private waitDurable(target: number, now = false): Promise<void> {
    if (this.durableRev >= target) return Promise.resolve();
    const p = new Promise<void>((resolve, reject) => this.waiters.push({ target, resolve, reject }));
    if (now) {
      if (this.timer !== undefined) this.opts.clock.clearTimeout(this.timer);
      this.timer = undefined;
      void this.writeNow();
    }
    return p;
  }

  /** Writes the current state; a call during a write chains one more write after it. */
  private writeNow(): Promise<void> {
    if (this.writing) {
      const after = this.writing.then(() => (this.durableRev < this.rev ? this.writeNow() : undefined));
      return after;
    }
    if (this.durableRev >= this.rev) {
      this.settle();
      return Promise.resolve();
    }
    const snapshotRev = this.rev;
    const text = this.serialize(snapshotRev);
    this.writing = this.adapter
      .writeText(text)
      .then(
        () => {
          this.durableRev = snapshotRev;
          this.failures = 0;
          this.retry.reset();
          this.settle();
        },
        (err: unknown) => {
          this.failures++;
          const wrapped = new StoreError(
            'DROVER_ERR_STORE_WRITE',
            `writing store file ${this.opts.path} failed: ${(err as Error).message}`,
            { path: this.opts.path },
            err,
          );
          this.opts.logger.error(
            { err, path: this.opts.path, failures: this.failures },
            'store write failed; retrying',
          );
          const waiters = this.waiters;
          this.waiters = [];
          for (const w of waiters) w.reject(wrapped);
          if (!this.closed && this.timer === undefined)
            this.timer = this.pendingTimer(() => {
              this.timer = undefined;
              void this.writeNow();
            }, this.retry.next());
        },
      )
      .finally(() => {
        this.writing = undefined;
      });
    return this.writing;
  }

  /**
   * The whole file as text, from each entry's cached JSON: re-serializing every value on every
   * batch cost ~250 ms of blocked event loop per write at 5,000 nodes (16 MB); concatenating the
   * cached pieces costs a fraction of that. Same bytes as JSON.stringify of the StoreFile.
   */
  private serialize(revision: number): string {
    const parts: string[] = [];
    for (const [key, e] of this.entries) {
      e.json ??= JSON.stringify(e.value);
      parts.push(`${JSON.stringify(key)}:{"revision":${e.revision},"value":${e.json}}`);
    }
    return `{"schemaVersion":${this.opts.schemaVersion},"revision":${revision},"entries":{${parts.join(',')}}}`;
  }

  private settle(): void {
    const keep: FlushWaiter[] = [];
    for (const w of this.waiters) w.target <= this.durableRev ? w.resolve() : keep.push(w);
    this.waiters = keep;
    // Changes committed during the write that just finished still need one; waiters or not.
    if (
      this.durableRev < this.rev &&
      this.timer === undefined &&
      !this.writing &&
      (keep.length > 0 || !this.closed)
    )
      this.timer = this.pendingTimer(
        () => {
          this.timer = undefined;
          void this.writeNow();
        },
        keep.length > 0 ? 0 : this.opts.flushDelayMs,
      );
  }
}

/**
 * Opens (or creates) the store file. A file that cannot be read, is not JSON, or is not a store
 * stops start-up with StoreError DROVER_ERR_STORE_CORRUPT naming the path, and is never replaced.
 * An older schema version is migrated (the original is kept as `<path>.v<N>.bak`); a newer one, or
 * one without a migration path, fails with DROVER_ERR_STORE_VERSION.
 */
export async function openLowdbStore(options: LowdbStoreOptions): Promise<LowdbStore> {
  const opts = compileLowdbStoreOptions(options);
  const adapter = new AtomicJsonFile(opts.path);
  const empty: StoreFile = { schemaVersion: opts.schemaVersion, revision: 0, entries: {} };
  const db = new Low<StoreFile>(adapter, empty);
  await db.read();
  const raw = db.data === empty ? null : db.data;
  let file: StoreFile;
  if (raw === null) {
    file = empty;
    try {
      // Write at once: a directory we cannot write to should stop start-up, not the first change.
      await adapter.write(file);
    } catch (err) {
      throw new StoreError(
        'DROVER_ERR_STORE_WRITE',
        `cannot create store file ${opts.path}: ${(err as Error).message}`,
        { path: opts.path },
        err,
      );
    }
    opts.logger.info({ path: opts.path }, 'store: created a new store file');
  } else {
    const problem = shapeProblem(raw);
    if (
      problem &&
      !(
        Number.isInteger((raw as StoreFile)?.schemaVersion) &&
        (raw as StoreFile).schemaVersion < opts.schemaVersion
      )
    )
      throw corrupt(opts.path, problem);
    file = await migrate(raw as unknown as Record<string, unknown>, opts, adapter);
  }
  return new LowdbStore(opts, adapter, file);
}

async function migrate(
  raw: Record<string, unknown>,
  opts: CompiledLowdbStoreOptions,
  adapter: AtomicJsonFile,
): Promise<StoreFile> {
  const from = raw.schemaVersion as number;
  if (from > opts.schemaVersion)
    throw new StoreError(
      'DROVER_ERR_STORE_VERSION',
      `store file ${opts.path} has schema version ${from}, newer than this build's ${opts.schemaVersion}; upgrade drover or restore a backup`,
      { path: opts.path, schemaVersion: from },
    );
  if (from === opts.schemaVersion) return raw as unknown as StoreFile;
  const original = JSON.stringify(raw);
  let doc = raw;
  for (let v = from; v < opts.schemaVersion; v++) {
    const m = opts.migrations.find((x) => x.from === v);
    if (!m)
      throw new StoreError(
        'DROVER_ERR_STORE_VERSION',
        `store file ${opts.path} has schema version ${from} and no migration from version ${v} exists`,
        { path: opts.path, schemaVersion: from },
      );
    try {
      doc = m.migrate(doc);
    } catch (err) {
      throw new StoreError(
        'DROVER_ERR_STORE_VERSION',
        `store file ${opts.path}: migration from version ${v} failed: ${(err as Error).message}`,
        { path: opts.path, schemaVersion: v },
        err,
      );
    }
    doc = { ...doc, schemaVersion: v + 1 };
  }
  const problem = shapeProblem(doc);
  if (problem)
    throw new StoreError(
      'DROVER_ERR_STORE_VERSION',
      `store file ${opts.path}: after migration the file ${problem}`,
      {
        path: opts.path,
      },
    );
  const backup = `${opts.path}.v${from}.bak`;
  await writeFileAtomic(backup, original, 0o600);
  await adapter.write(doc as unknown as StoreFile);
  opts.logger.info({ path: opts.path, from, to: opts.schemaVersion, backup }, 'store: migrated schema');
  return doc as unknown as StoreFile;
}
