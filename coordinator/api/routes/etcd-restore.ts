import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import {
  ClusterQuery,
  EtcdRestoreRequest,
  EtcdRestoreResult,
  EtcdRestoreView,
  errorResponses,
  List,
} from '../../../protocol/rest/schemas.js';
import { coordinatorError } from '../../errors.js';
import type { EtcdRestore } from '../../etcd/restore.js';
import type { ApiContext } from '../context.js';
import { topologyOr404 } from './seeds.js';

/**
 * /v1/etcd/restore: the way back from a lost etcd quorum (coordinator/etcd/restore.ts). Starting
 * one is for admins (it rewrites the cluster's whole key space); reading its progress for viewers.
 */
export async function registerEtcdRestoreRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  const restores = (): EtcdRestore => {
    if (ctx.restores) return ctx.restores;
    const leader = ctx.ha?.leader();
    throw coordinatorError(
      'DROVER_ERR_NOT_READY',
      leader?.api
        ? `etcd restores are run by the leading coordinator, ${leader.id} (${leader.api})`
        : 'etcd restores are not available on this coordinator',
      leader?.id ? { leader: leader.id, ...(leader.api ? { api: leader.api } : {}) } : undefined,
    );
  };

  app.post<{ Querystring: Static<typeof ClusterQuery>; Body: Static<typeof EtcdRestoreRequest> }>(
    '/v1/etcd/restore',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['etcd'],
        description:
          "Restore the cluster's etcd from a snapshot after a lost quorum: every member stops and gets a fresh data dir; one member (on a Ready node, a survivor first) is restored from the snapshot as a new single-member cluster (etcdutl snapshot restore, the revision bumped; etcdctl on etcd 3.4) and the API servers are pointed at it; the other members rejoin one at a time. Each step is an event (`etcd.restore-*`). Refused, before anything is touched, with DROVER_ERR_RESTORE_REFUSED while quorum holds (unless `force`), for another cluster's snapshot (its Drover cluster or etcd cluster id), while a restore runs (unless `force`, which replaces it), or when no member's node is Ready; with DROVER_ERR_SNAPSHOT_DAMAGED when the stored file fails its SHA-256. `dryRun` checks and lists the steps only.",
        querystring: ClusterQuery,
        body: EtcdRestoreRequest,
        response: { 202: EtcdRestoreResult, 200: EtcdRestoreResult, ...errorResponses },
      },
    },
    async (req, reply) => {
      const cluster = topologyOr404(ctx, req.query.cluster).metadata.name;
      const r = await restores().start({
        cluster,
        snapshotId: req.body.snapshot,
        force: req.body.force === true,
        dryRun: req.body.dryRun === true,
        ...(req.token?.name ? { by: req.token.name } : {}),
      });
      req.log.info({ cluster, restore: r.restore.id, dryRun: r.dryRun, by: req.token?.name }, 'etcd restore');
      return reply.code(r.dryRun ? 200 : 202).send({
        ok: true,
        message: r.dryRun
          ? `etcd restore of ${cluster} from ${r.restore.snapshotId} would run (dry run: nothing changed)`
          : `etcd restore ${r.restore.id} of ${cluster} from ${r.restore.snapshotId} started; follow it with \`drover etcd restore status\``,
        dryRun: r.dryRun,
        steps: r.steps,
        data: r.restore,
      });
    },
  );

  app.get<{ Querystring: Static<typeof ClusterQuery> }>(
    '/v1/etcd/restore',
    {
      config: { auth: 'viewer' },
      schema: {
        tags: ['etcd'],
        description:
          "Each cluster's latest etcd restore (running or ended), newest first; of one cluster with `cluster`.",
        querystring: ClusterQuery,
        response: { 200: List(EtcdRestoreView), ...errorResponses },
      },
    },
    async (req) => ({
      items: restores()
        .list()
        .filter((r) => !req.query.cluster || r.cluster === req.query.cluster),
    }),
  );
}
