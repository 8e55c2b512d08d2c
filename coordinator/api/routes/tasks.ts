import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import {
  errorResponses,
  List,
  TaskCreate,
  TaskCreateQuery,
  TaskParams,
  TaskRecord,
  TasksQuery,
} from '../../../protocol/rest/schemas.js';
import { type ApiContext, operator, viewer } from '../context.js';

/** /v1/tasks: one-off tasks on a node. */
export async function registerTaskRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  app.get<{ Querystring: Static<typeof TasksQuery> }>(
    '/v1/tasks',
    {
      config: viewer,
      schema: { tags: ['tasks'], querystring: TasksQuery, response: { 200: List(TaskRecord) } },
    },
    async (req) => ({ items: ctx.tasks.list(req.query) }),
  );

  app.post<{ Body: Static<typeof TaskCreate>; Querystring: Static<typeof TaskCreateQuery> }>(
    '/v1/tasks',
    {
      config: operator,
      schema: {
        tags: ['tasks'],
        description:
          'Run a one-off task on a node (restart, diagnostics, …). Answers 202 with the running task, or 200 with the finished one when `wait=true`.',
        querystring: TaskCreateQuery,
        body: TaskCreate,
        response: { 200: TaskRecord, 202: TaskRecord, ...errorResponses },
      },
    },
    async (req, reply) => {
      const { record, done } = ctx.tasks.start(req.body, req.token?.name ?? '?');
      if (req.query.wait) return reply.code(200).send(await done);
      return reply.code(202).send(record);
    },
  );

  app.get<{ Params: Static<typeof TaskParams> }>(
    '/v1/tasks/:id',
    {
      config: viewer,
      schema: { tags: ['tasks'], params: TaskParams, response: { 200: TaskRecord, ...errorResponses } },
    },
    async (req) => ctx.tasks.get(req.params.id),
  );
}
