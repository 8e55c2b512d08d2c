import type { FastifyInstance } from 'fastify';
import { CoordinatorList } from '../../../protocol/rest/schemas.js';
import { type ApiContext, viewer } from '../context.js';

/** GET /v1/coordinators: every coordinator with its role, epoch and lease age (`drover get coordinators`). */
export async function registerCoordinatorRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  app.get(
    '/v1/coordinators',
    {
      config: viewer,
      schema: {
        tags: ['status'],
        description:
          'The coordinators: with HA, each one sharing the JetStream store, its role (leader or follower), epoch, lease term and lease age, as the coordinator answering sees them; a single coordinator lists itself as the leader.',
        response: { 200: CoordinatorList },
      },
    },
    async () => {
      const ha = ctx.ha;
      if (!ha)
        return {
          mode: 'single' as const,
          self: 'coordinator',
          items: [{ id: 'coordinator', role: 'leader' as const, epoch: ctx.engine.epoch, pid: process.pid }],
        };
      return { mode: 'ha' as const, self: ha.self, items: await ha.coordinators() };
    },
  );
}
