import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { drainStatusOf } from '../drain.js';
import type { ApiContext } from './app.js';
import { errorResponses, NodeParams } from './schemas.js';

export const DrainItem = Type.Object({
  instanceId: Type.String(),
  role: Type.String(),
  nodeId: Type.String({ description: 'where the instance is assigned now' }),
  state: Type.Union(
    ['waiting', 'leaving', 'blocked', 'starting', 'replaced'].map((s) => Type.Literal(s)),
    {
      description:
        'on the node: waiting (for its turn under the disruption budget), leaving, blocked (needs an operator); placed elsewhere from it: starting, replaced (healthy)',
    },
  ),
  reason: Type.Optional(Type.String()),
});

export const DrainStatus = Type.Object({
  nodeId: Type.String(),
  state: Type.String({ description: 'the node state (Draining while the drain runs)' }),
  done: Type.Boolean({
    description: 'nothing is left on the node, its agent stopped everything, every replacement is healthy',
  }),
  blocked: Type.Boolean({ description: 'some instance cannot leave without an operator; see the items' }),
  agentStopped: Type.Boolean({ description: 'the agent applied its (empty) plan' }),
  items: Type.Array(DrainItem),
});
export type DrainStatus = Static<typeof DrainStatus>;

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
