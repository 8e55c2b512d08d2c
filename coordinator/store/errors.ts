import { DroverError, type ErrorSpec } from '../../protocol/index.js';

/** Error codes of the coordinator store (any implementation: lowdb file, memory, JetStream KV). */
export const STORE_ERRORS = {
  DROVER_ERR_STORE_EXISTS: { status: 409, description: 'create: the key already exists.' },
  DROVER_ERR_STORE_CONFLICT: {
    status: 409,
    description: 'The key is not at the expected revision (someone else wrote it); re-read and retry.',
  },
  DROVER_ERR_STORE_NOT_FOUND: { status: 404, description: 'The key does not exist.' },
  DROVER_ERR_STORE_COMPACTED: {
    status: 410,
    description:
      'watch: the requested revision is older than the retained change history; re-list and watch again.',
  },
  DROVER_ERR_STORE_CORRUPT: {
    status: 500,
    description:
      'The store file is unreadable or not a valid store; start-up stops and the file is left untouched.',
  },
  DROVER_ERR_STORE_VERSION: {
    status: 500,
    description: 'The store file has a schema version this build cannot read or migrate.',
  },
  DROVER_ERR_STORE_WRITE: {
    status: 503,
    description: 'Writing the store file failed; writes are retried and stay in memory meanwhile.',
  },
  DROVER_ERR_STORE_CLOSED: { status: 503, description: 'The store is closed.' },
  DROVER_ERR_STORE_BAD_KEY: {
    status: 400,
    description: 'A key is empty, too long, or contains control characters.',
  },
  DROVER_ERR_STORE_BAD_VALUE: {
    status: 400,
    description: 'A value cannot be stored as JSON (undefined, a function, a BigInt or a cycle).',
  },
  DROVER_ERR_STORE_OPTIONS: {
    status: 400,
    description: 'Invalid store options; the message names the option.',
  },
} as const satisfies Record<string, ErrorSpec>;

export type StoreErrorCode = keyof typeof STORE_ERRORS;

/**
 * The only error the store throws. Conflicts and write failures are retryable (a level-based
 * reconciler re-reads and tries again); `DROVER_ERR_STORE_CORRUPT` and `_VERSION` stop start-up.
 */
export class StoreError extends DroverError {
  override readonly code: StoreErrorCode;
  constructor(code: StoreErrorCode, message: string, details?: Record<string, unknown>, cause?: unknown) {
    super(code, message, { status: STORE_ERRORS[code].status, details, cause });
    this.name = 'StoreError';
    this.code = code;
  }
}
