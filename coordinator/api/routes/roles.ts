import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { ClusterQuery, errorResponses, List, RoleParams, RoleView } from '../../../protocol/rest/schemas.js';
import { coordinatorError } from '../../errors.js';
import { type ApiContext, viewer } from '../context.js';
import { roleViews } from '../views.js';

/** /v1/roles: each role's desired and placed instances, health and status. */
export async function registerRoleRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  const { engine } = ctx;
  app.get<{ Querystring: Static<typeof ClusterQuery> }>(
    '/v1/roles',
    {
      config: viewer,
      schema: { tags: ['roles'], querystring: ClusterQuery, response: { 200: List(RoleView) } },
    },
    async (req) => ({ items: roleViews(engine, req.query.cluster) }),
  );

  app.get<{ Params: Static<typeof RoleParams>; Querystring: Static<typeof ClusterQuery> }>(
    '/v1/roles/:name',
    {
      config: viewer,
      schema: {
        tags: ['roles'],
        params: RoleParams,
        querystring: ClusterQuery,
        response: { 200: RoleView, ...errorResponses },
      },
    },
    async (req) => {
      const r = roleViews(engine, req.query.cluster).find((x) => x.name === req.params.name);
      if (!r)
        throw coordinatorError(
          'DROVER_ERR_ROLE_NOT_FOUND',
          `no role ${JSON.stringify(req.params.name)}; see \`drover get roles\``,
          { role: req.params.name },
        );
      return r;
    },
  );
}
