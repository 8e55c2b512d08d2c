import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import {
  ClusterQuery,
  ErrorBody,
  EtcdSnapshot,
  EtcdSnapshotParams,
  EtcdSnapshotResult,
  errorResponses,
  List,
} from '../../../protocol/rest/schemas.js';
import { coordinatorError } from '../../errors.js';
import type { SnapshotBook } from '../../etcd/snapshot-book.js';
import type { ApiContext } from '../context.js';
import { topologyOr404 } from './seeds.js';

/**
 * /v1/etcd/snapshots: etcd snapshots taken on demand or on schedule (coordinator/etcd/snapshot-book.ts).
 * Listing is for viewers; taking and deleting one for operators; the file itself, which holds
 * every Secret of the cluster, for admins only.
 */
export async function registerEtcdSnapshotRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  const book = (): SnapshotBook => {
    if (ctx.snapshots) return ctx.snapshots;
    throw notHere('etcd snapshots');
  };
  /** what a follower (or a coordinator without the book) answers, naming the leader */
  const notHere = (what: string) => {
    const leader = ctx.ha?.leader();
    return coordinatorError(
      'DROVER_ERR_NOT_READY',
      leader?.api
        ? `${what} are served by the leading coordinator, ${leader.id} (${leader.api})`
        : `${what} are not available on this coordinator`,
      leader?.id ? { leader: leader.id, ...(leader.api ? { api: leader.api } : {}) } : undefined,
    );
  };

  app.post<{ Querystring: Static<typeof ClusterQuery> }>(
    '/v1/etcd/snapshots',
    {
      config: { auth: 'operator' },
      schema: {
        tags: ['etcd'],
        description:
          "Take an etcd snapshot of the cluster now, from a healthy member, over mTLS with the coordinator's etcd client certificate. It is checked (etcd's trailing SHA-256), checksummed and stored off the etcd hosts; the record names the etcd cluster id, revision, size and time. A second request while one runs gets the same snapshot.",
        querystring: ClusterQuery,
        response: { 200: EtcdSnapshotResult, ...errorResponses },
      },
    },
    async (req) => {
      const cluster = topologyOr404(ctx, req.query.cluster).metadata.name;
      const rec = await book().save(cluster, 'operator', req.token?.name);
      return {
        ok: true,
        message: `etcd snapshot ${rec.id} saved: revision ${rec.revision}, ${rec.size} bytes, sha256 ${rec.sha256.slice(0, 16)}…`,
        data: rec,
      };
    },
  );

  app.get<{ Querystring: Static<typeof ClusterQuery> }>(
    '/v1/etcd/snapshots',
    {
      config: { auth: 'viewer' },
      schema: {
        tags: ['etcd'],
        description: "The etcd snapshots' records, newest first; of one cluster with `cluster`.",
        querystring: ClusterQuery,
        response: { 200: List(EtcdSnapshot), ...errorResponses },
      },
    },
    async (req) => ({ items: book().list(req.query.cluster) }),
  );

  app.get<{ Params: Static<typeof EtcdSnapshotParams> }>(
    '/v1/etcd/snapshots/:id',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['etcd'],
        description:
          'The snapshot file, as `etcdctl snapshot save` writes it (ready for `etcdutl snapshot restore`). It is checked against its recorded SHA-256 first: a damaged one is refused with DROVER_ERR_SNAPSHOT_DAMAGED. The header `x-drover-sha256` carries the checksum. A snapshot holds every Secret of the cluster.',
        params: EtcdSnapshotParams,
        produces: ['application/octet-stream'],
        response: {
          200: Type.String({ description: 'the snapshot file', format: 'binary' }),
          401: ErrorBody,
          403: ErrorBody,
          404: ErrorBody,
          409: ErrorBody,
          503: ErrorBody,
        },
      },
    },
    async (req, reply) => {
      const { record, bytes } = await book().read(req.params.id);
      req.log.info({ id: record.id, by: req.token?.name }, 'etcd snapshot exported');
      return reply
        .type('application/octet-stream')
        .header('x-drover-sha256', record.sha256)
        .header('content-disposition', `attachment; filename="${record.id}.db"`)
        .send(Buffer.from(bytes));
    },
  );

  app.post<{ Querystring: Static<typeof ClusterQuery> }>(
    '/v1/backup',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['etcd'],
        description:
          "A cluster backup, as `k0s backup` makes one: a fresh etcd snapshot, the cluster's topology, the cluster PKI (CA certificates and keys, service-account keys) and the plan-signing key, in one JSON document with a SHA-256 over it. `drover-coordinator restore-backup FILE` rebuilds a coordinator's data dir from it. It holds every secret of the cluster: keep it encrypted.",
        querystring: ClusterQuery,
        response: {
          200: Type.Object(
            {},
            { additionalProperties: true, description: 'the backup (kind DroverClusterBackup)' },
          ),
          ...errorResponses,
        },
      },
    },
    async (req) => {
      if (!ctx.backup) throw notHere('cluster backups');
      const cluster = topologyOr404(ctx, req.query.cluster).metadata.name;
      const b = await ctx.backup(cluster, req.token?.name ?? '?');
      req.log.info(
        { cluster, by: req.token?.name, snapshot: b.snapshot.record.id },
        'cluster backup exported',
      );
      ctx.engine.events.emit({
        kind: 'backup.exported',
        severity: 'info',
        cluster,
        message: `cluster backup of ${cluster} (etcd snapshot ${b.snapshot.record.id}, the topology, the PKI) exported by token ${JSON.stringify(req.token?.name ?? '?')}`,
      });
      return b;
    },
  );

  app.delete<{ Params: Static<typeof EtcdSnapshotParams> }>(
    '/v1/etcd/snapshots/:id',
    {
      config: { auth: 'operator' },
      schema: {
        tags: ['etcd'],
        description: 'Delete a snapshot: its record and its file.',
        params: EtcdSnapshotParams,
        response: { 200: EtcdSnapshotResult, ...errorResponses },
      },
    },
    async (req) => {
      const rec = await book().delete(req.params.id, `deleted by ${req.token?.name ?? '?'}`);
      return { ok: true, message: `etcd snapshot ${rec.id} deleted`, data: rec };
    },
  );
}
