import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import {
  errorResponses,
  List,
  TokenCreate,
  TokenCreated,
  TokenInfo,
  TokenParams,
} from '../../../protocol/rest/schemas.js';
import { type ApiContext, admin } from '../context.js';

/** /v1/tokens (admin): API tokens. */
export async function registerTokenRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  const { engine } = ctx;
  app.get(
    '/v1/tokens',
    { config: admin, schema: { tags: ['tokens'], response: { 200: List(TokenInfo) } } },
    async () => ({
      items: ctx.tokens.list(),
    }),
  );

  app.post<{ Body: Static<typeof TokenCreate> }>(
    '/v1/tokens',
    {
      config: admin,
      schema: {
        tags: ['tokens'],
        description: 'Create a token. The secret is in this answer only; the coordinator keeps its sha256.',
        body: TokenCreate,
        response: { 201: TokenCreated, ...errorResponses },
      },
    },
    async (req, reply) => {
      const created = await ctx.tokens.create(req.body.name, req.body.role);
      req.log.info(
        { tokenId: created.id, name: created.name, role: created.role, by: req.token?.name },
        'API token created',
      );
      engine.events.emit({
        kind: 'token.created',
        severity: 'info',
        message: `API token ${created.name} (${created.role}) created by ${req.token?.name}`,
      });
      return reply.code(201).send(created);
    },
  );

  app.delete<{ Params: Static<typeof TokenParams> }>(
    '/v1/tokens/:id',
    {
      config: admin,
      schema: { tags: ['tokens'], params: TokenParams, response: { 200: TokenInfo, ...errorResponses } },
    },
    async (req) => {
      const gone = await ctx.tokens.delete(req.params.id);
      // a revoked token keeps nothing open: its event streams end now
      const streams = ctx.sse.closeToken(gone.id);
      req.log.info({ tokenId: gone.id, name: gone.name, streams, by: req.token?.name }, 'API token deleted');
      engine.events.emit({
        kind: 'token.deleted',
        severity: 'info',
        message: `API token ${gone.name} (${gone.role}) deleted by ${req.token?.name}`,
      });
      return gone;
    },
  );
}
