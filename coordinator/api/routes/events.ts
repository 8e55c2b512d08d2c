import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Event as EventMsg } from '../../../protocol/index.js';
import { Event, EventsQuery, errorResponses, List } from '../../../protocol/rest/schemas.js';
import { type ApiContext, viewer } from '../context.js';
import { streamEvents, wantsEventStream } from '../sse.js';

/** GET /v1/events: the list, or a Server-Sent Events stream. */
export async function registerEventRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  const { engine } = ctx;
  app.get<{ Querystring: Static<typeof EventsQuery> }>(
    '/v1/events',
    {
      config: viewer,
      schema: {
        tags: ['events'],
        description:
          'Lists events (newest `limit`, default 200). With `Accept: text/event-stream` streams them as SSE: `id:` is the seq, `Last-Event-ID` (or `since`) resumes from the in-memory history, a comment every 15 s keeps the stream alive. One token may hold `api.maxStreamsPerToken` streams (default 8; one more answers 429 `DROVER_ERR_STREAM_LIMIT`); deleting the token ends its streams.',
        querystring: EventsQuery,
        produces: ['application/json', 'text/event-stream'],
        response: { 200: List(Event), ...errorResponses },
      },
    },
    async (req, reply) => {
      const q = req.query;
      const filter = { kind: q.kind, nodeId: q.node, role: q.role, severity: q.severity, sinceSeq: q.since };
      if (wantsEventStream(req)) {
        streamEvents(req, reply, engine.events, filter, ctx.sse, ctx.sseOptions, req.token);
        return reply;
      }
      return { items: engine.events.list({ ...filter, limit: q.limit ?? 200 }) as EventMsg[] };
    },
  );
}
