import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import {
  ActionResult,
  ErrorBody,
  errorResponses,
  List,
  NodeDetail,
  NodeParams,
  NodesQuery,
  NodeView,
  RemoveQuery,
  RepairBody,
  TaskCreateQuery,
} from '../../../protocol/rest/schemas.js';
import { type ApiContext, operator, viewer } from '../context.js';
import { nodeDetail, nodeView } from '../views.js';

type NodeAction = 'approve' | 'cordon' | 'uncordon' | 'drain' | 'repair';

const ACTION_HELP: Record<NodeAction, string> = {
  approve: 'Admit a Pending node (one that registered without the join token).',
  cordon: 'Keep new instances off the node; running ones stay.',
  uncordon: 'Allow placement on the node again (also ends a drain).',
  drain:
    'Cordon the node and move its instances elsewhere under the disruption budget: one instance of a replicated role at a time, the next once its replacement is healthy; etcd one member at a time with quorum kept. `GET /v1/nodes/:id/drain` shows the progress.',
  repair:
    'Run the repair ladder for the node now (restart, re-provision, reassign); `force` overrides the storm guard.',
};

/** /v1/nodes: list, describe, the node actions (approve, cordon, uncordon, drain, repair) and removal. */
export async function registerNodeRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  const { engine } = ctx;
  app.get<{ Querystring: Static<typeof NodesQuery> }>(
    '/v1/nodes',
    {
      config: viewer,
      schema: { tags: ['nodes'], querystring: NodesQuery, response: { 200: List(NodeView) } },
    },
    async (req) => {
      let items = engine.nodes
        .all()
        .map((n) => nodeView(engine, n))
        .sort((a, b) => (a.id < b.id ? -1 : 1));
      if (req.query.cluster) items = items.filter((n) => n.cluster === req.query.cluster);
      if (req.query.state)
        items = items.filter((n) => n.state.toLowerCase() === req.query.state!.toLowerCase());
      return { items };
    },
  );

  app.get<{ Params: Static<typeof NodeParams> }>(
    '/v1/nodes/:id',
    {
      config: viewer,
      schema: { tags: ['nodes'], params: NodeParams, response: { 200: NodeDetail, ...errorResponses } },
    },
    async (req) => nodeDetail(engine, engine.requireNode(req.params.id)),
  );

  const action = (
    name: NodeAction,
    run: (id: string, body: Static<typeof RepairBody>) => Promise<{ message: string; data?: unknown }>,
  ) =>
    app.post<{ Params: Static<typeof NodeParams>; Body: Static<typeof RepairBody> | undefined }>(
      `/v1/nodes/:id/${name}`,
      {
        config: operator,
        schema: {
          tags: ['nodes'],
          description: ACTION_HELP[name],
          params: NodeParams,
          ...(name === 'repair' ? { body: RepairBody } : {}),
          response: { 200: ActionResult, ...errorResponses, 501: ErrorBody },
        },
      },
      async (req) => {
        engine.requireNode(req.params.id);
        const r = await run(req.params.id, req.body ?? {});
        const rec = engine.nodes.get(req.params.id);
        return {
          ok: true,
          message: r.message,
          ...(rec ? { node: nodeView(engine, rec) } : {}),
          ...(r.data === undefined ? {} : { data: r.data }),
        };
      },
    );

  action('approve', async (id) => {
    const before = engine.requireNode(id).approved;
    await engine.approve(id);
    return { message: before ? `node ${id} was already approved` : `node ${id} approved` };
  });
  action('cordon', async (id) => {
    await engine.setCordon(id, true);
    return { message: `node ${id} cordoned: no new instances will be placed on it` };
  });
  action('uncordon', async (id) => {
    await engine.setCordon(id, false);
    return { message: `node ${id} uncordoned` };
  });
  action('drain', async (id) => {
    const n = engine
      .currentAssignments(engine.clusterOf(engine.requireNode(id)))
      .filter((a) => a.nodeId === id).length;
    await engine.drain(id);
    return {
      message: `node ${id} is draining: ${n} instance(s) will move elsewhere, one instance of a role at a time (\`drover drain ${id} --wait\` follows it)`,
    };
  });
  app.post<{
    Params: Static<typeof NodeParams>;
    Body: Static<typeof RepairBody> | undefined;
    Querystring: Static<typeof TaskCreateQuery>;
  }>(
    '/v1/nodes/:id/repair',
    {
      config: operator,
      schema: {
        tags: ['nodes'],
        description: `${ACTION_HELP.repair} A live node re-provisions each instance as a task (\`data.tasks\`, see GET /v1/tasks); an Unreachable node's instances are reassigned now. Events: \`repair.started\`, then \`repair.succeeded\` or \`repair.failed\`. With \`wait=true\` answers when the re-provisions finished (\`ok: false\` if one failed).`,
        params: NodeParams,
        body: RepairBody,
        querystring: TaskCreateQuery,
        response: { 200: ActionResult, ...errorResponses },
      },
    },
    async (req) => {
      const id = req.params.id;
      engine.requireNode(id);
      const { started, done } = engine.startRepair(id, {
        force: req.body?.force ?? false,
        startTask: (t) => {
          const { record, done: finished } = ctx.tasks.start(t, req.token?.name ?? '?');
          return {
            id: record.id,
            done: finished.then((r) => ({ ok: r.state === 'succeeded', error: r.error?.message })),
          };
        },
      });
      const rec = engine.nodes.get(id);
      const node = rec ? { node: nodeView(engine, rec) } : {};
      if (!req.query.wait) return { ok: true, message: started.message, ...node, data: started };
      const out = await done;
      const message = out.ok
        ? started.mode === 'reprovision'
          ? `repair of node ${id} succeeded: re-provisioned ${out.reprovisioned.join(', ')}`
          : started.message
        : `repair of node ${id} failed: ${out.failed.map((f) => `${f.instanceId}: ${f.error}`).join('; ')}`;
      return { ok: out.ok, message, ...node, data: { ...started, ...out } };
    },
  );

  app.delete<{ Params: Static<typeof NodeParams>; Querystring: Static<typeof RemoveQuery> }>(
    '/v1/nodes/:id',
    {
      config: operator,
      schema: {
        tags: ['nodes'],
        description:
          'Forget the node; its instances are placed elsewhere. A node that is still heartbeating (Ready, Suspect, Cordoned, Draining) and runs instances is refused with DROVER_ERR_NODE_LIVE (409): drain it first, or pass `force=true`, which fences it first — its plan is emptied and the removal waits (up to `timeout` seconds, default 15) until its agent has stopped its instances; without that confirmation nothing is removed (DROVER_ERR_FENCE_TIMEOUT, 504). Refused with DROVER_ERR_ETCD_QUORUM (409), even forced, when the node holds an etcd member whose replacement would break quorum.',
        params: NodeParams,
        querystring: RemoveQuery,
        response: { 200: ActionResult, ...errorResponses },
      },
    },
    async (req) => {
      const rec = engine.requireNode(req.params.id);
      const r = await engine.remove(rec.id, {
        force: req.query.force === true,
        ...(req.query.timeout === undefined ? {} : { timeoutMs: req.query.timeout * 1000 }),
      });
      return {
        ok: true,
        message: `node ${rec.id} removed${r.how === 'fenced' ? ' after its agent stopped its instances' : ''}; ${r.instances} instance(s) will be placed elsewhere`,
      };
    },
  );
}
