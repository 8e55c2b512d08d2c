import type { FastifyInstance } from 'fastify';
import { DROVER_VERSION } from '../../../lib/version.js';
import { HealthBody } from '../../../protocol/rest/schemas.js';
import { coordinatorError } from '../../errors.js';
import { type ApiContext, viewer } from '../context.js';

/** GET /healthz and /readyz (no token), /metrics (Prometheus text). */
export async function registerHealthRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  app.get(
    '/healthz',
    { config: { auth: 'public' }, schema: { tags: ['health'], security: [], response: { 200: HealthBody } } },
    async () => ({ status: 'ok', version: DROVER_VERSION }),
  );

  app.get(
    '/readyz',
    {
      config: { auth: 'public' },
      schema: { tags: ['health'], security: [], response: { 200: HealthBody, 503: HealthBody } },
    },
    async (_req, reply) => {
      const checks = { engine: ctx.engineStarted(), nats: ctx.natsConnected() };
      const ready = checks.engine && checks.nats;
      return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', checks });
    },
  );

  app.get(
    '/metrics',
    {
      config: viewer,
      schema: { tags: ['health'], description: 'Prometheus text format', produces: ['text/plain'] },
    },
    async (_req, reply) => {
      if (!ctx.metrics)
        throw coordinatorError('DROVER_ERR_NOT_IMPLEMENTED', 'metrics are not enabled in this coordinator');
      return reply.type(ctx.metrics.contentType).send(await ctx.metrics.render());
    },
  );
}
