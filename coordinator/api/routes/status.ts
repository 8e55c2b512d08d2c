import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { ClusterQuery, StatusView } from '../../../protocol/rest/schemas.js';
import { type ApiContext, viewer } from '../context.js';
import { statusView } from '../views.js';

/** GET /v1/status: convergence, per cluster. */
export async function registerStatusRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  const { engine } = ctx;
  app.get<{ Querystring: Static<typeof ClusterQuery> }>(
    '/v1/status',
    {
      config: viewer,
      schema: {
        tags: ['status'],
        description:
          'Convergence: every plan applied and every role Healthy. `drover apply --wait` polls this.',
        querystring: ClusterQuery,
        response: { 200: StatusView },
      },
    },
    async (req) => {
      const s = statusView(engine, ctx.natsConnected());
      if (!req.query.cluster) return s;
      const clusters = s.clusters.filter((c) => c.name === req.query.cluster);
      return { ...s, clusters, converged: clusters.every((c) => c.converged) };
    },
  );
}
