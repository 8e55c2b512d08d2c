/**
 * The event history on JetStream: a stream of its own beside the state bucket
 * (`<bucket>-events`, subject `drover.store.<bucket>.events`), replicated like the bucket, with
 * bounded retention: at most `limit` events (5,000 by default), the oldest discarded by the
 * server. Each event is published with its id as the message id, so a retried publish is stored
 * once. A follower coordinator follows the stream live (an ordered consumer), so its SSE streams
 * see the leader's events.
 *
 * On the first start on a bucket whose history is still in `events/` keys (before this stream),
 * those events are moved into the stream and their keys deleted.
 */
import { DeliverPolicy, DiscardPolicy, type JetStreamManager, StringCodec } from 'nats';
import type { Event } from '../../protocol/index.js';
import type { EventArchive } from '../event-archive.js';
import { withLeader } from './jetstream.js';
import {
  type ArchiveStreamOptions,
  ensureStream,
  followStream,
  parseJson,
  readBatches,
} from './stream-read.js';

export const EVENT_STREAM_SCHEMA = 'drover-events/v1';
const sc = StringCodec();

export type EventStreamOptions = ArchiveStreamOptions;

const parse = (data: Uint8Array) => parseJson<Event>(data);

export async function openEventStream(o: EventStreamOptions): Promise<EventArchive> {
  const name = `${o.bucket}-events`;
  const subject = `drover.store.${o.bucket}.events`;
  const limit = o.limit ?? 5000;
  const jsm: JetStreamManager = await withLeader(() => o.nc.jetstreamManager());
  await ensureStream(
    jsm,
    {
      name,
      subjects: [subject],
      description: EVENT_STREAM_SCHEMA,
      max_msgs: limit,
      discard: DiscardPolicy.Old,
      num_replicas: o.replicas,
      duplicate_window: 120_000_000_000, // 2 min, in ns: a retried publish is stored once
    },
    'event stream',
  );
  const js = o.nc.jetstream();

  const append = async (e: Event) => {
    await withLeader(() => js.publish(subject, sc.encode(JSON.stringify(e)), { msgID: e.id }));
  };

  /** the last stream sequence `load` read: a follower goes on from there */
  let loadedUpTo = 0;
  /** Messages from `fromSeq` up to the stream's last sequence now, in order. */
  const readRange = async (fromSeq: number): Promise<Event[]> => {
    const info = await withLeader(() => jsm.streams.info(name));
    const last = info.state.last_seq;
    loadedUpTo = last;
    if (info.state.messages === 0 || last < fromSeq) return [];
    const start = Math.max(fromSeq, info.state.first_seq);
    const c = await withLeader(() =>
      js.consumers.get(name, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: start }),
    );
    try {
      const msgs = await readBatches(c, (m) => m.seq >= last);
      if (msgs.length && msgs.at(-1)!.seq < last)
        o.log.warn(
          { stream: name, read: msgs.length, upTo: msgs.at(-1)!.seq, last },
          'the event stream answered short',
        );
      return msgs.map((m) => parse(m.data)).filter((e): e is Event => !!e);
    } finally {
      await c.delete().catch(() => {});
    }
  };

  // an older history (events/ keys of the state bucket) moves into the stream once
  const old = o.moveLegacy === false ? [] : await o.store.list<Event>('events/');
  if (old.length) {
    for (const e of old.slice(-limit)) await append(e.value);
    for (const e of old) await o.store.delete(e.key).catch(() => {});
    o.log.info(
      { moved: Math.min(old.length, limit), stream: name },
      'moved the event history into its stream',
    );
  }

  return {
    describe: `JetStream stream ${name} (newest ${limit}, R${o.replicas})`,
    async load(n) {
      const info = await withLeader(() => jsm.streams.info(name));
      return (await readRange(Math.max(1, info.state.last_seq - Math.min(n, limit) + 1))).slice(-n);
    },
    append,
    // the stream drops the oldest itself (max_msgs)
    trimmed() {},
    follow(fn) {
      return followStream<Event>({ js, jsm, name, log: o.log, what: 'event stream' }, () => loadedUpTo, fn);
    },
  };
}
