// WorkQueue.close(): nothing new starts, and the promise waits for the reconciles in flight.
import { describe, expect, it } from 'vitest';
import { WorkQueue } from '../../coordinator/workqueue.js';
import { ManualClock } from '../../lib/clock.js';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe('WorkQueue.close', () => {
  it('waits for the reconciles in flight and starts no queued, dirty or delayed key', async () => {
    const clock = new ManualClock();
    const gates = new Map<string, ReturnType<typeof deferred>>();
    const started: string[] = [];
    const finished: string[] = [];
    const q = new WorkQueue(
      async (key) => {
        started.push(key);
        const g = deferred();
        gates.set(key, g);
        await g.promise;
        finished.push(key);
      },
      { concurrency: 2, clock },
    );
    q.add('a');
    q.add('b');
    q.add('c'); // queued behind the concurrency limit
    q.add('a'); // dirty: would run again after the first pass
    q.addAfter('d', 1000); // delayed
    await Promise.resolve();
    expect(started).toEqual(['a', 'b']);

    let closed = false;
    const closing = q.close().then(() => {
      closed = true;
    });
    await new Promise((r) => setImmediate(r));
    expect(closed).toBe(false);

    gates.get('a')!.resolve();
    await new Promise((r) => setImmediate(r));
    expect(finished).toEqual(['a']);
    expect(closed).toBe(false); // b is still running

    gates.get('b')!.resolve();
    await closing;
    expect(closed).toBe(true);
    expect(finished).toEqual(['a', 'b']);

    clock.advance(5000);
    q.add('e');
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual(['a', 'b']);
    expect(q.active).toBe(0);
  });

  it('resolves at once when nothing is in flight, and a failing reconcile does not reject it', async () => {
    const q = new WorkQueue(async () => {
      throw new Error('boom');
    });
    await q.close();
    const q2 = new WorkQueue(async () => {
      await new Promise((r) => setTimeout(r, 20));
      throw new Error('boom');
    });
    q2.add('x');
    await expect(q2.close()).resolves.toBeUndefined();
    expect(q2.active).toBe(0);
  });
});
