import {
  type Consumer,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type NatsConnection,
  type StreamConfig,
} from 'nats';
import type { Logger } from '../../lib/logger.js';
import { StoreError } from './errors.js';
import { withLeader } from './jetstream.js';
import type { Store } from './types.js';

/**
 * Reads a consumer's messages in batches (each waits at most `expiresMs`) until `done` says the
 * last wanted one came, a batch comes back empty, or `maxMs` ran out. Never waits for ever on a
 * message that does not come (a stream whose leader moved with a server that died).
 */
export async function readBatches(
  c: Consumer,
  done: (m: JsMsg) => boolean,
  o: { batch?: number; expiresMs?: number; maxMs?: number } = {},
): Promise<JsMsg[]> {
  const out: JsMsg[] = [];
  const deadline = Date.now() + (o.maxMs ?? 15_000);
  while (Date.now() < deadline) {
    const iter = await c.fetch({ max_messages: o.batch ?? 500, expires: o.expiresMs ?? 2000 });
    let n = 0;
    for await (const m of iter) {
      out.push(m);
      n++;
      if (done(m)) return out;
    }
    if (n === 0) break;
  }
  return out;
}

/** How an archive stream beside a bucket is opened (events, tasks). */
export interface ArchiveStreamOptions {
  nc: NatsConnection;
  bucket: string;
  replicas: number;
  /** the newest this many are kept */
  limit?: number;
  /** the state store: an older history in its keys is moved into the stream */
  store: Store;
  /** false: leave such keys where they are (a migration reads its source unchanged) */
  moveLegacy?: boolean;
  log: Logger;
}

/** A stream's message as JSON, or undefined when it is not (a foreign or damaged message). */
export function parseJson<T>(data: Uint8Array): T | undefined {
  try {
    return JSON.parse(new TextDecoder().decode(data)) as T;
  } catch {
    return undefined;
  }
}

/**
 * Opens a stream of Drover's own (the event and task archives), creating it when missing. One
 * whose description is not `config.description` (another schema, someone else's) is refused.
 */
export async function ensureStream(
  jsm: JetStreamManager,
  config: Partial<StreamConfig> & { name: string; description: string },
  what: string,
): Promise<void> {
  const existing = await withLeader(() => jsm.streams.info(config.name)).catch((err: Error) => {
    if (/not found|10059/i.test(err.message)) return undefined;
    throw err;
  });
  if (existing && existing.config.description !== config.description)
    throw new StoreError(
      'DROVER_ERR_STORE_VERSION',
      `stream ${config.name} holds ${JSON.stringify(existing.config.description ?? 'no schema')}, not ${config.description}: refusing to use it`,
    );
  if (existing) return;
  await withLeader(() => jsm.streams.add(config)).catch((err: Error) => {
    throw new StoreError(
      'DROVER_ERR_STORE_OPTIONS',
      `cannot create the ${what} ${config.name} with ${config.num_replicas ?? 1} replica(s): ${err.message}`,
      { stream: config.name, replicas: config.num_replicas ?? 1 },
      err,
    );
  });
}

/**
 * Follows a stream live from the sequence after `after()` (what a load read, else the stream's
 * last now): each message parsed and handed to `fn`. A follower coordinator's feed.
 */
export function followStream<T>(
  o: { js: JetStreamClient; jsm: JetStreamManager; name: string; log: Logger; what: string },
  after: () => number,
  fn: (v: T) => void,
): { stop(): void } {
  let stopped = false;
  let stop = () => {};
  void (async () => {
    const last = after() || (await withLeader(() => o.jsm.streams.info(o.name))).state.last_seq;
    if (stopped) return;
    const c = await o.js.consumers.get(o.name, {
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: last + 1,
    });
    const msgs = await c.consume();
    stop = () => msgs.stop();
    if (stopped) msgs.stop();
    for await (const m of msgs) {
      const v = parseJson<T>(m.data);
      if (v) fn(v);
    }
  })().catch((err) => {
    if (!stopped) o.log.error({ err }, `cannot follow the ${o.what}`);
  });
  return {
    stop: () => {
      stopped = true;
      stop();
    },
  };
}
