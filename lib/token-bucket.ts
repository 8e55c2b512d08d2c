import type { Clock } from './clock.js';

/**
 * A token bucket: `ratePerSec` tokens a second, at most `burst` saved up. `take()` spends one and
 * says whether there was one; `retryAfterMs()` says when the next one comes. Pure arithmetic on
 * the injected clock, no timers.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly clock: Clock,
    readonly ratePerSec: number,
    readonly burst: number,
  ) {
    if (!(ratePerSec > 0) || !(burst >= 1)) throw new TypeError('TokenBucket: rate > 0 and burst >= 1');
    this.tokens = burst;
    this.last = clock.now();
  }

  private refill(): void {
    const now = this.clock.now();
    if (now > this.last)
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.ratePerSec);
    this.last = now;
  }

  take(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  retryAfterMs(): number {
    this.refill();
    return this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) / this.ratePerSec) * 1000);
  }
}
