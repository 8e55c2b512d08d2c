// Clock.every: the injected clock's repeating timer, on the manual clock and the system clock.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ManualClock, systemClock } from '../../lib/clock.js';

describe('Clock.every', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('on the manual clock: runs once a period, first after one period, until stopped', () => {
    const clock = new ManualClock(1000);
    const runs: number[] = [];
    const t = clock.every(100, () => runs.push(clock.now()));
    clock.advance(99);
    expect(runs).toEqual([]);
    clock.advance(1);
    expect(runs).toEqual([1100]);
    clock.advance(250);
    expect(runs).toEqual([1100, 1200, 1300]);
    t.stop();
    t.stop();
    clock.advance(1000);
    expect(runs).toEqual([1100, 1200, 1300]);
    expect(clock.pending()).toBe(0);
  });

  it('on the manual clock: after a stall the late run comes once, and the next a period after it', () => {
    const clock = new ManualClock(0);
    const runs: number[] = [];
    clock.every(100, () => runs.push(clock.now()));
    clock.stall(1000); // a paused process: nothing runs
    expect(runs).toEqual([]);
    clock.advance(0);
    expect(runs).toEqual([1000]);
    clock.advance(100);
    expect(runs).toEqual([1000, 1100]);
  });

  it('on the manual clock: a run that stops its own ticker is the last; a zero period is one millisecond', () => {
    const clock = new ManualClock(0);
    let n = 0;
    const t = clock.every(0, () => {
      if (++n === 3) t.stop();
    });
    clock.advance(10);
    expect(n).toBe(3);
    expect(clock.pending()).toBe(0);
  });

  it('on the system clock: an interval that does not hold the process, ended by stop()', () => {
    vi.useFakeTimers();
    let n = 0;
    const t = systemClock.every(1000, () => n++);
    vi.advanceTimersByTime(3000);
    expect(n).toBe(3);
    t.stop();
    vi.advanceTimersByTime(3000);
    expect(n).toBe(3);
    expect(vi.getTimerCount()).toBe(0);
  });
});
