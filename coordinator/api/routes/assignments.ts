import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import {
  ActionResult,
  Assignment,
  AssignmentsQuery,
  ErrorBody,
  errorResponses,
  InstanceParams,
  InstanceView,
  MoveBody,
  Unplaced,
} from '../../../protocol/rest/schemas.js';
import { coordinatorError } from '../../errors.js';
import { type ApiContext, operator, viewer } from '../context.js';
import { assignmentViews } from '../views.js';

/** /v1/assignments: where each instance runs (and what is unplaced), and moving one instance. */
export async function registerAssignmentRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  const { engine } = ctx;
  app.get<{ Querystring: Static<typeof AssignmentsQuery> }>(
    '/v1/assignments',
    {
      config: viewer,
      schema: {
        tags: ['roles'],
        querystring: AssignmentsQuery,
        response: {
          200: Type.Object({
            items: Type.Array(Type.Composite([Assignment, InstanceView])),
            unplaced: Type.Array(Unplaced),
          }),
        },
      },
    },
    async (req) => {
      const q = req.query;
      const items = assignmentViews(engine, q.cluster).filter(
        (a) => (!q.node || a.nodeId === q.node) && (!q.role || a.role === q.role),
      );
      const unplaced = (q.cluster ? [q.cluster] : engine.clusterNames())
        .flatMap((c) => engine.unplacedFor(c))
        .filter((u) => !q.role || u.role === q.role);
      return { items, unplaced };
    },
  );

  app.post<{ Params: Static<typeof InstanceParams>; Body: Static<typeof MoveBody> }>(
    '/v1/assignments/:instance/move',
    {
      config: operator,
      schema: {
        tags: ['roles'],
        description:
          'Move one instance to another node (its epoch is bumped; the old node is fenced). URL-encode `#` as %23.',
        params: InstanceParams,
        body: MoveBody,
        response: { 200: ActionResult, ...errorResponses, 501: ErrorBody },
      },
    },
    async (req) => {
      const id = req.params.instance;
      const a = engine.allAssignments().find((x) => x.instanceId === id);
      if (!a)
        throw coordinatorError(
          'DROVER_ERR_INSTANCE_NOT_FOUND',
          `no instance ${JSON.stringify(id)}; see \`drover get assignments\``,
          { instanceId: id },
        );
      const to = engine.requireNode(req.body.to);
      if (a.nodeId === to.id) return { ok: true, message: `${id} is already on ${to.id}` };
      const fn = engine.moveInstance;
      if (typeof fn !== 'function')
        throw coordinatorError(
          'DROVER_ERR_NOT_IMPLEMENTED',
          'this coordinator cannot move single instances yet; drain the node instead',
        );
      const data = await fn.call(engine, id, to.id, { force: req.body.force ?? false });
      return {
        ok: true,
        message: `${id} is moving from ${a.nodeId} to ${to.id}`,
        ...(data === undefined ? {} : { data }),
      };
    },
  );
}
