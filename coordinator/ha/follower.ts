/**
 * A follower coordinator: it serves reads while another coordinator leads, and acts on nothing.
 *
 * - Its read model (topologies, assignments, node records, events) is loaded from the store and
 *   then fed by the store's watch, so what it serves follows the leader's writes within a moment.
 * - Node liveness is memory-only (heartbeats never reach the store), so it listens to the agents'
 *   heartbeats and status itself, outside the leader's queue group, and sweeps silent nodes to
 *   Suspect and Unreachable the way the leader does, without events.
 * - It renders no plans, pushes nothing, repairs nothing and writes nothing: its REST API answers
 *   every write with the leader's address (coordinator/api/app.ts, DROVER_ERR_NOT_LEADER).
 */
import type { Clock } from '../../lib/clock.js';
import { componentLogger, type Logger } from '../../lib/logger.js';
import type { NatsSettings } from '../../lib/nats-options.js';
import type { Event, SigningKeyPair } from '../../protocol/index.js';
import { type ApiServer, type CoordinatorMetrics, startApiServer } from '../api/index.js';
import type { SharedListener } from '../api/shared-listener.js';
import type { CompiledCoordinatorOptions } from '../config.js';
import { sweepIntervalMs } from '../engine/liveness-sweep.js';
import { Engine } from '../engine.js';
import type { EventArchive } from '../event-archive.js';
import { EventLog } from '../events.js';
import type { Assignment, NodeRecord } from '../model.js';
import { NatsBus } from '../nats.js';
import { NodeRegistry } from '../nodes.js';
import { compileEngineOptions } from '../options.js';
import type { ClusterPki } from '../pki/index.js';
import { ClusterState } from '../state/cluster-state.js';
import type { Store, WatchEvent, Watcher } from '../store/types.js';
import type { TaskArchive } from '../task-archive.js';
import type { Topology } from '../topology/index.js';
import type { HaView } from './view.js';

export interface FollowerDeps {
  opts: CompiledCoordinatorOptions;
  log: Logger;
  store: Store;
  natsSettings: NatsSettings;
  signingKey: SigningKeyPair;
  pki: ClusterPki;
  ha: HaView;
  clock: Clock;
  metrics: CoordinatorMetrics;
  listener: SharedListener;
  /** the event history's stream (followed live), when the store has one */
  events?: EventArchive;
  /** the task records' stream (followed live), when the store has one */
  tasks?: TaskArchive;
}

export interface FollowerHandle {
  api: ApiServer;
  engine: Engine;
  close(): Promise<void>;
}

/** Applies one store change to the follower's read model. Pure routing on the key's prefix. */
export function applyChange(
  e: WatchEvent,
  m: { state: ClusterState; nodes: NodeRegistry; events: EventLog },
): void {
  const value = e.type === 'put' ? e.value : undefined;
  if (e.key.startsWith('topology/'))
    m.state.apply({
      kind: 'topology',
      name: e.key.slice('topology/'.length),
      value: value as Topology | undefined,
      revision: e.revision,
    });
  else if (e.key.startsWith('assignments/')) {
    // assignments/<cluster>/<instance id>: a delete carries no value to read them from
    const rest = e.key.slice('assignments/'.length);
    const a = value as Assignment | undefined;
    const cut = rest.indexOf('/');
    const cluster = a?.cluster ?? (cut > 0 ? rest.slice(0, cut) : rest);
    const instanceId = a?.instanceId ?? (cut > 0 ? rest.slice(cut + 1) : rest);
    m.state.apply({ kind: 'assignment', cluster, instanceId, value: a, revision: e.revision });
  } else if (e.key.startsWith('nodes/'))
    m.nodes.applyRecord(e.key.slice('nodes/'.length), value as NodeRecord | undefined, e.revision);
  else if (e.key.startsWith('events/') && value) m.events.observe(value as Event);
}

export async function startFollower(d: FollowerDeps): Promise<FollowerHandle> {
  const log = componentLogger(d.log, 'follower');
  const { timings } = compileEngineOptions(d.opts);
  const nodes = new NodeRegistry(d.store, d.clock, timings);
  const state = new ClusterState(nodes);
  const events = new EventLog(d.store, componentLogger(d.log, 'engine'), undefined, d.clock, d.events);
  // the engine is only the read facade here: never started, never given a bus
  const engine = new Engine({
    store: d.store,
    logger: componentLogger(d.log, 'engine'),
    signingKey: d.signingKey,
    clock: d.clock,
    timings,
    state,
    events,
  });
  const model = { state, nodes, events };
  let watcher: Watcher | undefined;
  let closed = false;
  const follow = async (): Promise<void> => {
    const from = d.store.revision();
    await nodes.load();
    await state.load(d.store);
    await events.loadReadOnly();
    if (closed) return;
    watcher = d.store.watch(
      '',
      from,
      (e) => {
        try {
          applyChange(e, model);
        } catch (err) {
          log.warn({ err, key: e.key }, 'follower could not apply a store change');
        }
      },
      (err) => {
        // the history it needed is gone (compacted): read everything again
        log.warn({ err: err.message }, 'store watch lost its place; reloading the read model');
        watcher?.stop();
        if (!closed) void follow().catch((e) => log.error({ err: e }, 'follower reload failed'));
      },
    );
  };
  await follow();
  // events in a stream of their own come from it, live (in the store's events/ keys, by the watch)
  const eventFeed = events.followArchive();
  // every approved node starts as just heard from, as the leader's engine does at start-up
  for (const n of nodes.all()) if (n.approved && n.state !== 'Removed') nodes.heartbeat(n.id);
  const bus = await NatsBus.observe(
    d.natsSettings,
    {
      handleHeartbeat: (hb) => {
        if (nodes.get(hb.nodeId)?.approved) nodes.heartbeat(hb.nodeId, hb.digest);
      },
      handleStatus: (st) => {
        if (!nodes.get(st.nodeId)?.approved) return;
        nodes.heartbeat(st.nodeId, st.digest);
        const l = nodes.liveness(st.nodeId);
        if (l) l.status = st;
      },
    },
    componentLogger(d.log, 'nats'),
  );
  const sweep = d.clock.every(sweepIntervalMs(timings), () => void nodes.sweep());
  let api: ApiServer;
  try {
    api = await startApiServer({
      listen: d.opts.api.listen,
      tls: d.opts.api.tls,
      trustedProxies: d.opts.api.trustedProxies,
      maxStreamsPerToken: d.opts.api.maxStreamsPerToken,
      dataDir: d.opts.dataDir,
      engine,
      store: d.store,
      logger: componentLogger(d.log, 'api'),
      metrics: d.metrics,
      natsConnected: () => bus.connected,
      pki: d.pki,
      ha: d.ha,
      readOnly: true,
      listener: d.listener,
      sharedTokens: d.store,
      ...(d.tasks ? { taskArchive: d.tasks } : {}),
    });
  } catch (err) {
    closed = true;
    eventFeed?.stop();
    sweep.stop();
    watcher?.stop();
    await bus.close().catch(() => {});
    throw err;
  }
  log.info({ leader: d.ha.leader().id ?? 'none yet', api: api.url }, 'following: serving reads');
  let closing: Promise<void> | undefined;
  return {
    api,
    engine,
    close() {
      closing ??= (async () => {
        closed = true;
        eventFeed?.stop();
        sweep.stop();
        watcher?.stop();
        await api.close().catch((err) => log.error({ err }, 'follower API close failed'));
        await bus.close().catch(() => {});
      })();
      return closing;
    },
  };
}
