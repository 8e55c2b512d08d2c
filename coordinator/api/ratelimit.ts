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
 * The limiter keys one failed authentication counts against: always the client address
 * (`addr:<ip>`), and, when the presented token names a known token id but the secret is wrong,
 * that token id too (`token:<id>`). Only the address key blocks (see the API's auth hook); the
 * token key is counted for logs and metrics, so guessing at one operator's token cannot lock
 * that operator out.
 */
export function authFailureKeys(client: string, claimedTokenId?: string): string[] {
  return claimedTokenId === undefined
    ? [addressKey(client)]
    : [addressKey(client), `token:${claimedTokenId}`];
}

export function addressKey(client: string): string {
  return `addr:${client}`;
}

/**
 * Counts failed authentications per key (a client address, a token id) in a fixed window. Once a
 * key reaches the limit it is blocked until the window ends.
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

  /** Failures counted for the key in its current window. */
  failures(client: string): number {
    const w = this.windows.get(client);
    return w && this.clock.now() - w.start < this.windowMs ? w.failures : 0;
  }

  /** Counts one failure; answers the key's failures in the window so far. */
  fail(client: string): number {
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
    return w.failures;
  }
}
