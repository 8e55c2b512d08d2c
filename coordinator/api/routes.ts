import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { DROVER_VERSION } from '../../lib/version.js';
import type { Event as EventMsg } from '../../protocol/index.js';
import {
  ActionResult,
  Assignment,
  ClusterQuery,
  ErrorBody,
  Event,
  EventsQuery,
  errorResponses,
  HealthBody,
  InstanceParams,
  InstanceView,
  List,
  MoveBody,
  NodeDetail,
  NodeParams,
  NodeView,
  RepairBody,
  RoleParams,
  RoleView,
  StatusView,
  TaskCreate,
  TaskCreateQuery,
  TaskParams,
  TaskRecord,
  TasksQuery,
  TokenCreate,
  TokenCreated,
  TokenInfo,
  TokenParams,
  Unplaced,
} from '../../protocol/rest/schemas.js';
import { coordinatorError } from '../errors.js';
import type { ApiContext, EngineOps } from './app.js';
import { registerDrainRoutes } from './routes-drain.js';
import { registerLabelRoutes } from './routes-labels.js';
import { registerSeedRoutes } from './routes-seeds.js';
import { registerTopologyRoutes } from './routes-topology.js';
import { registerVcRoutes } from './routes-vc.js';
import { streamEvents, wantsEventStream } from './sse.js';
import { assignmentViews, nodeDetail, nodeView, roleViews, statusView } from './views.js';

type NodeAction = 'approve' | 'cordon' | 'uncordon' | 'drain' | 'repair';

const RemoveQuery = Type.Object(
  {
    force: Type.Optional(
      Type.Boolean({ description: 'fence a live node first (stop its instances there) instead of refusing' }),
    ),
    timeout: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 600,
        description: 'seconds a forced removal waits for the agent to stop its instances (default 15)',
      }),
    ),
  },
  { additionalProperties: false },
);

const ACTION_HELP: Record<NodeAction, string> = {
  approve: 'Admit a Pending node (one that registered without the join token).',
  cordon: 'Keep new instances off the node; running ones stay.',
  uncordon: 'Allow placement on the node again (also ends a drain).',
  drain:
    'Cordon the node and move its instances elsewhere under the disruption budget: one instance of a replicated role at a time, the next once its replacement is healthy; etcd one member at a time with quorum kept. `GET /v1/nodes/:id/drain` shows the progress.',
  repair:
    'Run the repair ladder for the node now (restart, re-provision, reassign); `force` overrides the storm guard.',
};

export async function registerRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  const { engine } = ctx;
  const viewer = { auth: 'viewer' as const };
  const operator = { auth: 'operator' as const };
  const admin = { auth: 'admin' as const };

  // ---------------------------------------------------------------- health, metrics, status
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

  app.get<{ Querystring: Static<typeof ClusterQuery> }>(
    '/v1/status',
    {
      config: viewer,
      schema: {
        tags: ['status'],
        description:
          'Convergence: every plan applied and every role Healthy. `drover apply --wait` polls this.',
        querystring: ClusterQuery,
        response: { 200: StatusView },
      },
    },
    async (req) => {
      const s = statusView(engine, ctx.natsConnected());
      if (!req.query.cluster) return s;
      const clusters = s.clusters.filter((c) => c.name === req.query.cluster);
      return { ...s, clusters, converged: clusters.every((c) => c.converged) };
    },
  );

  // ---------------------------------------------------------------- topology
  await registerTopologyRoutes(app, ctx);
  await registerLabelRoutes(app, ctx);
  await registerSeedRoutes(app, ctx);
  await registerVcRoutes(app, ctx);
  await registerDrainRoutes(app, ctx);

  // ---------------------------------------------------------------- nodes
  const NodesQuery = Type.Object(
    { cluster: Type.Optional(Type.String()), state: Type.Optional(Type.String()) },
    { additionalProperties: false },
  );
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

  // ---------------------------------------------------------------- roles and assignments
  app.get<{ Querystring: Static<typeof ClusterQuery> }>(
    '/v1/roles',
    {
      config: viewer,
      schema: { tags: ['roles'], querystring: ClusterQuery, response: { 200: List(RoleView) } },
    },
    async (req) => ({ items: roleViews(engine, req.query.cluster) }),
  );

  app.get<{ Params: Static<typeof RoleParams>; Querystring: Static<typeof ClusterQuery> }>(
    '/v1/roles/:name',
    {
      config: viewer,
      schema: {
        tags: ['roles'],
        params: RoleParams,
        querystring: ClusterQuery,
        response: { 200: RoleView, ...errorResponses },
      },
    },
    async (req) => {
      const r = roleViews(engine, req.query.cluster).find((x) => x.name === req.params.name);
      if (!r)
        throw coordinatorError(
          'DROVER_ERR_ROLE_NOT_FOUND',
          `no role ${JSON.stringify(req.params.name)}; see \`drover get roles\``,
          { role: req.params.name },
        );
      return r;
    },
  );

  const AssignmentsQuery = Type.Object(
    {
      cluster: Type.Optional(Type.String()),
      node: Type.Optional(Type.String()),
      role: Type.Optional(Type.String()),
    },
    { additionalProperties: false },
  );
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

  app.post<{ Params: { member: string } }>(
    '/v1/etcd/members/:member/replace',
    {
      config: operator,
      schema: {
        tags: ['roles'],
        description:
          'Replace one etcd member now (automated etcdfix): member remove and add through the surviving members, one change at a time, refused if it would break quorum. MEMBER is `etcd-0` or `etcd#0`.',
        params: Type.Object({ member: Type.String({ minLength: 1, maxLength: 80 }) }),
        response: { 200: ActionResult, ...errorResponses },
      },
    },
    async (req) => {
      const r = await engine.repairEtcdMember(req.params.member);
      return {
        ok: true,
        message: `replacing etcd member ${r.instanceId} (on ${r.nodeId}); watch \`drover events --watch\``,
        data: r,
      };
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

  // ---------------------------------------------------------------- events
  app.get<{ Querystring: Static<typeof EventsQuery> }>(
    '/v1/events',
    {
      config: viewer,
      schema: {
        tags: ['events'],
        description:
          'Lists events (newest `limit`, default 200). With `Accept: text/event-stream` streams them as SSE: `id:` is the seq, `Last-Event-ID` (or `since`) resumes from the in-memory history, a comment every 15 s keeps the stream alive.',
        querystring: EventsQuery,
        produces: ['application/json', 'text/event-stream'],
        response: { 200: List(Event) },
      },
    },
    async (req, reply) => {
      const q = req.query;
      const filter = { kind: q.kind, nodeId: q.node, role: q.role, severity: q.severity, sinceSeq: q.since };
      if (wantsEventStream(req)) {
        streamEvents(req, reply, engine.events, filter, ctx.sse, ctx.sseOptions);
        return reply;
      }
      return { items: engine.events.list({ ...filter, limit: q.limit ?? 200 }) as EventMsg[] };
    },
  );

  // ---------------------------------------------------------------- tasks
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

  // ---------------------------------------------------------------- tokens (admin)
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
      engine.events.emit({
        kind: 'token.deleted',
        severity: 'info',
        message: `API token ${gone.name} (${gone.role}) deleted by ${req.token?.name}`,
      });
      return gone;
    },
  );
}
