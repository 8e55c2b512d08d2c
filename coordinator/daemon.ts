import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { systemClock } from '../lib/clock.js';
import { componentLogger, type Logger } from '../lib/logger.js';
import type { NatsSettings } from '../lib/nats-options.js';
import { TokenBucket } from '../lib/token-bucket.js';
import { type ApiServer, type CoordinatorMetrics, createMetrics, startApiServer } from './api/index.js';
import type { SharedListener } from './api/shared-listener.js';
import { makeBackup } from './backup.js';
import { type AccountPush, accountPush } from './bus/account-push.js';
import { BusAuth } from './bus/auth.js';
import { busDirOf, type CompiledCoordinatorOptions } from './config.js';
import { JoinHandler } from './engine/join.js';
import { PurgeLists } from './engine/purge-lists.js';
import { Engine, type EngineOptions } from './engine.js';
import { gatewayEtcdAdmin } from './etcd/admin.js';
import { QuorumWatch } from './etcd/quorum-watch.js';
import { EtcdRestore } from './etcd/restore.js';
import { snapshotBlobsFor } from './etcd/snapshot-blobs.js';
import { SnapshotBook } from './etcd/snapshot-book.js';
import { etcdClusters, memberEndpoints, memberViews } from './etcd/snapshot-sources.js';
import { EtcdTransportBook, renewingEtcdCredentials } from './etcd/transport.js';
import { type EventInput, EventLog } from './events.js';
import type { HaView } from './ha/view.js';
import { JoinTokenStore } from './join-tokens.js';
import { loadOrCreateSigningKey } from './keys.js';
import { ClusterBootstrap } from './kube/bootstrap-service.js';
import { clusterOfRecord } from './labels.js';
import { LivenessRebase, stallThresholdMs } from './liveness-rebase.js';
import { NatsBus } from './nats.js';
import { revokeRemovedNode } from './node-removal.js';
import { NodeRegistry } from './nodes.js';
import { compileEngineOptions } from './options.js';
import { CertificateBook, ClusterPki, csrSigner } from './pki/index.js';
import { CertRenewals } from './pki/renewal-roll.js';
import { RepairPolicy } from './repair.js';
import { ClusterState } from './state/cluster-state.js';
import { type OpenedStore, openConfiguredStore, storeChoice } from './store/open.js';
import type { Store } from './store/types.js';

export interface CoordinatorHandle {
  engine: Engine<RepairPolicy>;
  repair: RepairPolicy;
  bus: NatsBus;
  store: Store;
  /** the join tokens (`drover token create --join`) */
  joinTokens: JoinTokenStore;
  /** sha256 of the plan-signing key: what agents pin (`--coordinator-key-fingerprint`) */
  keyFingerprint: string;
  /** the REST API (listening on opts.api.listen) and the metrics it serves */
  api: ApiServer;
  metrics: CoordinatorMetrics;
  /** the cluster PKI in `<dataDir>/pki` (CAs, service-account keys): signs node CSRs and admin kubeconfigs */
  pki: ClusterPki;
  /** etcd snapshots: taken on schedule and on demand, stored off the etcd hosts */
  snapshots: SnapshotBook;
  close(): Promise<void>;
}

/**
 * The coordinator's bus identity and how it reaches NATS: its creds from the bus dir (made on the
 * first start), and the bus CA to verify nats-server with. `migrate` uses the same.
 */
export async function coordinatorBus(
  opts: CompiledCoordinatorOptions,
  given?: { auth: BusAuth; tlsCaFile?: string },
): Promise<{ busDir: string; busAuth: BusAuth; busCa?: string; natsSettings: NatsSettings }> {
  const busDir = busDirOf(opts);
  const busAuth = given?.auth ?? (await BusAuth.open(busDir));
  const busCa =
    opts.nats.tls?.ca ??
    given?.tlsCaFile ??
    (opts.bus.tls && existsSync(join(busDir, 'ca.crt')) ? join(busDir, 'ca.crt') : undefined);
  const natsSettings: NatsSettings = {
    ...opts.nats,
    ...(opts.nats.credsFile || opts.nats.token || opts.nats.user
      ? {}
      : { credsFile: busAuth.coordinatorCredsFile }),
    ...(busCa ? { tls: { ...opts.nats.tls, ca: busCa } } : {}),
  };
  return { busDir, busAuth, ...(busCa ? { busCa } : {}), natsSettings };
}

/**
 * Starts the coordinator: store, keys, engine, NATS. Start-up order matters: a corrupt store or
 * key stops us before we talk to anyone. `close()` is idempotent and runs every step.
 */
export async function startCoordinator(
  opts: CompiledCoordinatorOptions,
  log: Logger,
  extra: Partial<Pick<EngineOptions, 'onReconcile' | 'onPush' | 'renderOptions' | 'concurrency'>> & {
    /** the repair ladder's own timings (re-provision, instance reassign), which have no config key: tests shorten them */
    repair?: Parameters<typeof compileEngineOptions>[1];
    /**
     * The bus's authorisation (coordinator/bus/auth.ts) and its CA: the coordinator connects with
     * its own creds, mints node and join-token credentials and pushes revocations. Default: opened
     * (made on the first start) in the bus dir, `bus.dir` or `<dataDir>/bus`.
     */
    bus?: { auth: BusAuth; tlsCaFile?: string };
    /** coordinator HA (coordinator/ha/runner.ts): the store it holds open across leader terms, and the lease */
    ha?: {
      opened: OpenedStore;
      /** the lease's check, asked before every plan push and task */
      mayAct: () => boolean;
      view: HaView;
      /** the API socket the runner holds across terms */
      listener: SharedListener;
    };
  } = {},
): Promise<CoordinatorHandle> {
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  // ---- the bus's authorisation: the coordinator's own creds, node creds minted at join, and
  // revocations pushed to nats-server (coordinator/bus/). Without it: no join tokens.
  // Always on: the keys are made on the first start (nats-server must then be configured from
  // the same dir: `drover-coordinator nats-config`).
  const { busAuth, busCa, natsSettings } = await coordinatorBus(opts, extra.bus);
  // ---- the store the configuration chooses: the lowdb file (default) or a JetStream KV bucket on
  // the bus (coordinator/store/open.ts); a bad choice stops the start-up here, naming the problem
  const opened =
    extra.ha?.opened ??
    (await openConfiguredStore(storeChoice(opts, natsSettings, { logger: componentLogger(log, 'store') })));
  // the HA runner's store outlives this term; ours is closed with the handle
  const closeStore = extra.ha ? async () => {} : () => opened.close();
  const store = opened.store;
  log.info({ store: opened.describe }, 'store opened');
  const signingKey = await loadOrCreateSigningKey(opts.dataDir);
  // ---- seeds: the cluster PKI (coordinator/pki). Created on first start, never overwritten; a
  // damaged one stops the start-up here, before any agent is told anything.
  const pki = await ClusterPki.open({
    dir: join(opts.dataDir, 'pki'),
    logger: componentLogger(log, 'pki'),
    ...(opts.pki.leafLifetime ? { leafLifetime: opts.pki.leafLifetime } : {}),
    ...(opts.pki.renewBefore ? { renewBefore: opts.pki.renewBefore } : {}),
  });
  const metrics = createMetrics({ processMetrics: true });
  const clock = systemClock;
  // ---- etcd's transport per cluster: mutual TLS from the etcd CA, except legacy plain-HTTP
  // clusters (coordinator/etcd/transport.ts), recorded before the first reconcile renders a plan
  const etcdTransports = new EtcdTransportBook(store, clock);
  await etcdTransports.load();
  const plainEtcdEvents: EventInput[] = [];
  await etcdTransports.adoptLegacy((e) => plainEtcdEvents.push(e));
  // the coordinator's own etcd client certificate (membership changes), renewed before it expires
  const etcdCredentials = renewingEtcdCredentials(() => pki.etcdClientCredentials(), clock);
  // the engine's timings and the repair options, from the configured tunables (coordinator/options.ts)
  const tuned = compileEngineOptions(opts, extra.repair);
  const timings = tuned.timings;
  // ---- the read model and what reads it before the engine: node records with liveness, the
  // event log, the clean records (their purge lists go into plans) and the stall re-base.
  const engineLog = componentLogger(log, 'engine');
  const nodes = new NodeRegistry(store, clock, timings);
  const state = new ClusterState(nodes);
  // the event history: the store's events/ keys, or its own stream on JetStream (bounded retention)
  const events = new EventLog(store, engineLog, undefined, clock, await opened.openEvents?.());
  const purge = new PurgeLists(state, store);
  // Liveness re-base: a stall of this process (VM pause, SIGSTOP) must not make the fleet look dead.
  const rebase = new LivenessRebase(clock, nodes, {
    stallAfterMs: stallThresholdMs(timings),
    onStall: ({ gapMs, nodes }) =>
      events.emit({
        kind: 'coordinator.stalled',
        severity: 'warning',
        message: `coordinator was stalled for ${(gapMs / 1000).toFixed(1)}s (its event loop or clock); liveness of ${nodes} node(s) re-based: silence counts from now`,
        data: { gapMs, nodes },
      }),
  });
  const push: AccountPush = accountPush({
    servers: opts.nats.servers,
    systemCredsFile: busAuth.systemCredsFile,
    tlsCaFile: busCa,
    accountJwt: () => busAuth.accountJwt(),
    logger: componentLogger(log, 'bus'),
  });
  const revokeKey = async (userKey: string) => {
    await busAuth.revoke(userKey);
    await push.push();
  };
  // what was issued and when it expires (metrics, `drover get certificates`, the CA alert)
  const certificates = new CertificateBook({
    store,
    cas: () => pki.caValidity(),
    emit: (e) => events.emit(e),
    log: componentLogger(log, 'pki'),
  });
  await certificates.load();
  const renewals: CertRenewals = new CertRenewals({
    leaves: (cluster) => certificates.leavesOf(cluster),
    clusters: () => engine.listTopologies().map((t) => t.cluster.name),
    assignments: (c) => engine.currentAssignments(c),
    enqueue: (key) => engine.queue.add(key),
    clock,
    renewBeforeMs: pki.options.renewBeforeMs,
  });
  // ---- etcd snapshots (coordinator/etcd/snapshot-book.ts): off the etcd hosts, in the JetStream
  // object store beside the bucket, else in the data dir; on each cluster's schedule
  const snapshots: SnapshotBook = new SnapshotBook({
    store,
    blobs: await snapshotBlobsFor(opened, opts),
    clusters: () => etcdClusters(engine.listTopologies()),
    members: async (cluster) => {
      const plain = etcdTransports.get(cluster) === 'plain';
      const views = memberViews(
        engine.currentAssignments(cluster),
        (id) => nodes.get(id),
        (id) => nodes.liveness(id),
      );
      return {
        endpoints: memberEndpoints(views, plain ? 'http' : 'https'),
        tls: plain ? {} : await etcdCredentials(),
      };
    },
    emit: (e) => events.emit(e),
    clock,
    log: componentLogger(log, 'snapshots'),
  });
  // ---- etcd restores (coordinator/etcd/restore.ts): the way back from a lost quorum; the
  // cluster reconcile applies a running restore's overlay to the etcd assignments
  const restores: EtcdRestore = new EtcdRestore({
    store,
    snapshots,
    assignments: (c) => engine.currentAssignments(c),
    node: (id) => nodes.get(id),
    liveness: (id) => nodes.liveness(id),
    transport: async (cluster) =>
      etcdTransports.get(cluster) === 'plain'
        ? { scheme: 'http', tls: {} }
        : { scheme: 'https', tls: await etcdCredentials() },
    admin: gatewayEtcdAdmin,
    desiredPlan: (id) => engine.desiredPlan(id),
    enqueue: (key) => engine.queue.add(key),
    emit: (e) => events.emit(e),
    clock,
    log: componentLogger(log, 'etcd-restore'),
  });
  await restores.load();
  const limiter = new TokenBucket(clock, opts.registrationRate, opts.registrationBurst);
  const engine = new Engine({
    store,
    logger: engineLog,
    signingKey,
    admitRegistration: () =>
      limiter.take() ? { ok: true } : { ok: false, retryAfterMs: limiter.retryAfterMs() },
    maxPendingNodes: opts.maxPendingNodes,
    onNodeRemoved: async (rec) => {
      await certificates.forget((l) => l.nodeId !== rec.id);
      await revokeRemovedNode({ revoke: (k) => busAuth.revoke(k), push: () => push.push() }, rec).catch(
        (err) =>
          log.error(
            { err, nodeId: rec.id },
            'cannot revoke the removed node on the bus; its credentials stay valid until the next push',
          ),
      );
    },
    clock,
    timings,
    state,
    events,
    planAddons: (nodeId) => purge.addons(nodeId),
    // a running etcd restore's epochs and parked members, then the certificates due for renewal
    bypassRollout: (nodeId) => {
      const rec = nodes.get(nodeId);
      return !!rec && restores.running(clusterOfRecord(rec));
    },
    assignmentOverlay: (cluster, current) => renewals.overlay(cluster, restores.overlay(cluster, current)),
    etcdTransport: (cluster) => etcdTransports.get(cluster),
    beforeSweep: () => void rebase.beforeSweep(),
    // the repair policy's narrow ports: the read model and event log built above, and from the
    // engine only its work queue, task sender and the rollout's restarts in flight
    repair: ({ enqueue, runTask, restarting }) =>
      new RepairPolicy(
        {
          state,
          liveness: (id) => nodes.liveness(id),
          emit: (e) => events.emit(e),
          enqueue,
          runTask,
          restarting,
          clock,
          log: componentLogger(log, 'repair'),
          onRepair: (result) => metrics.repairs.inc({ result }),
          etcdTransport: async (cluster) =>
            etcdTransports.get(cluster) === 'plain'
              ? { scheme: 'http' }
              : { scheme: 'https', tls: await etcdCredentials() },
        },
        tuned.repair,
      ),
    renderOptions: {
      ...(extra.renderOptions ??
        (opts.standinCommand
          ? { standin: { command: opts.standinCommand[0]!, args: opts.standinCommand.slice(1) } }
          : undefined)),
      // seeds: plans list the certificates agents obtain by CSR, and carry the service-account keys
      pki: { serviceAccount: pki.serviceAccountKeys() },
    },
    onReconcile: (kind, outcome, ms) => {
      metrics.onReconcile(kind, outcome, ms);
      extra.onReconcile?.(kind, outcome, ms);
    },
    onPush: (ok) => {
      metrics.onPush(ok);
      extra.onPush?.(ok);
    },
    concurrency: extra.concurrency,
  });
  const repair = engine.repair!;
  // the clean records before the first reconcile: plans carry their purge lists from the start
  await purge.load();
  await engine.start();
  for (const e of plainEtcdEvents) events.emit(e);
  const joinTokens = await JoinTokenStore.open({
    store,
    clock,
    logger: componentLogger(log, 'join-tokens'),
    bus: {
      bootstrapUser: (id, exp) => busAuth.bootstrapUser(id, exp),
      revoke: revokeKey,
      caPem: () => (busCa ? readFileSync(busCa, 'utf8') : undefined),
    },
  });
  const joinHandler = new JoinHandler({
    nodes,
    events,
    clock,
    log: componentLogger(log, 'join'),
    signingKey,
    tokens: joinTokens,
    nodeUser: (id, key) => busAuth.nodeUser(id, key),
    revokeKey,
    maxPendingNodes: opts.maxPendingNodes,
    limiter,
  });
  const bus = await NatsBus.connect(natsSettings, engine, componentLogger(log, 'nats'), {
    csr: csrSigner(pki, engine, {
      logger: componentLogger(log, 'pki'),
      onIssued: (leaf) => void certificates.issued(leaf),
    }),
    join: (tokenId, data) => joinHandler.handle(tokenId, data),
    snapshotChunk: (req) => restores.serveChunk(req),
    mayAct: extra.ha?.mayAct,
  });
  // ended tokens (expired) have their bootstrap users revoked on the bus
  joinTokens.startSweep();
  // seeds: re-sign a CA certificate in its last year (same key, so every leaf keeps verifying);
  // a CA within 30 days of expiry all the same raises pki.ca-expiring
  const caCheck = () =>
    void pki
      .rotateIfNeeded()
      .catch((err) => log.error({ err }, 'CA rotation check failed'))
      .finally(() => certificates.checkCas(clock.now()));
  const caRotation = clock.every(24 * 3600_000, caCheck);
  caCheck();
  await snapshots.load();
  snapshots.start();
  restores.startDriving();
  renewals.start(Math.min(10 * 60_000, Math.max(1000, pki.options.leafLifetimeMs / 20)));
  // a lost etcd quorum is announced with the newest snapshot and the way back
  const quorumWatch = new QuorumWatch({
    clusters: () =>
      etcdClusters(engine.listTopologies()).map(({ cluster }) => ({
        cluster,
        members: memberViews(
          engine.currentAssignments(cluster),
          (id) => nodes.get(id),
          (id) => nodes.liveness(id),
        ),
      })),
    newestSnapshot: (cluster) => snapshots.list(cluster)[0],
    emit: (e) => events.emit(e),
    clock,
  });
  quorumWatch.start();
  // ---- REST API (coordinator/api): after the engine and NATS, so /readyz can turn ready at once.
  let api: ApiServer;
  try {
    api = await startApiServer({
      listen: opts.api.listen,
      tls: opts.api.tls,
      trustedProxies: opts.api.trustedProxies,
      maxStreamsPerToken: opts.api.maxStreamsPerToken,
      dataDir: opts.dataDir,
      engine,
      store,
      logger: componentLogger(log, 'api'),
      metrics,
      natsConnected: () => bus.connected,
      pki,
      join: {
        natsServers: opts.nats.servers,
        caFile: busCa,
        coordinatorKeyFingerprint: signingKey.fingerprint,
        tokens: joinTokens,
      },
      // every automatic mover honours the storm guard: VirtualCluster slices too
      vcStormGuard: (cluster) => repair.stormActive(cluster),
      purge,
      ha: extra.ha?.view,
      listener: extra.ha?.listener,
      ...(extra.ha ? { sharedTokens: store } : {}),
      ...(opened.openTasks ? { taskArchive: await opened.openTasks() } : {}),
      snapshots,
      restores,
      certificates,
      backup: async (cluster, by) => {
        const rec = await snapshots.save(cluster, 'operator', by);
        const { bytes } = await snapshots.read(rec.id);
        return makeBackup({
          cluster,
          topology: engine.topology(cluster)!,
          dataDir: opts.dataDir,
          pkiDir: pki.options.dir,
          snapshot: { record: rec, bytes },
          now: clock.now(),
        });
      },
    });
  } catch (err) {
    quorumWatch.stop();
    snapshots.stop();
    restores.stop();
    renewals.stop();
    caRotation.stop();
    joinTokens.stop();
    await push.close().catch(() => {});
    await bus.close().catch(() => {});
    await engine.close().catch(() => {});
    await closeStore().catch(() => {});
    throw err;
  }
  // cluster bootstrap objects (the kwok workers' RBAC), applied over mTLS once an API answers
  const bootstrap = new ClusterBootstrap(
    {
      topologies: () => engine.listTopologies(),
      assignments: (c) => engine.currentAssignments(c),
      nodes: (c) => engine.placementNodes(c),
      credentials: () => pki.adminCredentials(),
      events: engine.events,
    },
    { logger: componentLogger(log, 'bootstrap'), clock },
  );
  bootstrap.start();
  metrics.observe({
    engine,
    natsConnected: () => bus.connected,
    busCounters: () => bus.counters,
    certificates: () => certificates.rows(),
  });
  log.info(
    { epoch: engine.epoch, keyFingerprint: signingKey.fingerprint, nats: opts.nats.servers },
    'coordinator running',
  );
  let closing: Promise<void> | undefined;
  return {
    engine,
    repair,
    bus,
    store,
    joinTokens,
    keyFingerprint: signingKey.fingerprint,
    api,
    metrics,
    pki,
    snapshots,
    close() {
      closing ??= (async () => {
        quorumWatch.stop();
        snapshots.stop();
        restores.stop();
        renewals.stop();
        renewals.stop();
        caRotation.stop();
        joinTokens.stop();
        await bootstrap.stop();
        const steps: Array<[string, () => Promise<void>]> = [
          ['api', () => api.close()],
          ['nats', () => bus.close()],
          ['bus-push', async () => push.close()],
          ['engine', () => engine.close()],
          ['store', closeStore],
        ];
        for (const [name, fn] of steps)
          await fn().catch((err) => log.error({ err, step: name }, 'shutdown step failed'));
      })();
      return closing;
    },
  };
}
