import { DroverError, type ErrorSpec, PROTOCOL_ERRORS } from '../protocol/index.js';
import { API_ERRORS } from '../protocol/rest/errors.js';
import { ARKTOS_ERRORS } from './arktos/errors.js';
import { JOIN_ERRORS } from './join-errors.js';
import { OPENPAI_ERRORS } from './openpai/errors.js';
import { PKI_ERRORS } from './pki/errors.js';
import { STORE_ERRORS } from './store/errors.js';
import { TOPOLOGY_ERRORS } from './topology/errors.js';
import { VC_ERRORS } from './vc/errors.js';

/**
 * The coordinator's error registry: every stable code it can return, with its HTTP status. Parts
 * of the coordinator keep their codes next to their code (store, topology, …) and this file
 * composes them, so there is one registry and a test can check codes are unique and documented.
 * Add a part's table to `COORDINATOR_ERRORS` below.
 */
export const ENGINE_ERRORS = {
  DROVER_ERR_NODE_NOT_FOUND: { status: 404, description: 'No node has this id.' },
  DROVER_ERR_INSTANCE_NOT_FOUND: { status: 404, description: 'No role instance has this id.' },
  DROVER_ERR_TASK_NOT_FOUND: { status: 404, description: 'No task has this id.' },
  DROVER_ERR_ILLEGAL_STATE: {
    status: 409,
    description: 'The operation is not allowed in the current lifecycle state.',
  },
  DROVER_ERR_NODE_FINGERPRINT: {
    status: 409,
    description: 'A known node id registered from a different machine (wiped or cloned host).',
  },
  DROVER_ERR_BAD_REQUEST: {
    status: 400,
    description: 'The request is malformed; `details.field` names the field.',
  },
  DROVER_ERR_UNAUTHORIZED: { status: 401, description: 'No valid bearer token was given.' },
  DROVER_ERR_FORBIDDEN: { status: 403, description: 'The token is valid but its role may not do this.' },
  DROVER_ERR_RATE_LIMITED: {
    status: 429,
    description: 'Too many failed authentications from this client; retry later.',
  },
  DROVER_ERR_NOT_LEADER: {
    status: 421,
    description:
      'Coordinator HA: this coordinator is a follower and does not take writes; the body names the leader (`details.leader`, `details.api`) and the `x-drover-leader` header gives its API address. The CLI re-sends to it when that address is one of its `--server` URLs.',
  },
  DROVER_ERR_NOT_READY: {
    status: 503,
    description: 'The coordinator is not ready (store or NATS unavailable).',
  },
  DROVER_ERR_NODE_UNREACHABLE: { status: 504, description: 'The node did not answer in time.' },
  DROVER_ERR_ETCD_UNAVAILABLE: {
    status: 503,
    description: 'No surviving etcd member answered the membership API.',
  },
  DROVER_ERR_ETCD_QUORUM: {
    status: 409,
    description: 'An etcd membership change was refused because it would break quorum.',
  },
  DROVER_ERR_SNAPSHOT_NOT_FOUND: { status: 404, description: 'No etcd snapshot has this id.' },
  DROVER_ERR_SNAPSHOT_DAMAGED: {
    status: 409,
    description:
      "A stored etcd snapshot does not match its recorded SHA-256 (or etcd's own trailing hash): it is not served or restored.",
  },
  DROVER_ERR_RESTORE_REFUSED: {
    status: 409,
    description:
      'An etcd restore was refused before anything was touched: the snapshot belongs to another cluster or etcd cluster, quorum still holds (and the restore was not forced), a restore is already running, or no member has a live node to restore onto. The message says which.',
  },
  DROVER_ERR_REPAIR_PAUSED: {
    status: 409,
    description: 'Automatic reassignment is paused by the storm guard; use --force to override.',
  },
  DROVER_ERR_LAST_HEALTHY: {
    status: 409,
    description: 'Refused: this would move the last healthy instance of a role away from a live node.',
  },
  DROVER_ERR_MOVE_REFUSED: {
    status: 409,
    description:
      'The target node cannot take the instance (selector, one per node, port, state, cordon, cluster); `details.reason` says why, and nothing was recorded.',
  },
  DROVER_ERR_NODE_LIVE: {
    status: 409,
    description:
      'Refused: the node is still heartbeating and runs instances; drain it first, or remove it with --force (fenced first).',
  },
  DROVER_ERR_FENCE_TIMEOUT: {
    status: 504,
    description:
      'A forced removal was abandoned: the node did not confirm in time that it stopped its instances; nothing was removed.',
  },
  DROVER_ERR_INTERNAL: { status: 500, description: 'An unexpected internal error.' },
} as const satisfies Record<string, ErrorSpec>;

/**
 * Every code the coordinator may answer with, composed statically: `CoordinatorErrorCode` is the
 * union of its keys, so `coordinatorError('DROVER_ERR_TYPO', …)` fails to compile rather than
 * answering 500 at run time. A part adds its table here (and `npm run openapi` documents it).
 */
const REGISTRY = {
  ...PROTOCOL_ERRORS,
  ...ENGINE_ERRORS,
  ...API_ERRORS,
  ...PKI_ERRORS,
  ...VC_ERRORS,
  ...ARKTOS_ERRORS,
  ...OPENPAI_ERRORS,
  ...STORE_ERRORS,
  ...TOPOLOGY_ERRORS,
  ...JOIN_ERRORS,
} as const satisfies Record<string, ErrorSpec>;

export type CoordinatorErrorCode = keyof typeof REGISTRY;

/**
 * The registry as a lookup table for codes that arrive as strings (another part's error, the
 * wire); check with `isCoordinatorErrorCode` first. Code that names a code uses the union type.
 */
export const COORDINATOR_ERRORS: Readonly<Record<string, ErrorSpec>> = REGISTRY;

/** Whether a string (from the wire, or another part's error) is one of the coordinator's codes. */
export function isCoordinatorErrorCode(code: unknown): code is CoordinatorErrorCode {
  return typeof code === 'string' && Object.hasOwn(REGISTRY, code);
}

export function coordinatorError(
  code: CoordinatorErrorCode,
  message: string,
  details?: Record<string, unknown>,
  cause?: unknown,
): DroverError {
  const spec: ErrorSpec = REGISTRY[code];
  return new DroverError(code, message, { status: spec.status, details, cause });
}
