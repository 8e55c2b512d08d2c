/**
 * Opens the store the configuration chooses (`store.backend`): the lowdb file in the data dir
 * (the embedded default, one coordinator) or a JetStream KV bucket on the NATS servers (the
 * replicated store). Errors name what is wrong: unreachable servers, a bucket of another schema,
 * a replica count the servers cannot hold. `migrateStore` copies a state from one to the other
 * and verifies the copy.
 */
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { type Logger, silentLogger } from '../../lib/logger.js';
import { type NatsSettings, natsConnectOptions } from '../../lib/nats-options.js';
import type { EventArchive } from '../event-archive.js';
import type { TaskArchive } from '../task-archive.js';
import { StoreError } from './errors.js';
import { openEventStream } from './event-stream.js';
import { openJetStreamStore } from './jetstream.js';
import { openLowdbStore } from './lowdb.js';
import { openTaskStream } from './task-stream.js';
import type { Store } from './types.js';

export type StoreBackend = 'lowdb' | 'jetstream';

export interface StoreChoice {
  backend: StoreBackend;
  dataDir: string;
  bucket: string;
  replicas: number;
  /** how to reach the NATS servers (jetstream) */
  nats?: NatsSettings;
  logger?: Logger;
}

export interface OpenedStore {
  store: Store;
  /** closes the store and the NATS connection it opened */
  close(): Promise<void>;
  describe: string;
  /** the NATS connection of a JetStream store (coordinator HA puts its lease beside the bucket) */
  nc?: NatsConnection;
  /** JetStream: waits until this process's view holds every acknowledged write (a new leader, before it loads) */
  catchUp?: () => Promise<void>;
  /**
   * JetStream: the event history's own stream with bounded retention
   * (coordinator/store/event-stream.ts), opened on first call. `moveLegacy` (default true) moves
   * an older history from the bucket's `events/` keys into it; a migration leaves its source as
   * it is.
   */
  openEvents?: (o?: { moveLegacy?: boolean }) => Promise<EventArchive>;
  /** JetStream: the task records' own stream (coordinator/store/task-stream.ts), opened on first call */
  openTasks?: (o?: { moveLegacy?: boolean }) => Promise<TaskArchive>;
}

/** The choice a coordinator's configuration makes (`store.*`, its data dir), for another backend too. */
export function storeChoice(
  opts: { dataDir: string; store: { backend: StoreBackend; bucket: string; replicas: number } },
  nats: NatsSettings,
  extra: { backend?: StoreBackend; logger?: Logger } = {},
): StoreChoice {
  return {
    backend: extra.backend ?? opts.store.backend,
    dataDir: opts.dataDir,
    bucket: opts.store.bucket,
    replicas: opts.store.replicas,
    nats,
    ...(extra.logger ? { logger: extra.logger } : {}),
  };
}

export async function openConfiguredStore(c: StoreChoice): Promise<OpenedStore> {
  if (c.backend === 'lowdb') {
    const path = join(c.dataDir, 'state.json');
    const store = await openLowdbStore({ path, ...(c.logger ? { logger: c.logger } : {}) });
    return { store, close: () => store.close(), describe: `lowdb file ${path}` };
  }
  if (!c.nats) throw new StoreError('DROVER_ERR_STORE_OPTIONS', 'store.backend jetstream needs nats.servers');
  let nc: NatsConnection;
  try {
    nc = await connect(
      natsConnectOptions(c.nats, {
        name: 'drover-coordinator-store',
        reconnect: { waitMs: 500, jitterMs: 500 },
        // at start-up, an unreachable bus is an error to report, not to wait out for ever
        connectTimeoutMs: 10_000,
        noAsyncTraces: true,
      }),
    );
  } catch (err) {
    throw new StoreError(
      'DROVER_ERR_STORE_OPTIONS',
      `store.backend jetstream: cannot reach the NATS servers ${c.nats.servers.join(', ')}: ${(err as Error).message}`,
      { servers: c.nats.servers },
      err,
    );
  }
  try {
    const store = await openJetStreamStore({
      nc,
      bucket: c.bucket,
      replicas: c.replicas,
      ...(c.logger ? { logger: c.logger } : {}),
    });
    let events: Promise<EventArchive> | undefined;
    let tasks: Promise<TaskArchive> | undefined;
    // both archives: a stream of their own beside the bucket, each opened once
    const stream = (o: { moveLegacy?: boolean }) => ({
      nc,
      bucket: c.bucket,
      replicas: c.replicas,
      store,
      moveLegacy: o.moveLegacy ?? true,
      log: c.logger ?? silentLogger,
    });
    return {
      store,
      nc,
      openEvents: (o = {}) => (events ??= openEventStream(stream(o))),
      openTasks: (o = {}) => (tasks ??= openTaskStream(stream(o))),
      catchUp: () => store.catchUp(),
      close: async () => {
        await store.close();
        await nc.close();
      },
      describe: `JetStream bucket ${c.bucket} (R${c.replicas}) on ${c.nats.servers.join(', ')}`,
    };
  } catch (err) {
    await nc.close().catch(() => {});
    throw err;
  }
}

export interface MigrateResult {
  keys: number;
  /** events copied out of a JetStream event stream into the target's events/ keys */
  events: number;
  from: string;
  to: string;
}

/**
 * Copies every key of `from` into `to`, which must be empty (a copy never merges two states),
 * then verifies that both hold the same keys with the same values. The source is not changed.
 */
export async function migrateStore(from: OpenedStore, to: OpenedStore): Promise<MigrateResult> {
  const existing = await to.store.list('');
  if (existing.length > 0)
    throw new StoreError(
      'DROVER_ERR_STORE_EXISTS',
      `the target ${to.describe} already holds ${existing.length} key(s) (e.g. ${existing[0]!.key}): a migration copies into an empty store only; empty or remove it first`,
    );
  const entries = await from.store.list('');
  for (const e of entries) await to.store.put(e.key, e.value);
  await to.store.flush();
  const copied = await to.store.list('');
  const text = (l: Array<{ key: string; value: unknown }>) =>
    l.map((e) => `${e.key}\u0000${JSON.stringify(e.value)}`).join('\n');
  if (copied.length !== entries.length || text(copied) !== text(entries))
    throw new StoreError(
      'DROVER_ERR_STORE_WRITE',
      `verification failed: ${entries.length} key(s) in ${from.describe}, ${copied.length} in ${to.describe}, or values differ`,
    );
  // the event history of a JetStream store is a stream of its own: into the target's events/
  // keys (a JetStream target moves them into its stream when its coordinator starts)
  let events = 0;
  if (from.openEvents) {
    const ev = await (await from.openEvents({ moveLegacy: false })).load(5000);
    for (const e of ev) await to.store.put(`events/${String(e.seq).padStart(12, '0')}`, e);
    await to.store.flush();
    events = ev.length;
    // and the task records out of theirs, into tasks/ keys
    for (const r of await (await from.openTasks!({ moveLegacy: false })).load(500))
      await to.store.put(`tasks/${r.id}`, r);
    await to.store.flush();
  }
  return { keys: entries.length, events, from: from.describe, to: to.describe };
}
