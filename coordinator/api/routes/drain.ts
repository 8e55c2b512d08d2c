import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { DrainStatus, errorResponses, NodeParams } from '../../../protocol/rest/schemas.js';
import { drainStatusOf } from '../../drain.js';
import type { ApiContext } from '../context.js';

/** GET /v1/nodes/:id/drain: how far a drain has got, under the disruption budget (coordinator/drain.ts). */
export async function registerDrainRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  const { engine } = ctx;
  app.get<{ Params: Static<typeof NodeParams> }>(
    '/v1/nodes/:id/drain',
    {
      config: { auth: 'viewer' as const },
      schema: {
        tags: ['nodes'],
        description:
          'Drain progress under the disruption budget: one instance of a replicated role leaves at a time (the next once its replacement is healthy), etcd one member at a time with quorum kept; the last healthy instance of a role stays (blocked). `drover drain --wait` polls this.',
        params: NodeParams,
        response: { 200: DrainStatus, ...errorResponses },
      },
    },
    async (req) => drainStatusOf(engine, engine.requireNode(req.params.id)),
  );
}
