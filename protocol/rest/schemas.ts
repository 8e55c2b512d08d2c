import { type Static, type TSchema, Type } from '@sinclair/typebox';
import {
  ErrorBody,
  Event as EventSchema,
  Facts as FactsSchema,
  InstanceId,
  InstancePhase,
  IsoTime,
  Labels,
  LastOutput,
  NodeId,
  NodeState,
  RoleName,
  Simulator,
  TASK_KINDS,
  TaskResult as TaskResultSchema,
} from '../index.js';

/**
 * REST bodies. Protocol messages (Event, Facts, TaskResult, instance status) are reused as they
 * are; these are the API's own views and requests. Request schemas refuse unknown properties, so
 * a typo in a field name is an error naming it rather than a silently ignored field.
 */

/** A protocol schema without its `$id`, so several routes can embed it without id clashes. */
function inline<T extends TSchema>(s: T): T {
  const { $id: _id, ...rest } = s as T & { $id?: string };
  return rest as T;
}

export const TOKEN_ROLES = ['viewer', 'operator', 'admin'] as const;
export type TokenRole = (typeof TOKEN_ROLES)[number];
export const TokenRoleSchema = Type.Union(TOKEN_ROLES.map((r) => Type.Literal(r)));

export const Event = inline(EventSchema);
export const Facts = inline(FactsSchema);
export const TaskResult = inline(TaskResultSchema);
export { ErrorBody };

const InstanceHealth = Type.Union([
  Type.Literal('unknown'),
  Type.Literal('healthy'),
  Type.Literal('unhealthy'),
]);

export const Assignment = Type.Object({
  instanceId: InstanceId,
  role: RoleName,
  ordinal: Type.Integer({ minimum: 0 }),
  nodeId: NodeId,
  epoch: Type.Integer({ minimum: 0 }),
  cluster: Type.String(),
  previousNodeId: Type.Optional(NodeId),
  since: IsoTime,
});

export type Assignment = Static<typeof Assignment>;

export const Unplaced = Type.Object({ instanceId: InstanceId, role: RoleName, reason: Type.String() });
export type Unplaced = Static<typeof Unplaced>;

/** One instance as the API shows it: the assignment joined with what the agent reports. */
export const InstanceView = Type.Object({
  id: InstanceId,
  role: RoleName,
  nodeId: Type.Optional(NodeId),
  epoch: Type.Integer({ minimum: 0 }),
  /** false: the agent still runs it but it is no longer assigned here (being stopped or fenced) */
  assigned: Type.Boolean(),
  phase: Type.Union([InstancePhase, Type.Literal('Unknown')]),
  health: InstanceHealth,
  restarts: Type.Integer({ minimum: 0 }),
  simulated: Type.Boolean({ description: 'a clearly-labelled stand-in, not the real binary' }),
  simulator: Type.Optional(Simulator),
  lastError: Type.Optional(Type.String()),
  lastOutput: Type.Optional(LastOutput),
  lastExitCode: Type.Optional(
    Type.Integer({ minimum: 0, maximum: 255, description: 'exit code of the last exit, while failing' }),
  ),
  startedAt: Type.Optional(IsoTime),
});
export type InstanceView = Static<typeof InstanceView>;

export const NodeView = Type.Object({
  id: NodeId,
  hostname: Type.String(),
  address: Type.String(),
  cluster: Type.String(),
  state: NodeState,
  approved: Type.Boolean(),
  cordoned: Type.Boolean(),
  labels: Labels,
  lastHeartbeat: Type.Union([IsoTime, Type.Null()], {
    description: 'null until the first heartbeat since start',
  }),
  cpuCores: Type.Integer({ minimum: 0 }),
  memoryBytes: Type.Number({ minimum: 0 }),
  machineId: Type.String({
    description:
      'the machine id the agent presented (its /etc/machine-id, else its node id): compare it with the host before approving',
  }),
  plan: Type.Object({
    generation: Type.Integer({ minimum: 0 }),
    checksum: Type.String(),
    appliedGeneration: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]),
    appliedChecksum: Type.Union([Type.String(), Type.Null()]),
    converged: Type.Boolean({ description: 'the agent applied the desired plan' }),
    state: Type.Optional(
      Type.String({ description: 'agent-reported: none, applying, applied, refused, error' }),
    ),
    error: Type.Optional(Type.String()),
  }),
  instances: Type.Array(InstanceView),
  createdAt: IsoTime,
});
export type NodeView = Static<typeof NodeView>;

export const NodeDetail = Type.Composite([
  NodeView,
  Type.Object({
    facts: Facts,
    fingerprint: Type.Object({ machineId: Type.String(), macs: Type.Array(Type.String()) }),
    operatorLabels: Type.Record(Type.String(), Type.String(), {
      description: 'the labels set with `drover label` (part of `labels`, where they override the agent’s)',
    }),
    events: Type.Array(Event, { description: 'the newest events about this node' }),
  }),
]);
export type NodeDetail = Static<typeof NodeDetail>;

export const ROLE_STATUSES = ['Healthy', 'Progressing', 'Degraded', 'Unschedulable'] as const;
export const RoleView = Type.Object({
  name: RoleName,
  cluster: Type.String(),
  desired: Type.Integer({ minimum: 0, description: 'instances the topology asks for' }),
  placed: Type.Integer({ minimum: 0 }),
  healthy: Type.Integer({ minimum: 0 }),
  simulated: Type.Integer({ minimum: 0, description: 'instances run by a stand-in' }),
  status: Type.Union(ROLE_STATUSES.map((s) => Type.Literal(s))),
  reasons: Type.Array(Type.String(), { description: 'why the role is Degraded or Unschedulable' }),
  instances: Type.Array(InstanceView),
});
export type RoleView = Static<typeof RoleView>;

export const ClusterStatus = Type.Object({
  name: Type.String(),
  converged: Type.Boolean({ description: 'plans applied everywhere and every desired instance healthy' }),
  plansApplied: Type.Boolean(),
  roles: Type.Integer({ minimum: 0 }),
  healthyRoles: Type.Integer({ minimum: 0 }),
  unplaced: Type.Integer({ minimum: 0 }),
  reasons: Type.Array(Type.String()),
});

export const StatusView = Type.Object({
  converged: Type.Boolean(),
  epoch: Type.Integer({ minimum: 0 }),
  natsConnected: Type.Boolean(),
  nodes: Type.Record(Type.String(), Type.Integer({ minimum: 0 }), { description: 'nodes by state' }),
  clusters: Type.Array(ClusterStatus),
});
export type StatusView = Static<typeof StatusView>;

export const TopologyDiff = Type.Object({
  dryRun: Type.Boolean(),
  cluster: Type.String(),
  added: Type.Array(Assignment),
  moved: Type.Array(Type.Object({ from: Assignment, to: Assignment })),
  removed: Type.Array(Assignment),
  unplaced: Type.Array(Unplaced),
  nodesChanged: Type.Array(NodeId, { description: 'nodes whose plans change' }),
  warnings: Type.Optional(
    Type.Array(Type.String(), {
      description: 'what the topology allows but probably should not say (e.g. an even etcd member count)',
    }),
  ),
});
export type TopologyDiff = Static<typeof TopologyDiff>;

export const TopologyQuery = Type.Object(
  {
    dryRun: Type.Optional(Type.Boolean({ description: 'return the diff and apply nothing' })),
  },
  { additionalProperties: false },
);

export const EtcdMemberReplaceQuery = Type.Object(
  {
    dryRun: Type.Optional(
      Type.Boolean({ description: 'say what the replacement would do (quorum permitting) and do nothing' }),
    ),
  },
  { additionalProperties: false },
);

/** `POST /v1/etcd/members/:member/replace`: the member, and what the next reconcile makes of the request. */
export const EtcdMemberReplaceResult = Type.Object({
  ok: Type.Boolean(),
  message: Type.String(),
  data: Type.Object({
    cluster: Type.String(),
    instanceId: Type.String(),
    nodeId: Type.String(),
    dryRun: Type.Boolean({ description: 'true: nothing was done' }),
    verdict: Type.Union([
      Type.Object({ replace: Type.Literal(true) }),
      Type.Object({
        replace: Type.Literal(false),
        reason: Type.String({
          description: 'why the reconcile refuses it now (quorum, one change at a time)',
        }),
      }),
    ]),
  }),
});
export type EtcdMemberReplaceResult = Static<typeof EtcdMemberReplaceResult>;

/** One etcd snapshot's record (`drover etcd snapshot list`). */
export const EtcdSnapshot = Type.Object(
  {
    id: Type.String(),
    cluster: Type.String({ description: 'the Drover cluster (topology) it belongs to' }),
    etcdClusterId: Type.String({ description: "etcd's own cluster id (uint64, decimal)" }),
    memberId: Type.String({ description: 'the member it was taken from' }),
    endpoint: Type.String({ description: "that member's client URL" }),
    revision: Type.Integer({ description: "etcd's revision when it was taken" }),
    etcdVersion: Type.String(),
    size: Type.Integer({ description: 'bytes' }),
    sha256: Type.String({ description: 'SHA-256 (hex) of the file as stored' }),
    takenAt: IsoTime,
    trigger: Type.Union([Type.Literal('schedule'), Type.Literal('operator')]),
    by: Type.Optional(Type.String({ description: 'the token that asked for it' })),
  },
  { $id: 'EtcdSnapshot' },
);
export type EtcdSnapshot = Static<typeof EtcdSnapshot>;
export const EtcdSnapshotParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' }),
});
export const EtcdSnapshotResult = Type.Object({
  ok: Type.Boolean(),
  message: Type.String(),
  data: EtcdSnapshot,
});

export const EtcdRestoreRequest = Type.Object(
  {
    snapshot: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' }),
    force: Type.Optional(
      Type.Boolean({
        description: 'restore even though quorum holds (every write since the snapshot is lost)',
      }),
    ),
    dryRun: Type.Optional(Type.Boolean({ description: 'check and list the steps; change nothing' })),
  },
  { additionalProperties: false },
);

/** An etcd restore (`drover etcd restore`), as coordinator/etcd/restore-decide.ts records it. */
export const EtcdRestoreView = Type.Object(
  {
    id: Type.String(),
    cluster: Type.String(),
    snapshotId: Type.String(),
    sha256: Type.String(),
    size: Type.Integer(),
    revision: Type.Integer({ description: "the snapshot's etcd revision" }),
    snapshotClusterId: Type.String(),
    clusterIdBefore: Type.Optional(Type.String({ description: 'the etcd cluster id the survivors ran' })),
    clusterIdAfter: Type.Optional(
      Type.String({ description: 'the etcd cluster id of the restored cluster' }),
    ),
    target: Type.Object({
      instanceId: Type.String(),
      nodeId: Type.String(),
      epoch: Type.Integer(),
      initialCluster: Type.String(),
    }),
    parked: Type.Array(Type.Object({ instanceId: Type.String(), epoch: Type.Integer() })),
    released: Type.Array(
      Type.Object({ instanceId: Type.String(), initialCluster: Type.String(), at: IsoTime }),
    ),
    joining: Type.Optional(Type.String()),
    rejoined: Type.Array(Type.String()),
    phase: Type.Union([
      Type.Literal('stopping'),
      Type.Literal('seeding'),
      Type.Literal('rejoining'),
      Type.Literal('complete'),
    ]),
    forced: Type.Boolean(),
    by: Type.Optional(Type.String()),
    startedAt: IsoTime,
    seededAt: Type.Optional(IsoTime),
    completedAt: Type.Optional(IsoTime),
    lineage: Type.Array(Type.String()),
  },
  { $id: 'EtcdRestore' },
);
export type EtcdRestoreView = Static<typeof EtcdRestoreView>;
export const EtcdRestoreResult = Type.Object({
  ok: Type.Boolean(),
  message: Type.String(),
  dryRun: Type.Boolean(),
  steps: Type.Array(Type.String()),
  data: EtcdRestoreView,
});

/** One certificate (`drover get certificates`): an issued leaf, or a CA. */
export const CertificateItem = Type.Object(
  {
    kind: Type.Union([Type.Literal('leaf'), Type.Literal('ca')]),
    cluster: Type.String(),
    node: Type.String(),
    instance: Type.String(),
    profile: Type.String({ description: 'the issuing profile (etcd-server, apiserver, …), or ca:<name>' }),
    serialNumber: Type.String(),
    notBefore: IsoTime,
    notAfter: IsoTime,
    renewAt: Type.String({
      description:
        'when it is renewed: a leaf by the coordinator through the rollout gate 37 days before expiry (at most the last half of its lifetime; the agent on its own at 30 days, at most the last third, if no coordinator did); a CA in its last year',
    }),
  },
  { $id: 'CertificateItem' },
);
export type CertificateItem = Static<typeof CertificateItem>;

export const ClusterQuery = Type.Object(
  { cluster: Type.Optional(Type.String({ minLength: 1, maxLength: 63 })) },
  { additionalProperties: false },
);

export const NodeParams = Type.Object({ id: NodeId });
export const RoleParams = Type.Object({ name: RoleName });
export const InstanceParams = Type.Object({ instance: InstanceId });
export const TaskParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
export const TokenParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });

export const RepairBody = Type.Object(
  { force: Type.Optional(Type.Boolean({ description: 'act even when the storm guard paused repairs' })) },
  { additionalProperties: false },
);
export type RepairBody = Static<typeof RepairBody>;

export const MoveBody = Type.Object(
  { to: NodeId, force: Type.Optional(Type.Boolean()) },
  { additionalProperties: false },
);
export type MoveBody = Static<typeof MoveBody>;

export const ActionResult = Type.Object({
  ok: Type.Boolean(),
  message: Type.String(),
  node: Type.Optional(NodeView),
  data: Type.Optional(Type.Unknown()),
});

export const EventsQuery = Type.Object(
  {
    kind: Type.Optional(
      Type.String({ maxLength: 128, description: 'kind or kind prefix, e.g. `node` or `role.moved`' }),
    ),
    node: Type.Optional(NodeId),
    role: Type.Optional(RoleName),
    severity: Type.Optional(
      Type.Union([Type.Literal('info'), Type.Literal('warning'), Type.Literal('error')]),
    ),
    since: Type.Optional(Type.Integer({ minimum: 0, description: 'only events with seq greater than this' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 5000, description: 'newest N (default 200)' })),
  },
  { additionalProperties: false },
);
export type EventsQuery = Static<typeof EventsQuery>;

export const TaskCreate = Type.Object(
  {
    nodeId: NodeId,
    kind: Type.Union(TASK_KINDS.map((k) => Type.Literal(k))),
    instanceId: Type.Optional(InstanceId),
    command: Type.Optional(Type.String({ pattern: '^[a-z0-9-]{1,64}$' })),
    tailLines: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
    timeoutMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 3_600_000 })),
  },
  { additionalProperties: false },
);
export type TaskCreate = Static<typeof TaskCreate>;

export const TaskCreateQuery = Type.Object(
  { wait: Type.Optional(Type.Boolean({ description: 'answer when the task finished (up to its timeout)' })) },
  { additionalProperties: false },
);

export const TASK_STATES = ['running', 'succeeded', 'failed'] as const;
export const TaskRecord = Type.Object({
  id: Type.String(),
  state: Type.Union(TASK_STATES.map((s) => Type.Literal(s))),
  request: TaskCreate,
  createdBy: Type.String({ description: 'name of the API token that created it' }),
  createdAt: IsoTime,
  finishedAt: Type.Optional(IsoTime),
  result: Type.Optional(TaskResult),
  error: Type.Optional(ErrorBody),
});
export type TaskRecord = Static<typeof TaskRecord>;

export const TasksQuery = Type.Object(
  {
    node: Type.Optional(NodeId),
    state: Type.Optional(Type.Union(TASK_STATES.map((s) => Type.Literal(s)))),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
  },
  { additionalProperties: false },
);

export const TokenInfo = Type.Object({
  id: Type.String(),
  name: Type.String(),
  role: TokenRoleSchema,
  createdAt: IsoTime,
});

export type TokenInfo = Static<typeof TokenInfo>;

export const TokenCreate = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._@-]+$' }),
    role: TokenRoleSchema,
  },
  { additionalProperties: false },
);
export type TokenCreate = Static<typeof TokenCreate>;

export const TokenCreated = Type.Composite([
  TokenInfo,
  Type.Object({ token: Type.String({ description: 'shown once; only its hash is stored' }) }),
]);

export const HealthBody = Type.Object({
  status: Type.String(),
  version: Type.Optional(Type.String()),
  checks: Type.Optional(Type.Record(Type.String(), Type.Boolean())),
});

export const List = <T extends TSchema>(item: T) => Type.Object({ items: Type.Array(item) });

/** How far a drain has got (GET /v1/nodes/:id/drain). */
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

/** POST /v1/clean (seed 001's paictl clean). */
export const CleanBody = Type.Object(
  {
    cluster: Type.Optional(Type.String({ minLength: 1, maxLength: 63 })),
    purge: Type.Optional(Type.Boolean({ description: 'also delete the data the roles kept on the nodes' })),
  },
  { additionalProperties: false },
);

export const CleanResultBody = Type.Object({
  cluster: Type.String(),
  purge: Type.Boolean(),
  stopping: Type.Array(Type.Object({ nodeId: Type.String(), instances: Type.Array(Type.String()) })),
  purging: Type.Array(Type.Object({ nodeId: Type.String(), paths: Type.Integer() })),
  message: Type.String(),
});
export type CleanResult = Static<typeof CleanResultBody>;

/** POST /v1/nodes/:id/labels */
export const LabelBody = Type.Object(
  {
    set: Type.Optional(
      Type.Record(Type.String(), Type.String(), {
        description: 'labels to set (Kubernetes key and value syntax); they override the agent’s',
      }),
    ),
    remove: Type.Optional(Type.Array(Type.String(), { description: 'operator labels to remove' })),
    force: Type.Optional(
      Type.Boolean({
        description: `change ${'`drover.dev/cluster`'} even though the node still runs instances of its current cluster (they leave it, for other nodes of that cluster where they fit)`,
      }),
    ),
  },
  { additionalProperties: false },
);
/** GET /v1/join-command */
export const JoinCommandView = Type.Object({
  command: Type.String({ description: 'the `drover-agent join …` one-liner, shell-quoted' }),
  natsUrl: Type.String({ description: 'NATS URL(s) for agents, comma-separated' }),
  joinToken: Type.String({ description: 'a fresh single-use join token (24 h), made for this answer' }),
  tokenId: Type.Optional(Type.String()),
  expiresAt: Type.Optional(IsoTime),
  caFile: Type.Optional(Type.String()),
  coordinatorKeyFingerprint: Type.String(),
  notes: Type.Array(Type.String(), { description: 'what to know before running it' }),
});

/** POST /v1/join-tokens */
export const JoinTokenCreate = Type.Object(
  {
    ttl: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 32,
        description: 'how long the token is valid, e.g. `1h`, `30m`, `7d`… as `1h30m` (default 24h)',
      }),
    ),
    uses: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 10000, description: 'hosts it may join (default 1)' }),
    ),
    description: Type.Optional(Type.String({ maxLength: 256 })),
    requireApproval: Type.Optional(
      Type.Boolean({
        description:
          'hosts that join with it wait Pending until `drover approve` (default false: a host is admitted once it registers with its new credentials)',
      }),
    ),
  },
  { additionalProperties: false },
);
export type JoinTokenCreate = Static<typeof JoinTokenCreate>;

export const JoinTokenState = Type.Union(
  ['active', 'expired', 'used', 'revoked'].map((s) => Type.Literal(s)),
);

/** A join token as listed: no secrets. */
export const JoinTokenView = Type.Object({
  id: Type.String(),
  description: Type.String(),
  createdAt: IsoTime,
  expiresAt: IsoTime,
  uses: Type.Integer(),
  used: Type.Integer(),
  state: JoinTokenState,
  revokedAt: Type.Optional(IsoTime),
  nodes: Type.Array(Type.String(), { description: 'node ids that joined with it' }),
  requireApproval: Type.Boolean({ description: 'hosts that join with it wait Pending for `drover approve`' }),
});
export type JoinTokenView = Static<typeof JoinTokenView>;

export const JoinTokenCreated = Type.Composite([
  JoinTokenView,
  Type.Object({
    token: Type.String({ description: 'shown once: the bootstrap credentials it carries are not kept' }),
    joinCommand: Type.String({ description: 'the `drover-agent join …` one-liner with this token' }),
    coordinatorKeyFingerprint: Type.String({
      pattern: '^[0-9a-f]{64}$',
      description: 'sha256 of the coordinator plan-signing key: what `--coordinator-key-fingerprint` pins',
    }),
  }),
]);
export type JoinTokenCreated = Static<typeof JoinTokenCreated>;

export const JoinTokenParams = Type.Object({ id: Type.String({ pattern: '^[a-z0-9]{6,32}$' }) });
/** DELETE /v1/nodes/:id */
export const RemoveQuery = Type.Object(
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
/** GET /v1/nodes */
export const NodesQuery = Type.Object(
  { cluster: Type.Optional(Type.String()), state: Type.Optional(Type.String()) },
  { additionalProperties: false },
);
/** GET /v1/assignments */
export const AssignmentsQuery = Type.Object(
  {
    cluster: Type.Optional(Type.String()),
    node: Type.Optional(Type.String()),
    role: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);
/** /v1/topologies/:name */
export const TopologyParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 63 }) });
/** GET /v1/topologies */
export const AnyTopology = Type.Object(
  {
    metadata: Type.Object({ name: Type.String() }, { additionalProperties: true }),
  },
  { additionalProperties: true, description: 'a topology document; see docs/topology.md' },
);
export type JoinCommandView = Static<typeof JoinCommandView>;

/** Standard error responses for the OpenAPI document. */
export const errorResponses = {
  400: ErrorBody,
  401: ErrorBody,
  403: ErrorBody,
  404: ErrorBody,
  409: ErrorBody,
  429: ErrorBody,
  503: ErrorBody,
} as const;

/** One coordinator, as `drover get coordinators` shows it (GET /v1/coordinators). */
export const CoordinatorItem = Type.Object(
  {
    id: Type.String(),
    api: Type.Optional(Type.String()),
    role: Type.Union([Type.Literal('leader'), Type.Literal('follower')]),
    epoch: Type.Optional(Type.Integer()),
    term: Type.Optional(Type.Integer({ description: 'the lease term: rises with every change of leader' })),
    leaseAgeMs: Type.Optional(
      Type.Integer({
        description: 'leader: ms since its lease was last seen renewed by the coordinator answering',
      }),
    ),
    host: Type.Optional(Type.String()),
    pid: Type.Optional(Type.Integer()),
    seenAgoMs: Type.Optional(Type.Integer({ description: 'ms since its presence record was written' })),
  },
  { $id: 'CoordinatorItem' },
);
export type CoordinatorItem = Static<typeof CoordinatorItem>;
export const CoordinatorList = Type.Object({
  /** `ha` when several coordinators share a JetStream store; `single` for the embedded default */
  mode: Type.Union([Type.Literal('single'), Type.Literal('ha')]),
  /** the coordinator that answered */
  self: Type.String(),
  items: Type.Array(CoordinatorItem),
});
