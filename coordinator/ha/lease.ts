/**
 * Leader election on one KV key with a lease, the way client-go's leaderelection does it on a
 * Lease object (leaseDuration, renewDeadline, retryPeriod), with the KV revision as its
 * resourceVersion: every write is compare-and-set on the revision the writer last read.
 *
 * - A follower reads the key every `retryMs`. It remembers, on its own monotonic clock, when the
 *   record's revision last changed. Once it has seen the same revision for `leaseMs` (the holder
 *   stopped renewing), or there is no record, it tries to take the lease: create, or update at
 *   that revision with `term + 1`. Only one writer can win the compare-and-set.
 * - The leader renews every `retryMs`. Its lease is good until `renewDeadlineMs` after the moment
 *   it *sent* its last successful renewal. It fences itself (stops acting) at that deadline, from
 *   a timer of its own, whatever its renewals are doing (one may hang on a partitioned link).
 * - Why that is safe: a follower takes over no earlier than `leaseMs` after it first saw the last
 *   renewal, which is after the leader sent it; the leader stopped `leaseMs - renewDeadlineMs`
 *   before that. Clocks are never compared across hosts; only their rates must be close.
 * - `mayAct()` is the same check, synchronous, for callers to ask right before they act (a push
 *   after a process pause must not go out on a lease that ran out while the process slept).
 *
 * `decideLease` is the pure decision; `LeaseElector` runs it against a `LeaseKv` port.
 */
import type { Clock } from '../../lib/clock.js';
import type { Logger } from '../../lib/logger.js';

export interface LeaseRecord {
  /** the coordinator id holding the lease */
  holder: string;
  /** rises by one with every change of holder */
  term: number;
  /** the holder's API address, for redirects and `drover get coordinators` */
  api?: string;
  leaseMs: number;
  /** the holder's wall clock, for people; never used to decide */
  renewedAt: string;
  acquiredAt: string;
}

export interface LeaseEntry {
  value: LeaseRecord;
  revision: number;
}

/** The lease key, as a compare-and-set KV (coordinator/ha/kv.ts on JetStream). */
export interface LeaseKv {
  read(): Promise<LeaseEntry | undefined>;
  /** fails when the key exists (`LeaseConflict`) */
  create(v: LeaseRecord): Promise<number>;
  /** fails unless the key is at `revision` (`LeaseConflict`) */
  update(v: LeaseRecord, revision: number): Promise<number>;
}

export class LeaseConflict extends Error {}

export interface LeaseTimings {
  /** how long a silent holder keeps the lease, as followers measure it */
  leaseMs: number;
  /** the holder stops acting this long after its last successful renewal was sent (< leaseMs) */
  renewDeadlineMs: number;
  /** how often the holder renews and followers look */
  retryMs: number;
}

/** Timings from the lease length: renew deadline at 3/4 of it, a look every eighth. */
export function leaseTimings(leaseMs: number): LeaseTimings {
  return {
    leaseMs,
    renewDeadlineMs: Math.floor(leaseMs * 0.75),
    retryMs: Math.max(50, Math.floor(leaseMs / 8)),
  };
}

/** What a follower last saw of the key, on its own clock. */
export interface Observed {
  revision: number | undefined;
  /** when `revision` was first seen (this process's clock) */
  since: number;
}

export type LeaseStep =
  | { kind: 'wait'; holder?: string }
  | { kind: 'acquire'; term: number; revision?: number };

/**
 * Pure: a follower's next step, given the entry it just read and what it saw before. Returns the
 * updated observation too (a new revision restarts the count).
 */
export function decideLease(
  self: string,
  entry: LeaseEntry | undefined,
  seen: Observed | undefined,
  now: number,
  leaseMs: number,
): { step: LeaseStep; seen: Observed } {
  if (!entry) return { step: { kind: 'acquire', term: 1 }, seen: { revision: undefined, since: now } };
  const observed = seen && seen.revision === entry.revision ? seen : { revision: entry.revision, since: now };
  // our own record (a restart of this id after a crash), or one given up (no holder): take it
  // at once, under a new term
  if (entry.value.holder === self || entry.value.holder === '')
    return {
      step: { kind: 'acquire', term: entry.value.term + 1, revision: entry.revision },
      seen: observed,
    };
  if (now - observed.since >= leaseMs)
    return {
      step: { kind: 'acquire', term: entry.value.term + 1, revision: entry.revision },
      seen: observed,
    };
  return { step: { kind: 'wait', holder: entry.value.holder }, seen: observed };
}

export interface LeaseElectorOptions {
  id: string;
  api?: string;
  kv: LeaseKv;
  clock: Clock;
  timings: LeaseTimings;
  log: Logger;
  /** became the leader under `term` */
  onElected: (term: number) => void;
  /** lost the lease (deadline passed, or another holder took it): stop acting now */
  onLost: (reason: string) => void;
}

export interface LeaderView {
  holder?: string;
  term?: number;
  api?: string;
  /** ms since this process saw the lease last renewed */
  ageMs?: number;
}

export class LeaseElector {
  private seen?: Observed;
  private last?: LeaseEntry;
  private leading = false;
  private term = 0;
  private revision = 0;
  /** when the last successful renewal (or the acquisition) was sent */
  private renewSentAt = 0;
  private acquiredAt = '';
  private timer: unknown;
  private deadlineTimer: unknown;
  private stopped = false;
  private busy = false;
  private holdOffUntil = 0;

  constructor(private readonly o: LeaseElectorOptions) {}

  start(): void {
    this.tick();
  }

  get isLeader(): boolean {
    return this.leading;
  }

  get currentTerm(): number {
    return this.term;
  }

  /** True while the lease is ours and its renew deadline has not passed: ask right before acting. */
  mayAct(): boolean {
    return this.leading && this.o.clock.now() - this.renewSentAt < this.o.timings.renewDeadlineMs;
  }

  /** The leader as this process last saw it. */
  leader(): LeaderView {
    const now = this.o.clock.now();
    if (this.leading)
      return { holder: this.o.id, term: this.term, api: this.o.api, ageMs: now - this.renewSentAt };
    if (!this.last || this.last.value.holder === '') return { term: this.last?.value.term };
    return {
      holder: this.last.value.holder,
      term: this.last.value.term,
      api: this.last.value.api,
      ageMs: this.seen ? now - this.seen.since : undefined,
    };
  }

  /**
   * Gives the lease up (this process cannot lead: its leader term failed to start) and stays out
   * of the next election for one lease length, so another coordinator takes it.
   */
  async resign(): Promise<void> {
    const revision = this.revision;
    const wasLeading = this.leading;
    this.holdOffUntil = this.o.clock.now() + this.o.timings.leaseMs;
    if (wasLeading) this.lose('resigned');
    if (wasLeading && revision) await this.release(revision);
  }

  /** Stops; a leader fences itself, then gives the lease up so a follower need not wait it out. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.o.clock.clearTimeout(this.timer);
    const wasLeading = this.leading;
    if (wasLeading) this.lose('stopping');
    if (wasLeading && this.revision) await this.release(this.revision);
  }

  /** Hands the lease over: the record stays (its term with it), with no holder; the next taker needs not wait. */
  private async release(revision: number): Promise<void> {
    await this.o.kv.update({ ...this.record(this.term), holder: '' }, revision).catch(() => {});
  }

  private schedule(): void {
    if (!this.stopped) this.timer = this.o.clock.setTimeout(() => this.tick(), this.o.timings.retryMs);
  }

  private tick(): void {
    // one chain of ticks: a step in flight schedules the next one when it ends
    if (this.stopped || this.busy) return;
    this.busy = true;
    const run = this.leading ? this.renew() : this.look();
    void run
      .catch((err) => this.o.log.debug({ err }, 'lease step failed'))
      .finally(() => {
        this.busy = false;
        this.schedule();
      });
  }

  private record(term: number): LeaseRecord {
    const now = new Date().toISOString();
    return {
      holder: this.o.id,
      term,
      ...(this.o.api ? { api: this.o.api } : {}),
      leaseMs: this.o.timings.leaseMs,
      renewedAt: now,
      acquiredAt: this.acquiredAt || now,
    };
  }

  private async look(): Promise<void> {
    const entry = await this.o.kv.read();
    this.last = entry;
    const d = decideLease(this.o.id, entry, this.seen, this.o.clock.now(), this.o.timings.leaseMs);
    this.seen = d.seen;
    if (d.step.kind === 'wait' || this.o.clock.now() < this.holdOffUntil) return;
    const sentAt = this.o.clock.now();
    this.acquiredAt = new Date().toISOString();
    let revision: number;
    try {
      const rec = this.record(d.step.term);
      revision =
        d.step.revision === undefined
          ? await this.o.kv.create(rec)
          : await this.o.kv.update(rec, d.step.revision);
    } catch (err) {
      this.acquiredAt = '';
      if (err instanceof LeaseConflict) return; // another follower won
      throw err;
    }
    if (this.stopped) {
      this.term = d.step.term;
      await this.release(revision);
      return;
    }
    this.leading = true;
    this.term = d.step.term;
    this.revision = revision;
    this.renewed(sentAt);
    this.o.log.info(
      { term: this.term, previous: entry?.value.holder },
      'lease acquired: this coordinator leads',
    );
    this.o.onElected(this.term);
  }

  private async renew(): Promise<void> {
    const sentAt = this.o.clock.now();
    try {
      this.revision = await this.o.kv.update(this.record(this.term), this.revision);
    } catch (err) {
      if (err instanceof LeaseConflict && this.leading) {
        this.lose('another coordinator holds the lease now');
        return;
      }
      throw err;
    }
    if (this.leading) this.renewed(sentAt);
  }

  private renewed(sentAt: number): void {
    this.renewSentAt = sentAt;
    this.armDeadline();
  }

  /**
   * The fence's own timer. A timer may fire a millisecond before the wall clock says the
   * deadline passed (they are different clocks): then it is armed again for what is left, never
   * dropped, or a partitioned leader would stop acting (mayAct) without ever saying so.
   */
  private armDeadline(): void {
    this.o.clock.clearTimeout(this.deadlineTimer);
    if (!this.leading) return;
    const left = this.renewSentAt + this.o.timings.renewDeadlineMs - this.o.clock.now();
    this.deadlineTimer = this.o.clock.setTimeout(
      () => {
        if (!this.leading) return;
        if (this.mayAct()) this.armDeadline();
        else this.lose(`no renewal succeeded within ${this.o.timings.renewDeadlineMs} ms`);
      },
      Math.max(1, left + 1),
    );
  }

  private lose(reason: string): void {
    if (!this.leading) return;
    this.leading = false;
    this.o.clock.clearTimeout(this.deadlineTimer);
    this.seen = undefined;
    this.o.log.warn({ term: this.term, reason }, 'lease lost: this coordinator stops acting');
    this.o.onLost(reason);
  }
}
