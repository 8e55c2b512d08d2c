/**
 * What every route file gets: the request context (engine, services, SSE hub, readiness) and the
 * role checks. Route files import this, never app.ts, so the API has no import cycle.
 */
import type { FastifyRequest } from 'fastify';
import type { ClusterBackup } from '../backup.js';
import type { CleanService } from '../clean.js';
import type { Engine } from '../engine.js';
import { coordinatorError } from '../errors.js';
import type { EtcdRestore } from '../etcd/restore.js';
import type { SnapshotBook } from '../etcd/snapshot-book.js';
import type { HaView } from '../ha/view.js';
import type { CertificateBook } from '../pki/cert-book.js';
import type { ClusterPki } from '../pki/index.js';
import type { Store } from '../store/types.js';
import type { TaskTracker } from '../tasks.js';
import type { VcService } from '../vc/index.js';
import type { CoordinatorMetrics } from './metrics.js';
import type { SseHub, SseOptions } from './sse.js';
import { roleAllows, type TokenInfo, type TokenRole, type TokenStore } from './tokens.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** who may call the route: a token role, or `public` (no token) */
    auth?: TokenRole | 'public';
  }
  interface FastifyRequest {
    token?: TokenInfo;
  }
}

/**
 * Engine operations the API uses when the engine has them, answering 501 (DROVER_ERR_NOT_IMPLEMENTED)
 * until then: an on-demand repair of one node, and moving one instance to a chosen node.
 */
export interface EngineOps {
  repairNode?(nodeId: string, opts: { force: boolean }): Promise<unknown>;
  moveInstance?(instanceId: string, toNode: string, opts?: { force?: boolean }): Promise<unknown>;
}

export interface ApiContext {
  engine: Engine & EngineOps;
  tokens: TokenStore;
  tasks: TaskTracker;
  sse: SseHub;
  sseOptions: SseOptions;
  natsConnected: () => boolean;
  engineStarted: () => boolean;
  metrics?: CoordinatorMetrics;
  pki?: ClusterPki;
  /** `drover clean`: clean records and the purge lists they add to plans */
  clean: CleanService;
  /** VirtualCluster tenants and their slices across super clusters */
  vc: VcService;
  store?: Store;
  /** coordinator HA: who leads (absent for a single coordinator) */
  ha?: HaView;
  /** etcd snapshots: absent on a follower (the leader takes and serves them) */
  snapshots?: SnapshotBook;
  /** etcd restores: absent on a follower */
  restores?: EtcdRestore;
  /** issued certificates and the CAs (the leader's) */
  certificates?: CertificateBook;
  /** a cluster backup now (coordinator/backup.ts): a fresh etcd snapshot, the topology, the PKI */
  backup?: (cluster: string, by: string) => Promise<ClusterBackup>;
}

/** Route config: who may call it. */
export const viewer = { auth: 'viewer' as const };
export const operator = { auth: 'operator' as const };
export const admin = { auth: 'admin' as const };

/** Throws FORBIDDEN unless the request's token has at least `need`. */
export function requireRole(req: FastifyRequest, need: TokenRole, what: string): void {
  const t = req.token;
  if (t && roleAllows(t.role, need)) return;
  throw coordinatorError(
    'DROVER_ERR_FORBIDDEN',
    `token ${JSON.stringify(t?.name ?? '?')} has role ${t?.role ?? 'none'}; ${what} needs ${need}: ask an admin for an ${need} token`,
    { need, have: t?.role },
  );
}
