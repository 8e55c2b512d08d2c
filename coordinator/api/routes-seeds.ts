/**
 * Routes for the seed scenarios: the operator's admin kubeconfig (paictl install_kubectl), clean
 * (paictl clean), Arktos tenant → partition, and VirtualCluster super clusters and tenants.
 */
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { apiEndpointFor } from '../catalog/index.js';
import { coordinatorError } from '../errors.js';
import type { Topology } from '../topology/index.js';
import type { ApiContext } from './app.js';
import { ClusterQuery, ErrorBody, errorResponses } from './schemas.js';

export const CleanBody = Type.Object(
  {
    cluster: Type.Optional(Type.String({ minLength: 1, maxLength: 63 })),
    purge: Type.Optional(Type.Boolean({ description: 'also delete the data the roles kept on the nodes' })),
  },
  { additionalProperties: false },
);

export const CleanResultBody = Type.Object({
  cluster: Type.String(),
  purge: Type.Boolean(),
  stopping: Type.Array(Type.Object({ nodeId: Type.String(), instances: Type.Array(Type.String()) })),
  purging: Type.Array(Type.Object({ nodeId: Type.String(), paths: Type.Integer() })),
  message: Type.String(),
});

/** The applied topology of `cluster` (or the default one), or a 404 naming the clusters there are. */
export function topologyOr404(ctx: ApiContext, cluster: string | undefined): Topology {
  const t = ctx.engine.topology(cluster);
  if (t) return t;
  const names = ctx.engine.listTopologies().map((x) => x.metadata.name);
  throw coordinatorError(
    'DROVER_ERR_TOPOLOGY_NOT_FOUND',
    cluster
      ? `no topology for cluster ${JSON.stringify(cluster)}${names.length ? ` (have: ${names.join(', ')})` : ''}`
      : names.length
        ? `several clusters have topologies (${names.join(', ')}); pass ?cluster=NAME (CLI: --cluster)`
        : 'no topology applied yet: `drover apply -f topology.yaml`',
    { cluster },
  );
}

export async function registerSeedRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  const { engine } = ctx;

  app.get<{ Querystring: Static<typeof ClusterQuery> }>(
    '/v1/kubeconfig/admin',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['pki'],
        description:
          "A fresh admin kubeconfig (CN drover-admin, O system:masters) for the cluster's API endpoint, with its key embedded; nothing is kept on the coordinator. paictl's install_kubectl.",
        querystring: ClusterQuery,
        produces: ['application/yaml'],
        response: {
          200: Type.String({ description: 'kubeconfig YAML' }),
          404: ErrorBody,
          409: ErrorBody,
          501: ErrorBody,
        },
      },
    },
    async (req, reply) => {
      if (!ctx.pki)
        throw coordinatorError(
          'DROVER_ERR_NOT_IMPLEMENTED',
          'this coordinator runs without a cluster PKI (it is created in <dataDir>/pki when drover-coordinator starts)',
        );
      const t = topologyOr404(ctx, req.query.cluster);
      const cluster = t.metadata.name;
      const nodes = new Map(engine.placementNodes(cluster).map((n) => [n.id, n]));
      const ep = apiEndpointFor(t, engine.currentAssignments(cluster), nodes);
      if (
        ep.via === 'unresolved' &&
        !engine.currentAssignments(cluster).some((a) => a.role === 'kube-apiserver')
      )
        throw coordinatorError(
          'DROVER_ERR_ILLEGAL_STATE',
          `cluster ${cluster} has no API endpoint yet: no kube-apiserver is placed (mode ${t.cluster.apiEndpoint.mode}); see \`drover get roles\``,
          { cluster },
        );
      const text = await ctx.pki.adminKubeconfig({ server: ep.url, clusterName: t.cluster.name });
      req.log.info({ cluster, server: ep.url, by: req.token?.name }, 'admin kubeconfig issued');
      engine.events.emit({
        kind: 'pki.admin-kubeconfig',
        severity: 'info',
        cluster,
        message: `admin kubeconfig for ${ep.url} issued to token ${JSON.stringify(req.token?.name ?? '?')}`,
      });
      return reply.type('application/yaml').send(text);
    },
  );

  app.post<{ Body: Static<typeof CleanBody> }>(
    '/v1/clean',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['topology'],
        description:
          "paictl's clean: applies the cluster's topology with no roles, so every agent stops and removes every instance. Data stays on the nodes unless `purge` is true: then each agent also deletes the paths its instances owned (config dirs, etcd data, kubelet root dir). Redeploy with PUT /v1/topology.",
        body: CleanBody,
        response: { 200: CleanResultBody, ...errorResponses },
      },
    },
    async (req) => {
      const r = await ctx.clean.clean({
        cluster: req.body?.cluster,
        purge: req.body?.purge === true,
        by: req.token?.name,
      });
      return r;
    },
  );
}
