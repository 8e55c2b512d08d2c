import type { Clock } from '../../lib/clock.js';

export interface FailureLimiterOptions {
  /** failures allowed per client in one window; default 10 */
  maxFailures?: number;
  /** window length; default 60 s */
  windowMs?: number;
  /** clients tracked at most (oldest dropped first), so a spray of addresses cannot exhaust memory; default 10 000 */
  maxClients?: number;
}

/**
 * Counts failed authentications per client address in a fixed window. Once a client reaches the
 * limit, every request from it is refused until the window ends, so guessing tokens costs at least
 * `windowMs / maxFailures` per guess.
 */
export class FailureLimiter {
  private readonly windows = new Map<string, { start: number; failures: number }>();
  private readonly max: number;
  private readonly windowMs: number;
  private readonly maxClients: number;

  constructor(
    private readonly clock: Clock,
    opts: FailureLimiterOptions = {},
  ) {
    this.max = opts.maxFailures ?? 10;
    this.windowMs = opts.windowMs ?? 60_000;
    this.maxClients = opts.maxClients ?? 10_000;
  }

  /** Milliseconds until the client may try again, or 0 when it is not blocked. */
  blockedFor(client: string): number {
    const w = this.windows.get(client);
    if (!w) return 0;
    const left = w.start + this.windowMs - this.clock.now();
    if (left <= 0) {
      this.windows.delete(client);
      return 0;
    }
    return w.failures >= this.max ? left : 0;
  }

  fail(client: string): void {
    const now = this.clock.now();
    let w = this.windows.get(client);
    if (!w || now - w.start >= this.windowMs) {
      this.windows.delete(client);
      w = { start: now, failures: 0 };
      this.windows.set(client, w);
      if (this.windows.size > this.maxClients) {
        const oldest = this.windows.keys().next().value;
        if (oldest !== undefined) this.windows.delete(oldest);
      }
    }
    w.failures++;
  }
}
