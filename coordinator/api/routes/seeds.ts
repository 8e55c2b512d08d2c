/**
 * Routes for the seed scenarios: the operator's admin kubeconfig (paictl install_kubectl), clean
 * (paictl clean), Arktos tenant → partition, and VirtualCluster super clusters and tenants.
 */
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import {
  CleanBody,
  CleanResultBody,
  ClusterQuery,
  ErrorBody,
  errorResponses,
} from '../../../protocol/rest/schemas.js';
import { TenantParams, TenantPartition } from '../../../protocol/rest/seeds.js';
import { arktosError, partitionName, resolveTenant } from '../../arktos/index.js';
import {
  APISERVER_PORT,
  apiEndpointFor,
  hostPort,
  membersByRole,
  partitionMembers,
} from '../../catalog/index.js';
import { coordinatorError } from '../../errors.js';
import type { Topology } from '../../topology/index.js';
import type { ApiContext } from '../context.js';

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

  app.get<{ Params: Static<typeof TenantParams>; Querystring: Static<typeof ClusterQuery> }>(
    '/v1/tenants/:name/partition',
    {
      config: { auth: 'viewer' },
      schema: {
        tags: ['arktos'],
        description:
          'Which Arktos data partition (service group) serves a tenant, and its API servers. Ranges start inclusive and end exclusive; a bound whose isRange*Valid is false is open.',
        params: TenantParams,
        querystring: ClusterQuery,
        response: { 200: TenantPartition, 404: ErrorBody },
      },
    },
    async (req) => {
      const t = topologyOr404(ctx, req.query.cluster);
      const cluster = t.metadata.name;
      if (!t.cluster.partitions?.length)
        throw arktosError(
          'DROVER_ERR_ARKTOS_NOT_PARTITIONED',
          `cluster ${cluster} is not partitioned: add cluster.partitions to its topology (docs/seeds.md)`,
          { cluster },
        );
      const p = resolveTenant(t.cluster.partitions, req.params.name);
      const nodes = new Map(engine.placementNodes(cluster).map((n) => [n.id, n]));
      const apiservers = membersByRole(engine.currentAssignments(cluster), nodes).get('kube-apiserver') ?? [];
      const members = partitionMembers(t, apiservers).find((g) => g.partition.id === p.id)?.members ?? [];
      return {
        cluster,
        tenant: req.params.name,
        partition: { ...p, name: partitionName(p) },
        apiServers: members.map((m) => ({
          instanceId: m.assignment.instanceId,
          nodeId: m.node.id,
          address: m.node.address,
          url: `https://${hostPort(m.node.address, APISERVER_PORT)}`,
        })),
      };
    },
  );

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
