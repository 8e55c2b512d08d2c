/**
 * Every NATS subject Drover uses, under one versioned prefix. Agents publish only under their own
 * node id, which is what lets `natsPermissionsForNode()` hand each agent a tight permission set.
 */
export const SUBJECT_PREFIX = 'drover.v1';

const TOKEN = /^[A-Za-z0-9_-]{1,128}$/;

/** Node ids become subject tokens, so they must not contain `.`, `*`, `>` or whitespace. */
export function isValidSubjectToken(s: string): boolean {
  return TOKEN.test(s);
}

function tok(s: string): string {
  if (!isValidSubjectToken(s)) throw new TypeError(`invalid subject token ${JSON.stringify(s)}`);
  return s;
}

export const subjects = {
  /**
   * joining host → coordinator, request/reply: Join → JoinReply. Only the holder of join token
   * `tokenId` (its bootstrap user) may publish here, so the subject names the token used.
   */
  join: (tokenId: string) => `${SUBJECT_PREFIX}.join.${tok(tokenId)}`,
  joinAll: () => `${SUBJECT_PREFIX}.join.*`,
  /** agent → coordinator, request/reply: Register → RegisterReply; per node, like every report */
  register: (nodeId: string) => `${SUBJECT_PREFIX}.register.${tok(nodeId)}`,
  registerAll: () => `${SUBJECT_PREFIX}.register.*`,
  /** agent → coordinator, publish: Heartbeat */
  heartbeat: (nodeId: string) => `${SUBJECT_PREFIX}.heartbeat.${tok(nodeId)}`,
  heartbeatAll: () => `${SUBJECT_PREFIX}.heartbeat.*`,
  /** agent → coordinator, publish: NodeStatus (only when it changed, or when asked) */
  status: (nodeId: string) => `${SUBJECT_PREFIX}.status.${tok(nodeId)}`,
  statusAll: () => `${SUBJECT_PREFIX}.status.*`,
  /** agent → coordinator, publish: Facts (only when they changed) */
  facts: (nodeId: string) => `${SUBJECT_PREFIX}.facts.${tok(nodeId)}`,
  factsAll: () => `${SUBJECT_PREFIX}.facts.*`,
  /** agent → coordinator, request/reply: PlanRequest → PlanPush (fetch after reconnect) */
  planFetch: (nodeId: string) => `${SUBJECT_PREFIX}.planfetch.${tok(nodeId)}`,
  planFetchAll: () => `${SUBJECT_PREFIX}.planfetch.*`,
  /** coordinator → agent, request/reply: PlanPush → PlanResult */
  plan: (nodeId: string) => `${SUBJECT_PREFIX}.plan.${tok(nodeId)}`,
  /** coordinator → agent, request/reply: Task → TaskResult */
  task: (nodeId: string) => `${SUBJECT_PREFIX}.task.${tok(nodeId)}`,
  /** agent → coordinator, request/reply: CertificateRequest → CertificateReply */
  csr: (nodeId: string) => `${SUBJECT_PREFIX}.csr.${tok(nodeId)}`,
  csrAll: () => `${SUBJECT_PREFIX}.csr.*`,
  /**
   * agent → coordinator, request/reply: SnapshotChunkRequest → SnapshotChunkReply, for the etcd
   * snapshot its plan seeds an instance from (`drover etcd restore`)
   */
  snapshotFetch: (nodeId: string) => `${SUBJECT_PREFIX}.snapshotfetch.${tok(nodeId)}`,
  snapshotFetchAll: () => `${SUBJECT_PREFIX}.snapshotfetch.*`,
  /** coordinator → anyone, publish: Event, by kind (e.g. `drover.v1.events.node.joined`) */
  event: (kind: string) => `${SUBJECT_PREFIX}.events.${kind.split('.').map(tok).join('.')}`,
  eventsAll: () => `${SUBJECT_PREFIX}.events.>`,
} as const;

/** Extracts the node id from a per-node subject such as `drover.v1.heartbeat.<id>`. */
export function nodeIdFromSubject(subject: string): string | undefined {
  const parts = subject.split('.');
  if (parts.length !== 4 || `${parts[0]}.${parts[1]}` !== SUBJECT_PREFIX) return undefined;
  const id = parts[3]!;
  return isValidSubjectToken(id) ? id : undefined;
}

/**
 * A node's inbox prefix (nats.js `inboxPrefix`): its replies arrive under `_INBOX_<node>.>`, which
 * only that node may subscribe to, so no node reads another's replies.
 */
export function nodeInboxPrefix(nodeId: string): string {
  return `_INBOX_${tok(nodeId)}`;
}

/** A join token's bootstrap inbox prefix: `_INBOX_join_<tokenId>`. */
export function bootstrapInboxPrefix(tokenId: string): string {
  return `_INBOX_join_${tok(tokenId)}`;
}

/**
 * The NATS permissions one agent needs, and nothing more: the node user JWT carries them
 * (coordinator/bus/auth.ts). Replies to the coordinator's requests go through `allow_responses`.
 */
export function natsPermissionsForNode(nodeId: string): {
  publish: { allow: string[] };
  subscribe: { allow: string[] };
} {
  return {
    publish: {
      allow: [
        subjects.register(nodeId),
        subjects.heartbeat(nodeId),
        subjects.status(nodeId),
        subjects.facts(nodeId),
        subjects.planFetch(nodeId),
        subjects.csr(nodeId),
        subjects.snapshotFetch(nodeId),
      ],
    },
    subscribe: { allow: [subjects.plan(nodeId), subjects.task(nodeId), `${nodeInboxPrefix(nodeId)}.>`] },
  };
}
