import { Backoff } from '../lib/backoff.js';
import { type Clock, systemClock } from '../lib/clock.js';
import { type Logger, type ReconcileRef, reconcileLogger, silentLogger } from '../lib/logger.js';
import { TerminalError } from '../protocol/index.js';

export interface ReconcileResult {
  /** run this key again after this long, even if nothing changes */
  requeueAfterMs?: number;
}

/** One run of a key's reconcile: its id (unique in this queue) and a logger bound to it. */
export interface ReconcileRun extends ReconcileRef {
  /** the queue's logger bound to `{ reconcile: id, key }` (created on first use) */
  readonly log: Logger;
}

// biome-ignore lint/suspicious/noConfusingVoidType: reconcilers written as `async () => {}` return Promise<void>.
export type ReconcileFn = (key: string, run: ReconcileRun) => Promise<ReconcileResult | undefined | void>;

export interface WorkQueueOptions {
  /** keys reconciled at once across the queue; default 64 */
  concurrency?: number;
  /** per-key error backoff; defaults 200 ms doubling to 30 s */
  backoff?: { initialMs?: number; maxMs?: number };
  clock?: Clock;
  logger?: Logger;
  onOutcome?: (key: string, outcome: 'success' | 'error' | 'requeue' | 'terminal', ms: number) => void;
}

/**
 * A de-duplicating work queue in the controller-runtime mould: a key is queued at most once, at
 * most one reconcile per key is in flight, and a key added while in flight runs once more after.
 * Errors requeue with per-key backoff; `TerminalError` does not retry.
 */
export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly inFlight = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly timers = new Map<string, unknown>();
  private readonly backoffs = new Map<string, Backoff>();
  private readonly concurrency: number;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private closed = false;
  private idleWaiters: Array<() => void> = [];
  /** the reconciles running now, so close() can wait for them */
  private readonly running = new Set<Promise<void>>();
  private runs = 0;

  constructor(
    private readonly fn: ReconcileFn,
    private readonly opts: WorkQueueOptions = {},
  ) {
    this.concurrency = opts.concurrency ?? 64;
    this.clock = opts.clock ?? systemClock;
    this.logger = opts.logger ?? silentLogger;
  }

  add(key: string): void {
    if (this.closed) return;
    const t = this.timers.get(key);
    if (t !== undefined) {
      this.clock.clearTimeout(t);
      this.timers.delete(key);
    }
    if (this.inFlight.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.queue.push(key);
    this.pump();
  }

  addAfter(key: string, ms: number): void {
    if (this.closed || this.queued.has(key)) return;
    const existing = this.timers.get(key);
    if (existing !== undefined) this.clock.clearTimeout(existing);
    this.timers.set(
      key,
      this.clock.setTimeout(() => {
        this.timers.delete(key);
        this.add(key);
      }, ms),
    );
  }

  get length(): number {
    return this.queue.length;
  }

  get active(): number {
    return this.inFlight.size;
  }

  /** Resolves when nothing is queued or in flight (delayed requeues don't count). */
  idle(): Promise<void> {
    if (this.queue.length === 0 && this.inFlight.size === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /**
   * Stops the queue: nothing new starts, queued and delayed keys are dropped, and the promise
   * resolves once the reconciles in flight have finished (their outcome is still reported, but
   * they are not requeued), so a caller can flush the store after the last write.
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers.values()) this.clock.clearTimeout(t);
    this.timers.clear();
    this.queue.length = 0;
    this.queued.clear();
    this.dirty.clear();
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  private pump(): void {
    while (!this.closed && this.inFlight.size < this.concurrency && this.queue.length > 0) {
      const key = this.queue.shift()!;
      this.queued.delete(key);
      this.inFlight.add(key);
      const p = this.run(key);
      this.running.add(p);
      void p.finally(() => this.running.delete(p));
    }
    if (this.queue.length === 0 && this.inFlight.size === 0) {
      const w = this.idleWaiters.splice(0);
      for (const r of w) r();
    }
  }

  /** A run's handle: the child logger is made only when someone logs (most runs never do). */
  private newRun(key: string): ReconcileRun {
    const id = ++this.runs;
    const base = this.logger;
    let log: Logger | undefined;
    return {
      id,
      key,
      get log() {
        log ??= reconcileLogger(base, { id, key });
        return log;
      },
    };
  }

  private async run(key: string): Promise<void> {
    const started = this.clock.now();
    const r = this.newRun(key);
    let requeueMs: number | undefined;
    let outcome: 'success' | 'error' | 'requeue' | 'terminal' = 'success';
    try {
      const res = await this.fn(key, r);
      this.backoffs.delete(key);
      if (res?.requeueAfterMs !== undefined) {
        requeueMs = res.requeueAfterMs;
        outcome = 'requeue';
      }
    } catch (err) {
      if (err instanceof TerminalError) {
        outcome = 'terminal';
        r.log.warn({ err }, 'reconcile failed terminally; not retrying');
      } else {
        outcome = 'error';
        let b = this.backoffs.get(key);
        if (!b) {
          b = new Backoff({
            initialMs: this.opts.backoff?.initialMs ?? 200,
            maxMs: this.opts.backoff?.maxMs ?? 30_000,
            jitter: 0.2,
          });
          this.backoffs.set(key, b);
        }
        requeueMs = b.next();
        r.log.debug({ err, retryInMs: requeueMs }, 'reconcile failed; will retry');
      }
    } finally {
      this.inFlight.delete(key);
      this.opts.onOutcome?.(key, outcome, this.clock.now() - started);
      if (this.dirty.delete(key)) this.add(key);
      else if (requeueMs !== undefined) this.addAfter(key, requeueMs);
      this.pump();
    }
  }
}
