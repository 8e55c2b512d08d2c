import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { writeFileAtomic } from '../lib/atomic-file.js';
import { type Clock, systemClock } from '../lib/clock.js';
import type { Task } from '../protocol/index.js';
import { AgentError } from './errors.js';

interface LedgerFile {
  v: 1;
  /** task id → when it may be forgotten (ms): its expiry plus the skew allowance */
  seen: Record<string, number>;
}

export interface TaskLedgerOptions {
  dataDir: string;
  /** tolerated clock skew, ms: an id is kept until `expiresAt + skewMs` */
  skewMs: number;
  clock?: Clock;
  logger?: Logger;
  /** ids remembered at most (live ones; expired ones are dropped first); default 10,000 */
  maxEntries?: number;
}

/**
 * The task ids this agent has accepted, so a replayed task is refused. An id is remembered until
 * its task could no longer pass the expiry check anyway (`expiresAt + skew`), so the set is
 * bounded by the tasks of the last validity window. It is persisted in `<dataDir>/tasks-seen.json`
 * (atomically, before the task runs), so a restart of the agent does not open a replay window.
 * An unreadable ledger file is not trusted to be complete: until `skew` past the load, the agent
 * refuses every task issued before it loaded, which covers every task that could have been seen.
 */
export class TaskLedger {
  readonly path: string;
  private readonly clock: Clock;
  private readonly max: number;
  private seen = new Map<string, number>();
  /** tasks issued before this (ms) are refused: the history before it was lost */
  private notBefore = 0;
  private writing: Promise<void> = Promise.resolve();

  constructor(private readonly opts: TaskLedgerOptions) {
    this.path = join(opts.dataDir, 'tasks-seen.json');
    this.clock = opts.clock ?? systemClock;
    this.max = opts.maxEntries ?? 10_000;
  }

  async load(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      return this.lost(`cannot read ${this.path}: ${(err as Error).message}`);
    }
    let doc: LedgerFile;
    try {
      doc = JSON.parse(text) as LedgerFile;
      if (doc?.v !== 1 || typeof doc.seen !== 'object' || doc.seen === null)
        throw new Error('not a v1 ledger');
    } catch (err) {
      return this.lost(`${this.path} is corrupt (${(err as Error).message})`);
    }
    const now = this.clock.now();
    for (const [id, until] of Object.entries(doc.seen))
      if (typeof until === 'number' && until >= now) this.seen.set(id, until);
  }

  private lost(why: string): void {
    this.notBefore = this.clock.now();
    this.opts.logger?.error(
      { path: this.path },
      `${why}; refusing tasks issued before now, since their ids may have been seen`,
    );
  }

  /** Ids remembered right now (tests, diagnostics). */
  size(): number {
    return this.seen.size;
  }

  /**
   * Records a task about to run. Throws DROVER_ERR_TASK_REPLAYED for an id already seen (or a
   * task issued before a lost history), DROVER_ERR_TASK_LEDGER when it cannot be made durable.
   * The in-memory check and record happen together, so two copies arriving at once run once.
   */
  async admit(task: Task): Promise<void> {
    const now = this.clock.now();
    if (this.seen.has(task.id)) {
      throw new AgentError(
        'DROVER_ERR_TASK_REPLAYED',
        `task ${task.id} was already received; not running it again`,
      );
    }
    if (Date.parse(task.issuedAt) < this.notBefore) {
      throw new AgentError(
        'DROVER_ERR_TASK_REPLAYED',
        `task ${task.id} was issued before this agent lost its task ledger ${this.path}; it may be a replay, so it is not run`,
      );
    }
    for (const [id, until] of this.seen) if (until < now) this.seen.delete(id);
    if (this.seen.size >= this.max) {
      throw new AgentError(
        'DROVER_ERR_TASK_LEDGER',
        `task ledger holds ${this.seen.size} unexpired task ids (the limit); task ${task.id} not run`,
      );
    }
    this.seen.set(task.id, Date.parse(task.expiresAt) + this.opts.skewMs);
    try {
      await this.persist();
    } catch (err) {
      // the id stays remembered in memory: this process never runs it, but a restart might
      throw new AgentError(
        'DROVER_ERR_TASK_LEDGER',
        `cannot record task ${task.id} in ${this.path}: ${(err as Error).message}; not running it`,
      );
    }
  }

  /** Writes are serialised; each writes the whole (small) set as it is when it starts. */
  private persist(): Promise<void> {
    const next = this.writing.then(() => {
      const doc: LedgerFile = { v: 1, seen: Object.fromEntries(this.seen) };
      return writeFileAtomic(this.path, JSON.stringify(doc), 0o600);
    });
    this.writing = next.catch(() => {});
    return next;
  }
}
