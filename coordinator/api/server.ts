import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { Logger } from '../../lib/logger.js';
import type { ClusterBackup } from '../backup.js';
import type { PurgeLists } from '../engine/purge-lists.js';
import type { Engine } from '../engine.js';
import type { EtcdRestore } from '../etcd/restore.js';
import type { SnapshotBook } from '../etcd/snapshot-book.js';
import type { HaView } from '../ha/view.js';
import type { CertificateBook } from '../pki/cert-book.js';
import type { ClusterPki } from '../pki/index.js';
import type { Store } from '../store/types.js';
import type { TaskArchive } from '../task-archive.js';
import { buildApi } from './app.js';
import type { CoordinatorMetrics } from './metrics.js';
import type { JoinInfoSource } from './routes/join.js';
import type { SharedListener } from './shared-listener.js';
import { adminTokenPath, TokenStore, tokensPath } from './tokens.js';

export interface ApiServerOptions {
  /** `host:port`, `[v6]:port` or `:port` (all interfaces); port 0 picks a free one */
  listen: string;
  tls?: { cert?: string; key?: string };
  /** `api.trustedProxies`: reverse proxies whose X-Forwarded-For names the client (default none) */
  trustedProxies?: readonly string[];
  /** `api.maxStreamsPerToken`: open SSE streams one token may hold (default 8) */
  maxStreamsPerToken?: number;
  dataDir: string;
  engine: Engine;
  store?: Store;
  logger: Logger;
  metrics?: CoordinatorMetrics;
  natsConnected: () => boolean;
  pki?: ClusterPki;
  join?: JoinInfoSource;
  /** the storm guard VirtualCluster placement honours (RepairPolicy.stormActive) */
  vcStormGuard?: (cluster: string) => boolean;
  /** the clean records the engine's plans read their purge lists from (see ApiDeps.purge) */
  purge?: PurgeLists;
  /** coordinator HA: who leads; a follower answers writes with the leader's address */
  ha?: HaView;
  /** a follower: no VirtualCluster placement (the leader's), reads only */
  readOnly?: boolean;
  /** coordinator HA: serve on this socket, which outlives the app (`listen` and `tls` are its) */
  listener?: SharedListener;
  /** coordinator HA: the API tokens live in this (shared) store, not only in `<dataDir>/tokens.json` */
  sharedTokens?: Store;
  /** where task records are kept (the JetStream store's task stream); default the store's keys */
  taskArchive?: TaskArchive;
  /** etcd snapshots (the leader's): /v1/etcd/snapshots */
  snapshots?: SnapshotBook;
  /** etcd restores: absent on a follower */
  restores?: EtcdRestore;
  /** issued certificates and the CAs: /v1/certificates */
  certificates?: CertificateBook;
  /** POST /v1/backup: a cluster backup */
  backup?: (cluster: string, by: string) => Promise<ClusterBackup>;
}

export interface ApiServer {
  app: FastifyInstance;
  tokens: TokenStore;
  /** base URL the server listens on, e.g. http://127.0.0.1:7480 */
  url: string;
  /** where the bootstrap admin token was written on first start */
  adminTokenFile: string;
  close(): Promise<void>;
}

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(listen.trim());
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535)
    throw new Error(
      `api.listen ${JSON.stringify(listen)} is not host:port (e.g. 127.0.0.1:7480, [::1]:7480 or :7480)`,
    );
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

export function readTls(tls: ApiServerOptions['tls']): { key: Buffer; cert: Buffer } | undefined {
  if (!tls || (!tls.cert && !tls.key)) return undefined;
  if (!tls.cert || !tls.key) throw new Error('api.tls needs both cert and key (PEM file paths)');
  const read = (p: string, what: string) => {
    try {
      return readFileSync(p);
    } catch (err) {
      throw new Error(`cannot read api.tls.${what} ${p}: ${(err as Error).message}`);
    }
  };
  return { cert: read(tls.cert, 'cert'), key: read(tls.key, 'key') };
}

/**
 * Opens the token file (creating the first admin token on first start), builds the API and
 * listens. The admin token's path is logged, never the token.
 */
export async function startApiServer(o: ApiServerOptions): Promise<ApiServer> {
  const { host, port } = parseListen(o.listen);
  const https = o.listener ? undefined : readTls(o.tls);
  const log = o.logger;
  const tokens = await TokenStore.open({
    path: tokensPath(o.dataDir),
    logger: log,
    ...(o.sharedTokens ? { shared: o.sharedTokens } : {}),
  });
  const adminTokenFile = adminTokenPath(o.dataDir);
  await tokens.bootstrapAdmin(adminTokenFile);
  let started = false;
  const app = buildApi({
    engine: o.engine,
    tokens,
    logger: log,
    metrics: o.metrics,
    store: o.store,
    natsConnected: o.natsConnected,
    engineStarted: () => started,
    https,
    trustedProxies: o.trustedProxies,
    sse: { maxStreamsPerToken: o.maxStreamsPerToken },
    pki: o.pki,
    join: o.join,
    vcStormGuard: o.vcStormGuard,
    purge: o.purge,
    ha: o.ha,
    readOnly: o.readOnly,
    ...(o.taskArchive ? { taskArchive: o.taskArchive } : {}),
    ...(o.snapshots ? { snapshots: o.snapshots } : {}),
    ...(o.restores ? { restores: o.restores } : {}),
    ...(o.certificates ? { certificates: o.certificates } : {}),
    ...(o.backup ? { backup: o.backup } : {}),
  });
  if (o.listener) {
    const l = o.listener;
    await app.ready();
    l.use(app);
    started = true;
    log.info({ url: l.url, tls: l.https, adminTokenFile }, 'REST API serving on the shared listener');
    return {
      app,
      tokens,
      url: l.url,
      adminTokenFile,
      close: async () => {
        l.release(app);
        tokens.close();
        await app.close();
      },
    };
  }
  await app.listen({ host, port });
  started = true;
  const addr = app.server.address();
  const actualPort = typeof addr === 'object' && addr ? addr.port : port;
  const h = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  const url = `${https ? 'https' : 'http'}://${h}:${actualPort}`;
  log.info({ url, tls: !!https, adminTokenFile }, 'REST API listening');
  return {
    app,
    tokens,
    url,
    adminTokenFile,
    close: async () => {
      tokens.close();
      await app.close();
    },
  };
}
