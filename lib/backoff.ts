import type { Clock } from './clock.js';

/**
 * Exponential backoff as a policy object: jittered, capped, and reset after success.
 * `next()` returns the delay before the next attempt.
 */
export interface BackoffOptions {
  /** first delay; default 1000 ms */
  initialMs?: number;
  /** cap; default 60000 ms */
  maxMs?: number;
  /** growth factor; default 2 */
  factor?: number;
  /** 0..1, share of the delay that is randomised; default 0 (exact schedule) */
  jitter?: number;
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  readonly initialMs: number;
  readonly maxMs: number;
  readonly factor: number;
  readonly jitter: number;
  private readonly random: () => number;

  constructor(opts: BackoffOptions = {}) {
    this.initialMs = opts.initialMs ?? 1000;
    this.maxMs = opts.maxMs ?? 60_000;
    this.factor = opts.factor ?? 2;
    this.jitter = opts.jitter ?? 0;
    this.random = opts.random ?? Math.random;
    if (
      this.initialMs < 0 ||
      this.maxMs < this.initialMs ||
      this.factor < 1 ||
      this.jitter < 0 ||
      this.jitter > 1
    ) {
      throw new RangeError('invalid backoff options');
    }
  }

  /** The delay for the current attempt, then advances. */
  next(): number {
    const base = Math.min(this.maxMs, this.initialMs * this.factor ** this.attempt);
    if (base < this.maxMs) this.attempt++;
    if (this.jitter === 0) return base;
    const spread = base * this.jitter;
    return Math.max(0, Math.round(base - spread + this.random() * 2 * spread));
  }

  /** The delay `next()` would return without jitter, without advancing. */
  peek(): number {
    return Math.min(this.maxMs, this.initialMs * this.factor ** this.attempt);
  }

  get attempts(): number {
    return this.attempt;
  }

  reset(): void {
    this.attempt = 0;
  }
}

/**
 * A reconnect backoff measured on a clock: the wait before the next attempt is a function of how
 * long the outage has lasted (`delayFor(ageMs)`), not of how often it was asked, because a client
 * library may ask more than once per attempt. `down()` marks the outage's start (the first call
 * wins), `up()` ends it.
 */
export class OutageBackoff {
  private since: number | undefined;

  constructor(
    private readonly clock: Pick<Clock, 'now'>,
    private readonly delayFor: (ageMs: number) => number,
  ) {}

  down(): void {
    this.since ??= this.clock.now();
  }

  up(): void {
    this.since = undefined;
  }

  /** The outage's age on the clock, or undefined while connected. */
  get ageMs(): number | undefined {
    return this.since === undefined ? undefined : this.clock.now() - this.since;
  }

  /** The wait before the next attempt (starting the outage if `down()` was not called). */
  next(): number {
    this.down();
    return this.delayFor(this.ageMs!);
  }
}
