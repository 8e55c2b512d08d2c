import { describe, expect, it } from 'vitest';
import { EventLog } from '../../coordinator/events.js';
import { MemoryStore } from '../../coordinator/store/index.js';
import { silentLogger } from '../../lib/logger.js';

const emitN = (log: EventLog, n: number) =>
  Array.from({ length: n }, (_, i) =>
    log.emit({ kind: 'node.joined', severity: 'info', nodeId: `n${i}`, message: `joined ${i}` }),
  );

describe('event log sequence numbers', () => {
  it('start at 1, and a restart after a crash that lost the newest events never reuses their numbers', async () => {
    const store = new MemoryStore();
    const first = new EventLog(store, silentLogger);
    await first.load();
    const before = emitN(first, 5);
    expect(before.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    await new Promise((r) => setImmediate(r));
    // the crash: the last two events never reached the disk
    await store.delete('events/000000000004');
    await store.delete('events/000000000005');
    const second = new EventLog(store, silentLogger);
    await second.load();
    expect(second.list().map((e) => e.seq)).toEqual([1, 2, 3]);
    const [next] = emitN(second, 1);
    expect(next!.seq).toBeGreaterThan(5); // a gap, not 4 again: a client that saw 4 and 5 misses nothing
    expect(second.list({ sinceSeq: 5 }).map((e) => e.seq)).toEqual([next!.seq]);
  });

  it('keeps reserving ahead as numbers are used, so a long run never outgrows its reservation', async () => {
    const store = new MemoryStore();
    const log = new EventLog(store, silentLogger, 100);
    await log.load();
    const all = emitN(log, 2500);
    await new Promise((r) => setImmediate(r));
    const reserved = (await store.get<{ seq: number }>('events-meta/reserved'))!.value.seq;
    expect(reserved).toBeGreaterThanOrEqual(all.at(-1)!.seq);
    const again = new EventLog(store, silentLogger, 100);
    await again.load();
    expect(emitN(again, 1)[0]!.seq).toBeGreaterThan(2500);
    expect(again.list()).toHaveLength(100); // the bounded history survives as before
  });
});
