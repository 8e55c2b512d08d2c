/**
 * Task records on JetStream: a stream of their own beside the state bucket (`<bucket>-tasks`),
 * one subject per task (`drover.store.<bucket>.tasks.<id>`, the id escaped as KV keys are) that
 * keeps only its latest record, and at most `limit` records in all (500 by default): the server
 * discards the oldest. A follower coordinator follows it live. Records still in `tasks/` keys of
 * the state bucket (from before this stream) move in once.
 */
import { DeliverPolicy, DiscardPolicy, StringCodec } from 'nats';
import type { TaskRecord } from '../../protocol/rest/schemas.js';
import type { TaskArchive } from '../task-archive.js';
import { encodeKvKey, withLeader } from './jetstream.js';
import {
  type ArchiveStreamOptions,
  ensureStream,
  followStream,
  parseJson,
  readBatches,
} from './stream-read.js';

export const TASK_STREAM_SCHEMA = 'drover-tasks/v1';
const sc = StringCodec();

const parse = (data: Uint8Array) => parseJson<TaskRecord>(data);

export async function openTaskStream(o: ArchiveStreamOptions): Promise<TaskArchive> {
  const name = `${o.bucket}-tasks`;
  const prefix = `drover.store.${o.bucket}.tasks`;
  const limit = o.limit ?? 500;
  const jsm = await withLeader(() => o.nc.jetstreamManager());
  await ensureStream(
    jsm,
    {
      name,
      subjects: [`${prefix}.*`],
      description: TASK_STREAM_SCHEMA,
      max_msgs: limit,
      max_msgs_per_subject: 1,
      discard: DiscardPolicy.Old,
      num_replicas: o.replicas,
    },
    'task stream',
  );
  const js = o.nc.jetstream();
  const put = async (r: TaskRecord) => {
    await withLeader(() => js.publish(`${prefix}.${encodeKvKey(r.id)}`, sc.encode(JSON.stringify(r))));
  };
  if (o.moveLegacy !== false) {
    const old = await o.store.list<TaskRecord>('tasks/');
    if (old.length) {
      const recs = old.map((e) => e.value).sort((a, b) => (a.createdAt < b.createdAt ? -1 : 1));
      for (const r of recs.slice(-limit)) await put(r);
      for (const e of old) await o.store.delete(e.key).catch(() => {});
      o.log.info(
        { moved: Math.min(recs.length, limit), stream: name },
        'moved the task records into their stream',
      );
    }
  }
  /** the stream's last sequence when `load` read it: a follower goes on from there */
  let loadedUpTo = 0;
  return {
    describe: `JetStream stream ${name} (newest ${limit} tasks, R${o.replicas})`,
    async load(n) {
      const info = await withLeader(() => jsm.streams.info(name));
      loadedUpTo = info.state.last_seq;
      if (info.state.messages === 0) return [];
      const c = await withLeader(() =>
        js.consumers.get(name, { deliver_policy: DeliverPolicy.LastPerSubject }),
      );
      let out: TaskRecord[];
      try {
        let seen = 0;
        const msgs = await readBatches(
          c,
          (m) => ++seen >= info.state.messages || m.seq >= info.state.last_seq,
        );
        out = msgs.map((m) => parse(m.data)).filter((r): r is TaskRecord => !!r);
      } finally {
        await c.delete().catch(() => {});
      }
      out.sort((a, b) => (a.createdAt < b.createdAt ? -1 : 1));
      return out.slice(-n);
    },
    put,
    // the stream keeps one record per task and the newest `limit` in all
    trimmed() {},
    follow(fn) {
      return followStream<TaskRecord>(
        { js, jsm, name, log: o.log, what: 'task stream' },
        () => loadedUpTo,
        fn,
      );
    },
  };
}
