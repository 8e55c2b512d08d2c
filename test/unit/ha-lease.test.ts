import { describe, expect, it } from 'vitest';
import {
  decideLease,
  LeaseConflict,
  LeaseElector,
  type LeaseEntry,
  type LeaseKv,
  type LeaseRecord,
  leaseTimings,
} from '../../coordinator/ha/lease.js';
import { ManualClock } from '../../lib/clock.js';
import { silentLogger } from '../../lib/logger.js';

/**
 * The leader lease on a compare-and-set key (a fake of the narrow LeaseKv port; the real one on
 * JetStream is in test/integration/ha-coordinators.test.ts): the decision, and the safety
 * property that a partitioned leader stops acting before anyone else may start.
 */
const rec = (holder: string, term: number): LeaseRecord => ({
  holder,
  term,
  leaseMs: 2000,
  renewedAt: 't',
  acquiredAt: 't',
});

describe('decideLease (pure)', () => {
  it('no record: acquire under term 1', () => {
    expect(decideLease('a', undefined, undefined, 0, 2000).step).toEqual({ kind: 'acquire', term: 1 });
  });
  it('a held record waits until the same revision has been seen for the whole lease, then takes it under term + 1', () => {
    const e: LeaseEntry = { value: rec('b', 4), revision: 10 };
    const first = decideLease('a', e, undefined, 1000, 2000);
    expect(first.step).toEqual({ kind: 'wait', holder: 'b' });
    expect(decideLease('a', e, first.seen, 2999, 2000).step.kind).toBe('wait');
    expect(decideLease('a', e, first.seen, 3000, 2000).step).toEqual({
      kind: 'acquire',
      term: 5,
      revision: 10,
    });
    // a renewal (new revision) restarts the count
    const renewed = decideLease('a', { ...e, revision: 11 }, first.seen, 2900, 2000);
    expect(renewed.seen).toEqual({ revision: 11, since: 2900 });
    expect(decideLease('a', { ...e, revision: 11 }, renewed.seen, 4000, 2000).step.kind).toBe('wait');
  });
  it('a record given up (no holder) or our own (a restart of this id) is taken at once', () => {
    expect(decideLease('a', { value: rec('', 3), revision: 5 }, undefined, 0, 2000).step).toEqual({
      kind: 'acquire',
      term: 4,
      revision: 5,
    });
    expect(decideLease('a', { value: rec('a', 3), revision: 5 }, undefined, 0, 2000).step.kind).toBe(
      'acquire',
    );
  });
});

/** One CAS key; a partitioned client's calls never answer. */
class FakeKv {
  entry?: LeaseEntry;
  private rev = 0;
  readonly cut = new Set<string>();
  client(who: string): LeaseKv {
    const gate = <T>(fn: () => T): Promise<T> =>
      this.cut.has(who) ? new Promise<T>(() => {}) : Promise.resolve().then(fn);
    return {
      read: () => gate(() => (this.entry ? { ...this.entry, value: { ...this.entry.value } } : undefined)),
      create: (v) =>
        gate(() => {
          if (this.entry) throw new LeaseConflict('exists');
          this.entry = { value: v, revision: ++this.rev };
          return this.rev;
        }),
      update: (v, revision) =>
        gate(() => {
          if (this.entry?.revision !== revision) throw new LeaseConflict('moved');
          this.entry = { value: v, revision: ++this.rev };
          return this.rev;
        }),
    };
  }
}

const flush = async () => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

describe('LeaseElector (manual clock, fake CAS key)', () => {
  const timings = leaseTimings(2000); // renew deadline 1500, retry 250

  function pair(clock: ManualClock, kv: FakeKv) {
    const log: string[] = [];
    const make = (id: string) =>
      new LeaseElector({
        id,
        kv: kv.client(id),
        clock,
        timings,
        log: silentLogger,
        onElected: (term) => log.push(`${clock.now()} ${id} elected ${term}`),
        onLost: (why) => log.push(`${clock.now()} ${id} lost: ${why}`),
      });
    return { a: make('a'), b: make('b'), log };
  }

  it('a partitioned leader fences itself before the follower may take over; the follower takes it within the lease', async () => {
    for (const cutAt of [0, 90, 130, 240, 251, 777]) {
      const clock = new ManualClock(0);
      const kv = new FakeKv();
      const { a, b, log } = pair(clock, kv);
      a.start();
      await flush();
      expect(a.isLeader).toBe(true);
      b.start();
      for (let t = 0; t < 2000; t += 10) {
        clock.advance(10);
        await flush();
      }
      expect(a.isLeader && !b.isLeader).toBe(true);
      clock.advance(cutAt);
      await flush();
      kv.cut.add('a');
      const cutTime = clock.now();
      let bAt: number | undefined;
      let aFencedAt: number | undefined;
      for (let t = 0; t < 6000; t += 10) {
        clock.advance(10);
        await flush();
        // never two that may act
        expect(a.mayAct() && b.mayAct(), `cut at +${cutAt}: ${log.join('; ')}`).toBe(false);
        if (aFencedAt === undefined && !a.mayAct()) aFencedAt = clock.now();
        if (bAt === undefined && b.isLeader) bAt = clock.now();
      }
      expect(aFencedAt, log.join('; ')).toBeDefined();
      expect(bAt, log.join('; ')).toBeDefined();
      expect(aFencedAt!).toBeLessThan(bAt!);
      // within the lease (plus a look) of the cut
      expect(bAt! - cutTime).toBeLessThanOrEqual(timings.leaseMs + 2 * timings.retryMs);
      expect(kv.entry?.value).toMatchObject({ holder: 'b', term: 2 });
      expect(log.some((l) => / a lost: no renewal succeeded within 1500 ms/.test(l))).toBe(true);
    }
  });

  it('the fence fires even when its timer runs before the wall clock says the deadline passed', async () => {
    const manual = new ManualClock(1000);
    // timers on one clock, now() on another that runs 0.1 % slow (setTimeout's monotonic clock
    // against Date.now): a timer set for the deadline fires when now() still shows just before it
    const lagging = {
      now: () => Math.floor(manual.now() * 0.999),
      setTimeout: (fn: () => void, ms: number) => manual.setTimeout(fn, ms),
      clearTimeout: (h: unknown) => manual.clearTimeout(h),
      every: (ms: number, fn: () => void) => manual.every(ms, fn),
    };
    const kv = new FakeKv();
    const lost: string[] = [];
    const a = new LeaseElector({
      id: 'a',
      kv: kv.client('a'),
      clock: lagging,
      timings,
      log: silentLogger,
      onElected: () => {},
      onLost: (why) => lost.push(why),
    });
    a.start();
    await flush();
    expect(a.isLeader).toBe(true);
    kv.cut.add('a');
    for (let t = 0; t < 3000; t += 10) {
      manual.advance(10);
      await flush();
    }
    expect(a.mayAct()).toBe(false);
    expect(lost).toEqual([`no renewal succeeded within ${timings.renewDeadlineMs} ms`]);
  });

  it('a leader paused past its deadline may not act when it wakes, before any timer has run', async () => {
    const clock = new ManualClock(0);
    const kv = new FakeKv();
    const { a } = pair(clock, kv);
    a.start();
    await flush();
    expect(a.mayAct()).toBe(true);
    clock.stall(1600); // SIGSTOP: no timer fired
    expect(a.mayAct()).toBe(false);
  });

  it('stop hands the lease over: the follower takes it at once under a higher term', async () => {
    const clock = new ManualClock(0);
    const kv = new FakeKv();
    const { a, b, log } = pair(clock, kv);
    a.start();
    await flush();
    b.start();
    await flush();
    await a.stop();
    expect(a.mayAct()).toBe(false);
    clock.advance(timings.retryMs);
    await flush();
    expect(b.isLeader).toBe(true);
    expect(kv.entry?.value).toMatchObject({ holder: 'b', term: 2 });
    expect(log).toContain(`${timings.retryMs} b elected 2`);
  });

  it('a leader that finds another holder on renewal steps down at once', async () => {
    const clock = new ManualClock(0);
    const kv = new FakeKv();
    const { a, log } = pair(clock, kv);
    a.start();
    await flush();
    kv.entry = { value: rec('z', 9), revision: 99 };
    clock.advance(timings.retryMs);
    await flush();
    expect(a.isLeader).toBe(false);
    expect(log.at(-1)).toMatch(/a lost: another coordinator holds the lease now/);
  });
});
