/**
 * Coordinator HA: several coordinators on one JetStream store, one of them leading by lease
 * (coordinator/ha/lease.ts). This runner holds what outlives a leader term (the store's
 * connection, the HA bucket, the lease, this coordinator's presence record) and switches between
 * the two modes:
 *
 * - follower (coordinator/ha/follower.ts): reads served, writes answered with the leader's address;
 * - leader: the whole single coordinator (coordinator/daemon.ts) under a new engine epoch, its
 *   plan pushes and tasks fenced by the lease (`mayAct`).
 *
 * Losing the lease stops the leader term at once (the bus refuses to send from that moment) and
 * brings the follower back. Two coordinators with one id: the second refuses to start and names
 * the first. All coordinators must share the seed material (plan-signing key, cluster PKI, bus
 * keys: docs/operations.md, "Coordinator HA"); a coordinator whose signing key is not the
 * fleet's refuses to start.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { systemClock } from '../../lib/clock.js';
import { componentLogger, type Logger } from '../../lib/logger.js';
import { createMetrics } from '../api/index.js';
import { parseListen, readTls } from '../api/server.js';
import { openSharedListener, type SharedListener } from '../api/shared-listener.js';
import type { CompiledCoordinatorOptions } from '../config.js';
import { type CoordinatorHandle, coordinatorBus, startCoordinator } from '../daemon.js';
import { coordinatorError } from '../errors.js';
import { loadOrCreateSigningKey } from '../keys.js';
import { ClusterPki } from '../pki/index.js';
import { openConfiguredStore, storeChoice } from '../store/open.js';
import { type FollowerHandle, startFollower } from './follower.js';
import { HaBucket, type MemberRecord } from './kv.js';
import { LeaseElector, leaseTimings } from './lease.js';
import type { CoordinatorView, HaView } from './view.js';

const PRESENCE_MS = 1000;
/** the longest a mode may take to start before the coordinator gives up (and its lease) */
const START_LIMIT_MS = 30_000;

export interface HaCoordinatorHandle {
  readonly id: string;
  isLeader(): boolean;
  /** the leader term's coordinator, while this one leads */
  current(): CoordinatorHandle | undefined;
  /** the API address of whichever mode runs now */
  apiUrl(): string | undefined;
  close(): Promise<void>;
}

type StartExtra = NonNullable<Parameters<typeof startCoordinator>[2]>;

/** The API address peers and the CLI use: `ha.advertiseApi`, else from a fixed `api.listen`. */
export function advertisedApi(opts: CompiledCoordinatorOptions): string {
  if (opts.ha.advertiseApi) return opts.ha.advertiseApi;
  const { host, port } = parseListen(opts.api.listen);
  if (port === 0)
    throw coordinatorError(
      'DROVER_ERR_BAD_REQUEST',
      'coordinator HA needs a fixed API port (api.listen with a port, or ha.advertiseApi): peers and the CLI find the leader by it',
    );
  const h = host === '0.0.0.0' || host === '::' ? hostname() : host.includes(':') ? `[${host}]` : host;
  return `${opts.api.tls ? 'https' : 'http'}://${h}:${port}`;
}

/**
 * Refuses a second coordinator with a live id: the presence record must be silent for two
 * presence periods before this process takes the id over.
 */
async function claimId(bucket: HaBucket, id: string, incarnation: string): Promise<void> {
  const first = await bucket.member(id);
  if (!first || first.value.incarnation === incarnation) return;
  await new Promise((r) => setTimeout(r, 2 * PRESENCE_MS + 200));
  const again = await bucket.member(id);
  if (again && again.revision !== first.revision && again.value.incarnation !== incarnation) {
    const m = again.value;
    throw coordinatorError(
      'DROVER_ERR_BAD_REQUEST',
      `coordinator id ${id} is in use by a running coordinator (host ${m.host}, pid ${m.pid}${m.api ? `, API ${m.api}` : ''}, started ${m.startedAt}): give this one another ha.id`,
      { id, host: m.host, pid: m.pid },
    );
  }
}

/** The fleet's plan-signing key is the first coordinator's; a coordinator with another one refuses. */
async function checkSeed(bucket: HaBucket, fingerprint: string): Promise<void> {
  const fleet = await bucket.claimSeed(fingerprint);
  if (fleet !== fingerprint)
    throw coordinatorError(
      'DROVER_ERR_BAD_REQUEST',
      `this coordinator's plan-signing key (sha256 ${fingerprint.slice(0, 16)}…) is not the fleet's (${fleet.slice(0, 16)}…): agents would refuse its plans. Copy plan-signing-key.pem, pki/ and bus/ from an existing coordinator's data dir (docs/operations.md, "Coordinator HA")`,
      { fingerprint, fleet },
    );
}

export async function startHaCoordinator(
  opts: CompiledCoordinatorOptions,
  log: Logger,
  extra: Omit<StartExtra, 'ha'> = {},
): Promise<HaCoordinatorHandle> {
  const clock = systemClock;
  const id =
    opts.ha.id ??
    hostname()
      .replace(/[^A-Za-z0-9_-]/g, '-')
      .slice(0, 64);
  const api = advertisedApi(opts);
  const hlog = componentLogger(log, 'ha');
  const { natsSettings } = await coordinatorBus(opts, extra.bus);
  // the store, opened once for every term: an unreachable bus or a bad bucket stops us here
  const opened = await openConfiguredStore(
    storeChoice(opts, natsSettings, { logger: componentLogger(log, 'store') }),
  );
  const closers: Array<() => Promise<void>> = [() => opened.close()];
  const fail = async (err: unknown): Promise<never> => {
    for (const c of closers.reverse()) await c().catch(() => {});
    throw err;
  };
  let bucket: HaBucket;
  const incarnation = randomUUID();
  const startedAt = new Date().toISOString();
  let signingKey: Awaited<ReturnType<typeof loadOrCreateSigningKey>>;
  let pki: ClusterPki;
  try {
    if (!opened.nc) throw new Error('coordinator HA needs store.backend jetstream');
    bucket = await HaBucket.open(
      opened.nc,
      `${opts.store.bucket}-ha`,
      opts.store.replicas,
      Math.max(250, Math.floor(opts.ha.lease / 4)),
    );
    await claimId(bucket, id, incarnation);
    signingKey = await loadOrCreateSigningKey(opts.dataDir);
    await checkSeed(bucket, signingKey.fingerprint);
    pki = await ClusterPki.open({ dir: `${opts.dataDir}/pki`, logger: componentLogger(log, 'pki') });
  } catch (err) {
    return fail(err);
  }

  // the API port stays open across mode changes (coordinator/api/shared-listener.ts)
  let listener: SharedListener;
  try {
    const { host, port } = parseListen(opts.api.listen);
    const tls = readTls(opts.api.tls);
    listener = await openSharedListener({ host, port, ...(tls ? { tls } : {}), self: id });
  } catch (err) {
    return fail(err);
  }
  closers.push(() => listener.close());

  type Mode = { kind: 'follower'; h: FollowerHandle } | { kind: 'leader'; h: CoordinatorHandle };
  let mode: Mode | undefined;
  let chain: Promise<void> = Promise.resolve();
  let stopping = false;
  const metrics = createMetrics({ processMetrics: true });

  const elector: LeaseElector = new LeaseElector({
    id,
    api,
    kv: bucket,
    clock,
    timings: leaseTimings(opts.ha.lease),
    log: hlog,
    onElected: (term) => void switchTo('leader', `elected under lease term ${term}`),
    onLost: (reason) => void switchTo('follower', `lease lost: ${reason}`),
  });

  let lastMembers: MemberRecord[] = [];
  const view: HaView = {
    self: id,
    isLeader: () => elector.isLeader,
    leader: () => {
      const l = elector.leader();
      // our own record while we do not lead: we just lost the lease (or are taking it back); no
      // one to send a write to yet
      if (!l.holder || (l.holder === id && !elector.isLeader)) return { term: l.term };
      return { id: l.holder, api: l.api, term: l.term };
    },
    coordinators: async () => {
      const lease = elector.leader();
      // the bus may be between servers (one died): the last list read, rather than a 500
      const members = await bucket.members().then(
        (m) => (lastMembers = m),
        (err) => {
          hlog.warn(
            { err: (err as Error).message },
            'cannot read the coordinators from the HA bucket; showing the last list',
          );
          return lastMembers;
        },
      );
      const now = Date.now();
      // our own old record while we do not lead is no leader at all (see `leader` above)
      const holder = lease.holder === id && !elector.isLeader ? undefined : lease.holder;
      return members.map((m): CoordinatorView => {
        const leads = m.id === holder;
        return {
          id: m.id,
          ...(m.api ? { api: m.api } : {}),
          role: leads ? 'leader' : 'follower',
          ...(leads && m.epoch !== undefined ? { epoch: m.epoch } : {}),
          ...(leads && lease.term !== undefined ? { term: lease.term } : {}),
          ...(leads && lease.ageMs !== undefined ? { leaseAgeMs: Math.max(0, Math.round(lease.ageMs)) } : {}),
          host: m.host,
          pid: m.pid,
          seenAgoMs: Math.max(0, now - Date.parse(m.seenAt)),
        };
      });
    },
  };

  const startMode = async (kind: Mode['kind']): Promise<Mode> => {
    if (kind === 'leader') {
      // every write the previous leader had acknowledged, before the new term loads its state
      await opened.catchUp?.();
      return {
        kind,
        h: await startCoordinator(opts, log, {
          ...extra,
          ha: { opened, mayAct: () => elector.mayAct(), view, listener },
        }),
      };
    }
    return {
      kind,
      h: await startFollower({
        opts,
        log,
        store: opened.store,
        natsSettings,
        signingKey,
        pki,
        ha: view,
        clock,
        metrics,
        listener,
        ...(opened.openEvents ? { events: await opened.openEvents() } : {}),
        ...(opened.openTasks ? { tasks: await opened.openTasks() } : {}),
      }),
    };
  };

  /**
   * A mode's start, bounded: a leader term that cannot start (a request that never answers) must
   * not hold the lease while serving nothing. One that starts after all is closed at once.
   */
  const startBounded = async (kind: Mode['kind']): Promise<Mode> => {
    const started = startMode(kind);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const gaveUp = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the ${kind} did not start within ${START_LIMIT_MS / 1000} s`)),
        START_LIMIT_MS,
      );
    });
    try {
      return await Promise.race([started, gaveUp]);
    } catch (err) {
      void started.then(
        (late) => void late.h.close().catch(() => {}),
        () => {},
      );
      throw err;
    } finally {
      clearTimeout(timer);
    }
  };

  const switchTo = (kind: Mode['kind'], why: string): Promise<void> => {
    chain = chain.then(async () => {
      if (stopping || mode?.kind === kind) return;
      // a lease lost while a leader term was starting: that term ends as soon as it is up
      if (kind === 'leader' && !elector.isLeader) return;
      hlog.info({ from: mode?.kind ?? 'none', to: kind, why }, 'coordinator mode change');
      // The new mode starts before the old one closes: the API keeps answering from the old app
      // until the new one takes the socket (a deposed leader's app answers writes with 421, and
      // its bus is fenced), so a client never finds this coordinator without an answer.
      const prev = mode;
      // a deposed leader leaves the leader's queue group first, before anything else
      if (prev?.kind === 'leader') prev.h.bus.stopListening();
      try {
        mode = await startBounded(kind);
      } catch (err) {
        hlog.error({ err }, `cannot start as ${kind}`);
        if (kind === 'leader') {
          // give the lease up for another coordinator; the follower (if it runs) serves on
          await elector.resign();
          if (!prev) mode = await startBounded('follower').catch(() => undefined);
        } else {
          await prev?.h.close().catch(() => {});
          mode = undefined;
          setTimeout(() => void switchTo('follower', 'the follower did not start; again'), 2000).unref?.();
        }
        return;
      }
      await prev?.h.close().catch((err) => hlog.error({ err }, 'closing the previous mode failed'));
      await presence();
      if (kind === 'leader' && !elector.isLeader) void switchTo('follower', 'lease lost while starting');
    });
    return chain;
  };

  const presence = async () => {
    const cur = mode;
    const m: MemberRecord = {
      id,
      api,
      host: hostname(),
      pid: process.pid,
      startedAt,
      incarnation,
      ...(cur?.kind === 'leader' ? { epoch: cur.h.engine.epoch } : {}),
      seenAt: new Date().toISOString(),
    };
    await bucket.putMember(m).catch((err) => hlog.debug({ err }, 'presence write failed'));
  };
  await presence();
  const presenceTimer = clock.every(PRESENCE_MS, () => void presence());
  closers.push(async () => presenceTimer.stop());

  await switchTo('follower', 'start-up');
  elector.start();
  hlog.info({ id, api, leaseMs: opts.ha.lease }, 'coordinator HA running; following until elected');

  let closing: Promise<void> | undefined;
  return {
    id,
    isLeader: () => elector.isLeader,
    current: () => (mode?.kind === 'leader' ? mode.h : undefined),
    apiUrl: () => mode?.h.api.url,
    close() {
      closing ??= (async () => {
        stopping = true;
        presenceTimer.stop();
        // fence first (the bus stops sending), then end the term, then hand the lease over
        await elector.stop();
        await chain;
        await mode?.h.close().catch((err) => hlog.error({ err }, 'shutdown failed'));
        await bucket.removeMember(id).catch(() => {});
        await listener.close().catch(() => {});
        await opened.close().catch(() => {});
      })();
      return closing;
    },
  };
}
