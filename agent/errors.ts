import { DroverError, type ErrorSpec, PROTOCOL_ERRORS } from '../protocol/index.js';

/**
 * The agent's error registry: every stable code the agent puts in a PlanResult, TaskResult or
 * status, with its HTTP status (the coordinator's API forwards agent errors as they are).
 */
export const AGENT_ERRORS_OWN = {
  DROVER_ERR_CONFIG: {
    status: 400,
    description: 'An agent option is unknown or invalid; the message names it.',
  },
  DROVER_ERR_ILLEGAL_STATE: {
    status: 409,
    description: 'The operation is not allowed in the agent’s current lifecycle state.',
  },
  DROVER_ERR_NO_PINNED_KEY: {
    status: 409,
    description: 'A plan arrived before the agent pinned a coordinator signing key (it has not joined yet).',
  },
  DROVER_ERR_KEY_MISMATCH: {
    status: 409,
    description:
      'The coordinator offered a signing key whose fingerprint differs from the pinned or configured one.',
  },
  DROVER_ERR_PIN_FILE: {
    status: 500,
    description:
      'The pinned coordinator key file is unreadable or damaged; the agent stops rather than trust a key on first use.',
  },
  DROVER_ERR_NO_PIN: {
    status: 409,
    description:
      'No coordinator key fingerprint is configured and none is pinned; trust on first use needs insecureTrustFirstCoordinator.',
  },
  DROVER_ERR_JOIN_FAILED: {
    status: 403,
    description:
      'The join was refused for good (a bad, expired, used-up or revoked token, or a reply not signed by the pinned key); a new token is needed.',
  },
  DROVER_ERR_REGISTER_REFUSED: {
    status: 403,
    description: 'The coordinator refused the registration (for example a fingerprint mismatch).',
  },
  DROVER_ERR_PLAN_WRONG_NODE: { status: 400, description: 'A plan addressed to another node id.' },
  DROVER_ERR_PLAN_STALE: {
    status: 409,
    description:
      'A plan from an older coordinator epoch or generation than the applied one, or a different plan under the same generation.',
  },
  DROVER_ERR_PLAN_INVALID: {
    status: 400,
    description:
      'A plan is well-formed but cannot be applied as written (e.g. a file path escapes the root dir).',
  },
  DROVER_ERR_APPLY_FAILED: {
    status: 500,
    description: 'Applying a verified plan failed part-way (a file could not be written, a unit failed).',
  },
  DROVER_ERR_RUNTIME: {
    status: 500,
    description: 'The role runtime (process supervisor or systemctl) failed.',
  },
  DROVER_ERR_INSTANCE_NOT_FOUND: {
    status: 404,
    description: 'A task names an instance that is not in the applied plan.',
  },
  DROVER_ERR_COMMAND_NOT_DECLARED: {
    status: 400,
    description: 'run-command names a command the instance’s role does not declare.',
  },
  DROVER_ERR_TASK_BAD_REQUEST: {
    status: 400,
    description: 'A task lacks a field its kind needs (instanceId, command).',
  },
  DROVER_ERR_TASK_WRONG_NODE: {
    status: 400,
    description: 'A signed task addressed to another node id; it was not run.',
  },
  DROVER_ERR_TASK_EXPIRED: {
    status: 409,
    description:
      'A task arrived after its `expiresAt` (beyond the 30 s clock-skew allowance); it was not run.',
  },
  DROVER_ERR_TASK_STALE_EPOCH: {
    status: 409,
    description:
      'A task from a coordinator epoch below the one of the plan the agent applied: sent by a deposed leader; it was not run.',
  },
  DROVER_ERR_TASK_NOT_YET_VALID: {
    status: 409,
    description:
      'A task’s `issuedAt` is more than 30 s ahead of the agent’s clock (clock skew, or a forged time); it was not run.',
  },
  DROVER_ERR_TASK_REPLAYED: {
    status: 409,
    description:
      'A task id the agent has already seen (a replay, or the task was sent twice); it was not run again.',
  },
  DROVER_ERR_TASK_LEDGER: {
    status: 500,
    description:
      'The agent could not record the task id in its data dir (`tasks-seen.json`), so it cannot rule out a replay after a restart; the task was not run.',
  },
  DROVER_ERR_TASK_FAILED: { status: 500, description: 'A task ran and failed; the output says why.' },
  DROVER_ERR_TASK_TIMEOUT: { status: 504, description: 'A task did not finish within its timeout.' },
  DROVER_ERR_CERTIFICATE: {
    status: 502,
    description:
      'An instance’s certificate could not be obtained: the coordinator is unreachable or refused the CSR (the message carries its code). The instance starts once it has one; the agent retries.',
  },
  DROVER_ERR_SEED: {
    status: 500,
    description:
      'An instance whose plan seeds its data from an etcd snapshot could not be seeded: the snapshot could not be fetched, its size or SHA-256 is wrong, no restore tool is installed, or the restore failed. The instance is not started; the agent tries again.',
  },
  DROVER_ERR_RUN_AS: {
    status: 500,
    description:
      'An instance could not be started as its role’s system user (etcd, haproxy): the user could not be created, or it cannot reach one of the instance’s paths (the message names the directory). Nothing was started.',
  },
} as const satisfies Record<string, ErrorSpec>;

export const AGENT_ERRORS: Record<string, ErrorSpec> = { ...PROTOCOL_ERRORS, ...AGENT_ERRORS_OWN };

export type AgentErrorCode = keyof typeof AGENT_ERRORS_OWN;

export class AgentError extends DroverError {
  constructor(
    code: AgentErrorCode,
    message: string,
    opts: { details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(code, message, { status: AGENT_ERRORS_OWN[code].status, ...opts });
    this.name = 'AgentError';
  }
}

export class IllegalStateError extends AgentError {
  constructor(message: string) {
    super('DROVER_ERR_ILLEGAL_STATE', message);
    this.name = 'IllegalStateError';
  }
}

/** Turns anything thrown into the `{ code, message }` body that results and statuses carry. */
export function errorBody(err: unknown): { code: string; message: string } {
  if (err instanceof DroverError) return { code: err.code, message: err.message };
  return { code: 'DROVER_ERR_RUNTIME', message: (err as Error)?.message ?? String(err) };
}
