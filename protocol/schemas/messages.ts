import { type Static, Type } from '@sinclair/typebox';
import {
  AgentLabels,
  Hostname,
  InstanceId,
  InstancePhase,
  IpAddress,
  IsoTime,
  NodeId,
  NodeState,
  RoleName,
  Simulator,
  Version,
} from './common.js';
import { Facts } from './facts.js';
import { SignedPlan, SnapshotId } from './plan.js';

export const Fingerprint = Type.Object({
  machineId: Type.String({ maxLength: 128 }),
  macs: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 256 }),
});
export type Fingerprint = Static<typeof Fingerprint>;

/** An id of a join token: the subject token of its join subject. */
export const JoinTokenId = Type.String({ pattern: '^[a-z0-9]{6,32}$', description: 'join token id' });

/**
 * A host asks to join (on `drover.v1.join.<tokenId>`, which only that token's bootstrap user may
 * publish). It sends the public half of the nkey it made; the seed never leaves the host.
 */
export const Join = Type.Object(
  {
    v: Version,
    type: Type.Literal('join'),
    tokenId: JoinTokenId,
    nodeId: NodeId,
    hostname: Hostname,
    address: IpAddress,
    fingerprint: Fingerprint,
    userKey: Type.String({
      pattern: '^U[A-Z2-7]{55}$',
      description: 'the nkey user public key the node will connect with',
    }),
    nonce: Type.String({
      pattern: '^[A-Za-z0-9_-]{16,64}$',
      description: 'random; the signed reply repeats it',
    }),
    agentVersion: Type.String({ maxLength: 64 }),
  },
  { $id: 'Join' },
);
export type Join = Static<typeof Join>;

/**
 * The coordinator's answer to a Join, signed with its plan-signing key over the canonical JSON of
 * every other field, so the agent can check it against the pinned fingerprint: a rogue responder
 * cannot hand out a JWT, and a reply to someone else's join (another nonce or key) is refused.
 */
export const JoinReply = Type.Object(
  {
    v: Version,
    type: Type.Literal('join-reply'),
    ok: Type.Boolean(),
    nodeId: NodeId,
    nonce: Type.String({ maxLength: 64 }),
    userKey: Type.String({ maxLength: 64 }),
    state: Type.Optional(NodeState),
    userJwt: Type.Optional(Type.String({ maxLength: 8192, description: 'the node user JWT, for userKey' })),
    reason: Type.Optional(Type.String({ maxLength: 1024 })),
    error: Type.Optional(
      Type.Object({ code: Type.String({ maxLength: 64 }), message: Type.String({ maxLength: 1024 }) }),
    ),
    signingKey: Type.String({ maxLength: 256, description: 'base64 DER (SPKI) ed25519 public key' }),
    keyFingerprint: Type.String({ maxLength: 64 }),
    signature: Type.String({ maxLength: 256, description: 'base64 ed25519 signature' }),
  },
  { $id: 'JoinReply' },
);
export type JoinReply = Static<typeof JoinReply>;

export const Register = Type.Object(
  {
    v: Version,
    type: Type.Literal('register'),
    nodeId: NodeId,
    hostname: Hostname,
    address: IpAddress,
    labels: AgentLabels,
    facts: Facts,
    fingerprint: Fingerprint,
    agentVersion: Type.String(),
    pinnedKeyFingerprint: Type.Optional(Type.String()),
    applied: Type.Optional(
      Type.Object({
        generation: Type.Integer({ minimum: 0 }),
        checksum: Type.String(),
        coordinatorEpoch: Type.Integer(),
      }),
    ),
  },
  { $id: 'Register' },
);
export type Register = Static<typeof Register>;

export const RegisterReply = Type.Object(
  {
    v: Version,
    type: Type.Literal('register-reply'),
    accepted: Type.Boolean({
      description: 'false: refused (see reason); a Pending node is accepted but gets no plan',
    }),
    nodeId: NodeId,
    state: NodeState,
    reason: Type.Optional(Type.String()),
    coordinatorEpoch: Type.Integer({ minimum: 1 }),
    signingKey: Type.String({ description: 'base64 DER (SPKI) ed25519 public key used to sign plans' }),
    keyFingerprint: Type.String({ description: 'sha256 of the signing key DER, hex' }),
    heartbeatIntervalMs: Type.Integer({ minimum: 100 }),
    plan: Type.Optional(SignedPlan),
  },
  { $id: 'RegisterReply' },
);
export type RegisterReply = Static<typeof RegisterReply>;

export const StatusDigest = Type.Object({
  generation: Type.Integer({ minimum: 0 }),
  checksum: Type.String({ description: 'applied plan checksum, or empty' }),
  coordinatorEpoch: Type.Integer({ minimum: 0 }),
  health: Type.String({ description: 'sha256 (hex, 16 chars) over instance id/phase/restarts' }),
  instances: Type.Integer({ minimum: 0 }),
  unhealthy: Type.Integer({ minimum: 0 }),
});
export type StatusDigest = Static<typeof StatusDigest>;

export const Heartbeat = Type.Object(
  {
    v: Version,
    type: Type.Literal('heartbeat'),
    nodeId: NodeId,
    seq: Type.Integer({ minimum: 0 }),
    sentAt: IsoTime,
    digest: StatusDigest,
  },
  { $id: 'Heartbeat' },
);
export type Heartbeat = Static<typeof Heartbeat>;

/** At most this many characters (and UTF-8 bytes) of an instance's last output travel in a status. */
export const LAST_OUTPUT_MAX_LENGTH = 4096;
/** Lines of output an agent attaches (the newest); fewer when they would pass the length cap. */
export const LAST_OUTPUT_MAX_LINES = 20;
/**
 * Characters the last output may not hold: C0 controls but tab and newline, DEL, C1 controls, and
 * the bidirectional overrides and isolates — so it renders as plain lines on any terminal.
 */
export const LAST_OUTPUT_FORBIDDEN =
  '\\u0000-\\u0008\\u000B-\\u001F\\u007F-\\u009F\\u202A-\\u202E\\u2066-\\u2069';

/** The newest lines of an instance's output (stderr and stdout), as the agent attaches them. */
export const LastOutput = Type.String({
  maxLength: LAST_OUTPUT_MAX_LENGTH,
  pattern: `^[^${LAST_OUTPUT_FORBIDDEN}]*$`,
  description: `the newest lines (at most ${LAST_OUTPUT_MAX_LINES}, ${LAST_OUTPUT_MAX_LENGTH} characters) of the instance's output, control characters removed; sent while it is CrashLoop or Failed or has exited non-zero`,
});

export const InstanceStatus = Type.Object({
  id: InstanceId,
  role: RoleName,
  epoch: Type.Integer({ minimum: 0 }),
  checksum: Type.String(),
  phase: InstancePhase,
  health: Type.Union([Type.Literal('unknown'), Type.Literal('healthy'), Type.Literal('unhealthy')]),
  restarts: Type.Integer({ minimum: 0 }),
  lastError: Type.Optional(Type.String()),
  lastOutput: Type.Optional(LastOutput),
  lastExitCode: Type.Optional(
    Type.Integer({
      minimum: 0,
      maximum: 255,
      description:
        'exit code of the last exit, while the instance is failing and when it exited (not killed by a signal)',
    }),
  ),
  pid: Type.Optional(Type.Integer({ minimum: 1 })),
  startedAt: Type.Optional(IsoTime),
  simulated: Type.Boolean(),
  simulator: Type.Optional(Simulator),
});
export type InstanceStatus = Static<typeof InstanceStatus>;

export const PlanState = Type.Union([
  Type.Literal('none'),
  Type.Literal('applying'),
  Type.Literal('applied'),
  Type.Literal('refused'),
  Type.Literal('error'),
]);

export const NodeStatus = Type.Object(
  {
    v: Version,
    type: Type.Literal('status'),
    nodeId: NodeId,
    seq: Type.Integer({ minimum: 0 }),
    sentAt: IsoTime,
    plan: Type.Object({
      generation: Type.Integer({ minimum: 0 }),
      checksum: Type.String(),
      coordinatorEpoch: Type.Integer({ minimum: 0 }),
      state: PlanState,
      error: Type.Optional(Type.String()),
    }),
    digest: StatusDigest,
    instances: Type.Array(InstanceStatus),
  },
  { $id: 'NodeStatus' },
);
export type NodeStatus = Static<typeof NodeStatus>;

export const FactsUpdate = Type.Object(
  { v: Version, type: Type.Literal('facts'), nodeId: NodeId, facts: Facts },
  { $id: 'FactsUpdate' },
);
export type FactsUpdate = Static<typeof FactsUpdate>;

export const PlanFetch = Type.Object(
  {
    v: Version,
    type: Type.Literal('plan-fetch'),
    nodeId: NodeId,
    have: Type.Optional(Type.Object({ generation: Type.Integer({ minimum: 0 }), checksum: Type.String() })),
  },
  { $id: 'PlanFetch' },
);
export type PlanFetch = Static<typeof PlanFetch>;

export const PlanResult = Type.Object(
  {
    v: Version,
    type: Type.Literal('plan-result'),
    nodeId: NodeId,
    generation: Type.Integer({ minimum: 0 }),
    checksum: Type.String(),
    accepted: Type.Boolean(),
    error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
    changes: Type.Optional(
      Type.Object({
        started: Type.Array(InstanceId),
        restarted: Type.Array(InstanceId),
        stopped: Type.Array(InstanceId),
        unchanged: Type.Array(InstanceId),
      }),
    ),
  },
  { $id: 'PlanResult' },
);
export type PlanResult = Static<typeof PlanResult>;

export const TASK_KINDS = ['restart', 'stop', 'start', 'reprovision', 'diagnostics', 'run-command'] as const;
export type TaskKind = (typeof TASK_KINDS)[number];

export const Task = Type.Object(
  {
    v: Version,
    type: Type.Literal('task'),
    id: Type.String({ minLength: 1, maxLength: 64 }),
    nodeId: NodeId,
    kind: Type.Union(TASK_KINDS.map((k) => Type.Literal(k))),
    instanceId: Type.Optional(InstanceId),
    command: Type.Optional(
      Type.String({ pattern: '^[a-z0-9-]{1,64}$', description: 'run-command: a command the role declares' }),
    ),
    tailLines: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
    coordinatorEpoch: Type.Optional(
      Type.Integer({
        minimum: 0,
        description:
          'the epoch of the coordinator that sent it; an agent refuses a task below the epoch of its applied plan (a deposed leader)',
      }),
    ),
    timeoutMs: Type.Integer({ minimum: 100, maximum: 3_600_000 }),
    issuedAt: IsoTime,
    expiresAt: IsoTime,
  },
  {
    $id: 'Task',
    description:
      'A one-off task. `id` is unique per task; the agent starts it only between `issuedAt` and `expiresAt` (±30 s clock skew) and only once.',
  },
);
export type Task = Static<typeof Task>;

/**
 * A task as it travels on the task subject: signed by the coordinator with its plan-signing key
 * (ed25519 over the canonical JSON of `task`). An agent refuses a task without a valid signature,
 * for another node, outside its validity window, or seen before (agent/task-guard.ts).
 */
export const SignedTask = Type.Object(
  {
    v: Version,
    type: Type.Literal('task-push'),
    task: Task,
    signature: Type.Optional(
      Type.String({ maxLength: 256, description: 'base64 ed25519 signature over the canonical task' }),
    ),
    keyId: Type.Optional(Type.String({ maxLength: 128, description: 'fingerprint of the signing key' })),
  },
  { $id: 'SignedTask' },
);
export type SignedTask = Static<typeof SignedTask>;

export const TaskResult = Type.Object(
  {
    v: Version,
    type: Type.Literal('task-result'),
    id: Type.String({ minLength: 1, maxLength: 64 }),
    nodeId: NodeId,
    ok: Type.Boolean(),
    error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
    output: Type.Optional(Type.String()),
    data: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    finishedAt: IsoTime,
  },
  { $id: 'TaskResult' },
);
export type TaskResult = Static<typeof TaskResult>;

export const EventSeverity = Type.Union([
  Type.Literal('info'),
  Type.Literal('warning'),
  Type.Literal('error'),
]);

export const Event = Type.Object(
  {
    v: Version,
    type: Type.Literal('event'),
    id: Type.String({ minLength: 1 }),
    seq: Type.Integer({ minimum: 0 }),
    time: IsoTime,
    kind: Type.String({
      pattern: '^[a-z0-9-]+(\\.[a-z0-9-]+)*$',
      description: 'e.g. node.joined, role.moved, repair.started',
    }),
    severity: EventSeverity,
    message: Type.String(),
    nodeId: Type.Optional(NodeId),
    role: Type.Optional(RoleName),
    instanceId: Type.Optional(InstanceId),
    cluster: Type.Optional(Type.String()),
    data: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { $id: 'Event' },
);
export type Event = Static<typeof Event>;

export const CertificateRequest = Type.Object(
  {
    v: Version,
    type: Type.Literal('csr'),
    nodeId: NodeId,
    instanceId: InstanceId,
    profile: Type.String({
      pattern: '^[a-z0-9-]{1,64}$',
      description: 'which certificate the role needs, e.g. apiserver-serving',
    }),
    csrPem: Type.String({ maxLength: 65536 }),
  },
  { $id: 'CertificateRequest' },
);
export type CertificateRequest = Static<typeof CertificateRequest>;

export const CertificateReply = Type.Object(
  {
    v: Version,
    type: Type.Literal('csr-reply'),
    ok: Type.Boolean(),
    certPem: Type.Optional(Type.String()),
    caPem: Type.Optional(Type.String()),
    error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
  },
  { $id: 'CertificateReply' },
);
export type CertificateReply = Static<typeof CertificateReply>;

/** The raw bytes one snapshot chunk carries at most (base64 in the reply: ~342 KiB, under NATS's 1 MiB). */
export const SNAPSHOT_CHUNK_BYTES = 256 * 1024;

/**
 * agent → coordinator, request/reply on `subjects.snapshotFetch(nodeId)`: the chunk at `offset` of
 * the snapshot the node's plan seeds `instanceId` from. The coordinator answers only the node whose
 * desired plan names that snapshot for that instance (the subject is the sender's identity).
 */
export const SnapshotChunkRequest = Type.Object(
  {
    v: Version,
    type: Type.Literal('snapshot-chunk'),
    nodeId: NodeId,
    instanceId: InstanceId,
    snapshotId: SnapshotId,
    offset: Type.Integer({ minimum: 0 }),
  },
  { $id: 'SnapshotChunkRequest' },
);
export type SnapshotChunkRequest = Static<typeof SnapshotChunkRequest>;

export const SnapshotChunkReply = Type.Object(
  {
    v: Version,
    type: Type.Literal('snapshot-chunk-reply'),
    ok: Type.Boolean(),
    offset: Type.Optional(Type.Integer({ minimum: 0 })),
    /** the whole file's size */
    size: Type.Optional(Type.Integer({ minimum: 0 })),
    /** base64 of at most SNAPSHOT_CHUNK_BYTES */
    data: Type.Optional(Type.String({ maxLength: Math.ceil(SNAPSHOT_CHUNK_BYTES / 3) * 4 + 4 })),
    error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
  },
  { $id: 'SnapshotChunkReply' },
);
export type SnapshotChunkReply = Static<typeof SnapshotChunkReply>;
