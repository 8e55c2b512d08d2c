import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import {
  ActionResult,
  AnyTopology,
  ClusterQuery,
  ErrorBody,
  errorResponses,
  List,
  TopologyDiff,
  TopologyParams,
  TopologyQuery,
} from '../../../protocol/rest/schemas.js';
import { isCleaned } from '../../clean.js';
import { coordinatorError } from '../../errors.js';
import { parseTopology, type Topology, topologyWarnings, validateTopology } from '../../topology/index.js';
import { type ApiContext, requireRole } from '../context.js';

export const YAML_TYPES = ['application/yaml', 'application/x-yaml', 'text/yaml', 'text/x-yaml'];

/** A YAML body, kept as text so topology validation can report lines and field paths itself. */
export class YamlBody {
  constructor(readonly text: string) {}
}

function readTopology(req: FastifyRequest): Topology {
  const source = 'request body';
  if (req.body instanceof YamlBody) return parseTopology(req.body.text, source);
  if (typeof req.body === 'string') return parseTopology(req.body, source);
  if (req.body === undefined || req.body === null)
    throw coordinatorError(
      'DROVER_ERR_BAD_REQUEST',
      'the body is empty: send a topology as JSON or YAML (content-type application/yaml)',
      {
        field: '/',
      },
    );
  return validateTopology(req.body, source);
}

export async function registerTopologyRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  const { engine } = ctx;

  app.addContentTypeParser(YAML_TYPES, { parseAs: 'string' }, (req, body, done) => {
    if (req.routeOptions.url !== '/v1/topology') {
      done(
        coordinatorError(
          'DROVER_ERR_UNSUPPORTED_MEDIA_TYPE',
          `only PUT /v1/topology accepts YAML; send application/json to ${req.url.split('?')[0]}`,
        ),
        undefined,
      );
      return;
    }
    done(null, new YamlBody(String(body)));
  });

  app.get<{ Querystring: Static<typeof ClusterQuery> }>(
    '/v1/topology',
    {
      config: { auth: 'viewer' },
      schema: {
        tags: ['topology'],
        description:
          'The applied topology of a cluster (the only one, or `default`, unless `cluster` says which).',
        querystring: ClusterQuery,
        response: { 200: AnyTopology, 404: ErrorBody },
      },
    },
    async (req) => {
      const t = engine.topology(req.query.cluster);
      if (!t) {
        const names = engine.listTopologies().map((x) => x.metadata.name);
        throw coordinatorError(
          'DROVER_ERR_TOPOLOGY_NOT_FOUND',
          req.query.cluster
            ? `no topology for cluster ${JSON.stringify(req.query.cluster)}${names.length ? ` (have: ${names.join(', ')})` : ''}`
            : names.length
              ? `several clusters have topologies (${names.join(', ')}); pass ?cluster=NAME`
              : 'no topology applied yet: `drover apply -f topology.yaml`',
          { cluster: req.query.cluster },
        );
      }
      return t;
    },
  );

  app.get(
    '/v1/topologies',
    { config: { auth: 'viewer' }, schema: { tags: ['topology'], response: { 200: List(AnyTopology) } } },
    async () => ({ items: engine.listTopologies() }),
  );

  const notFound = (name: string) => {
    const names = engine.listTopologies().map((x) => x.metadata.name);
    return coordinatorError(
      'DROVER_ERR_TOPOLOGY_NOT_FOUND',
      `no topology ${JSON.stringify(name)}${names.length ? ` (have: ${names.join(', ')})` : ' (none applied yet)'}`,
      { cluster: name },
    );
  };

  app.get<{ Params: Static<typeof TopologyParams> }>(
    '/v1/topologies/:name',
    {
      config: { auth: 'viewer' },
      schema: {
        tags: ['topology'],
        description: 'The applied topology of cluster `name`.',
        params: TopologyParams,
        response: { 200: AnyTopology, 404: ErrorBody },
      },
    },
    async (req) => {
      const t = engine.listTopologies().find((x) => x.metadata.name === req.params.name);
      if (!t) throw notFound(req.params.name);
      return t;
    },
  );

  app.delete<{ Params: Static<typeof TopologyParams> }>(
    '/v1/topologies/:name',
    {
      config: { auth: 'operator' },
      schema: {
        tags: ['topology'],
        description:
          "Deletes the topology of cluster `name`: the cluster's instances are removed (its nodes get plans without them; their data stays) and a `topology.deleted` event is recorded. The nodes stay in the fleet.",
        params: TopologyParams,
        response: { 200: ActionResult, ...errorResponses },
      },
    },
    async (req) => {
      const name = req.params.name;
      const instances = engine.currentAssignments(name).length;
      if (!(await engine.deleteTopology(name, req.token?.name))) throw notFound(name);
      await ctx.clean.forget(name);
      req.log.info({ cluster: name, by: req.token?.name }, 'topology deleted');
      return {
        ok: true,
        message: `topology ${name} deleted: its ${instances} instance(s) are being removed from the nodes`,
      };
    },
  );

  app.put<{ Querystring: Static<typeof TopologyQuery> }>(
    '/v1/topology',
    {
      // dry runs change nothing, so viewers may diff; applying needs admin (checked below)
      config: { auth: 'viewer' },
      schema: {
        tags: ['topology'],
        description:
          'Validates a topology (JSON, or YAML with content-type application/yaml) and applies it. With `dryRun=true` returns the diff (instances added, moved, removed, unplaced, nodes whose plans change) and applies nothing. A bad topology is refused with `details.field` naming the field; nothing changes.',
        querystring: TopologyQuery,
        consumes: ['application/json', ...YAML_TYPES],
        // checked by validateTopology (which names the field), not by Fastify
        body: Type.Unknown({ description: 'a topology document (JSON or YAML); see docs/topology.md' }),
        response: { 200: TopologyDiff, ...errorResponses },
      },
    },
    async (req) => {
      const dryRun = req.query.dryRun === true;
      if (!dryRun) requireRole(req, 'admin', 'applying a topology');
      const t = readTopology(req);
      const diff = engine.previewTopology(t);
      if (!dryRun) {
        await engine.applyTopology(t);
        // a real topology ends a `drover clean`: no purge list may outlive it
        if (!isCleaned(t)) await ctx.clean.forget(t.metadata.name);
        req.log.info({ cluster: t.metadata.name, by: req.token?.name }, 'topology applied');
      }
      return { dryRun, cluster: t.metadata.name, ...diff, warnings: topologyWarnings(t) };
    },
  );
}
