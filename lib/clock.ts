/** Injectable time, so backoff, timeouts and liveness are tested exactly without sleeping. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  /**
   * Runs `fn` every `ms` (at least 1) until `stop()`: the first run after one period, each next
   * one a period after the last began, as `setInterval` does (a stalled process runs a late tick
   * once, not every one it missed). Never keeps the process alive.
   */
  every(ms: number, fn: () => void): Ticker;
}

/** A repeating timer from `Clock.every`. */
export interface Ticker {
  /** no more runs; safe to call twice */
  stop(): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
  every: (ms, fn) => {
    const t = setInterval(fn, Math.max(1, ms));
    t.unref?.();
    return { stop: () => clearInterval(t) };
  },
};

/** The clock's now as an ISO-8601 timestamp: how events, results and messages are stamped. */
export function isoNow(clock: Clock): string {
  return new Date(clock.now()).toISOString();
}

/** A manual clock for tests: time moves only when `advance()` is called. */
export class ManualClock implements Clock {
  private t: number;
  private seq = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();
  constructor(start = 0) {
    this.t = start;
  }
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }
  every(ms: number, fn: () => void): Ticker {
    const period = Math.max(1, ms);
    let stopped = false;
    let handle: unknown;
    const tick = () => {
      if (stopped) return;
      // the next run is a period after this one began (its `at`, or later after a stall)
      handle = this.setTimeout(tick, period);
      fn();
    };
    handle = this.setTimeout(tick, period);
    return {
      stop: () => {
        stopped = true;
        this.clearTimeout(handle);
      },
    };
  }
  /** Moves time forward, firing due timers in order (including ones they schedule). */
  advance(ms: number): void {
    const target = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= target && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      // timers overdue after a stall() fire late, as they do in a resumed process
      this.t = Math.max(this.t, next[1].at);
      next[1].fn();
    }
    this.t = target;
  }
  /**
   * Moves time forward WITHOUT firing timers, as a SIGSTOPped or paused process sees it: the
   * timers due meanwhile fire late, on the next `advance()`.
   */
  stall(ms: number): void {
    this.t += ms;
  }
  pending(): number {
    return this.timers.size;
  }
}

/** Waits `ms` of wall time; an abort ends the wait early (and leaves no listener behind). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
