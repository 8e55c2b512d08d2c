import { describe, expect, it } from 'vitest';
import { EventLog } from '../../coordinator/events.js';
import { openEventStream } from '../../coordinator/store/event-stream.js';
import { openJetStreamStore } from '../../coordinator/store/jetstream.js';
import { silentLogger } from '../../lib/logger.js';
import { waitFor } from '../helpers/proc.js';
import { startNats } from '../helpers/servers.js';

/**
 * The event history in a JetStream stream of its own (real nats-server with JetStream): bounded
 * retention by the server, a reload reads the newest, an older history in the bucket's events/
 * keys moves in once, and a follower sees the leader's events live.
 */
describe('the event stream (real nats-server, JetStream)', () => {
  it('keeps the newest N, reloads them, moves legacy keys in, and feeds a follower', async () => {
    const nats = await startNats({ jetstream: true });
    const nc = await nats.connectAs({ coordinator: true });
    const bucket = `ev-${process.pid}`;
    const store = await openJetStreamStore({ nc, bucket });
    // an older history, as keys of the state bucket
    for (const seq of [1, 2, 3])
      await store.put(`events/${String(seq).padStart(12, '0')}`, {
        v: 1,
        type: 'event',
        id: `old-${seq}`,
        seq,
        time: new Date().toISOString(),
        kind: 'old.event',
        severity: 'info',
        message: `old ${seq}`,
      });
    const archive = await openEventStream({ nc, bucket, replicas: 1, limit: 10, store, log: silentLogger });
    expect(await store.list('events/')).toEqual([]);
    expect((await archive.load(10)).map((e) => e.id)).toEqual(['old-1', 'old-2', 'old-3']);

    const leader = new EventLog(store, silentLogger, 10, undefined, archive);
    await leader.load();
    // a follower on the same stream, following live
    const followerArchive = await openEventStream({
      nc,
      bucket,
      replicas: 1,
      limit: 10,
      store,
      log: silentLogger,
    });
    const follower = new EventLog(store, silentLogger, 10, undefined, followerArchive);
    await follower.loadReadOnly();
    const feed = follower.followArchive();
    const seen: string[] = [];
    follower.subscribe((e) => seen.push(e.message));
    // in batches under the stream's limit: a follower that fell further behind than the
    // retention would have lost the oldest (that is what bounded retention means)
    const jsm0 = await nc.jetstreamManager();
    for (let b = 0; b < 5; b++) {
      for (let i = 1; i <= 5; i++)
        leader.emit({ kind: 'test.event', severity: 'info', message: `n${b * 5 + i}` });
      await waitFor(`the follower saw ${(b + 1) * 5}`, () => seen.length === (b + 1) * 5, {
        timeoutMs: 10_000,
      }).catch(async (err) => {
        throw new Error(
          `${err.message}: seen ${seen.length}; stream ${JSON.stringify((await jsm0.streams.info(`${bucket}-events`)).state)}`,
        );
      });
    }
    expect(seen.at(-1)).toBe('n25');
    feed?.stop();
    // the server keeps 10: a new load reads exactly the newest 10
    const jsm = await nc.jetstreamManager();
    await waitFor(
      'stream bounded at 10',
      async () => (await jsm.streams.info(`${bucket}-events`)).state.messages === 10,
    );
    const again = new EventLog(store, silentLogger, 10, undefined, archive);
    await again.load();
    expect(again.list().map((e) => e.message)).toEqual(Array.from({ length: 10 }, (_, i) => `n${16 + i}`));
    // and numbering goes on above what was handed out
    expect(again.emit({ kind: 'test.event', severity: 'info', message: 'after' }).seq).toBeGreaterThan(
      again.list().at(-2)!.seq,
    );
    // a stream of another schema is refused, naming it
    await jsm.streams.add({ name: 'bad-events', subjects: ['bad.events'], description: 'something else' });
    await expect(
      openEventStream({ nc, bucket: 'bad', replicas: 1, store, log: silentLogger }),
    ).rejects.toThrow(/stream bad-events holds "something else", not drover-events\/v1/);
    await store.close();
  }, 60_000);
});
