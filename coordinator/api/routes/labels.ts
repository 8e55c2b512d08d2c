import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { ActionResult, errorResponses, LabelBody, NodeParams } from '../../../protocol/rest/schemas.js';
import { coordinatorError } from '../../errors.js';
import { labelNode } from '../../node-labels.js';
import type { ApiContext } from '../context.js';
import { nodeView } from '../views.js';

/** `PATCH /v1/nodes/:id/labels` (`drover label`). */
export async function registerLabelRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  const { engine } = ctx;
  app.patch<{ Params: Static<typeof NodeParams>; Body: Static<typeof LabelBody> }>(
    '/v1/nodes/:id/labels',
    {
      config: { auth: 'operator' },
      schema: {
        tags: ['nodes'],
        description:
          'Sets and removes operator labels on a node (`drover label`). They are persisted, override the labels its agent reports, and survive its registrations. Setting `drover.dev/cluster` moves the node into that cluster; refused (409) while the node still runs instances of its current cluster, unless `force`. Bad keys or values are refused with `details.field`; nothing changes.',
        params: NodeParams,
        body: LabelBody,
        response: { 200: ActionResult, ...errorResponses },
      },
      // documented by the schema, checked by nextOperatorLabels: strictly (no type coercion of
      // values), and naming the offending key
      validatorCompiler: () => () => true,
    },
    async (req) => {
      const body: unknown = req.body ?? {};
      if (typeof body !== 'object' || body === null || Array.isArray(body))
        throw coordinatorError(
          'DROVER_ERR_BAD_REQUEST',
          'the body must be an object {"set": {KEY: VALUE}, "remove": [KEY], "force": false}',
          { field: '/' },
        );
      const { force, ...change } = body as Record<string, unknown>;
      if (force !== undefined && typeof force !== 'boolean')
        throw coordinatorError('DROVER_ERR_BAD_REQUEST', '"force" must be true or false', {
          field: '/force',
        });
      const r = await labelNode(engine, req.params.id, change, { force });
      const id = req.params.id;
      const moved = r.cluster.from !== r.cluster.to;
      const message = !r.changed
        ? `node ${id} unchanged`
        : moved
          ? `node ${id} labelled; it moved from cluster ${r.cluster.from} to ${r.cluster.to}${r.moving.length ? `; ${r.moving.join(', ')} of ${r.cluster.from} leave it` : ''}`
          : `node ${id} labelled`;
      req.log.info({ nodeId: id, change, by: req.token?.name }, 'node labelled');
      return {
        ok: true,
        message,
        node: nodeView(engine, engine.nodes.get(id) ?? r.node),
        data: { operatorLabels: r.node.operatorLabels ?? {}, cluster: r.cluster, moving: r.moving },
      };
    },
  );
}
