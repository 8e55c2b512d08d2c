/**
 * Base error type shared by every Drover component. Each component keeps its own registry of
 * stable codes (see `PROTOCOL_ERRORS` below, `agent/errors.ts`, `coordinator/errors.ts`); a code
 * maps to one HTTP status so the REST API can translate any error without a lookup table per route.
 */
export interface ErrorSpec {
  readonly status: number;
  readonly description: string;
}

export class DroverError extends Error {
  readonly code: string;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;
  constructor(
    code: string,
    message: string,
    opts: { status?: number; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'DroverError';
    this.code = code;
    this.status = opts.status ?? 500;
    this.details = opts.details;
  }
  toJSON(): { code: string; message: string; details?: Record<string, unknown> } {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}

/** Throw to stop retry loops: the operation can never succeed as asked. Anything else is retried. */
export class TerminalError extends DroverError {
  constructor(
    code: string,
    message: string,
    opts: { status?: number; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(code, message, opts);
    this.name = 'TerminalError';
  }
}

export const PROTOCOL_ERRORS = {
  DROVER_ERR_DECODE: {
    status: 400,
    description: 'A message or body does not match its schema; `field` names the JSON path.',
  },
  DROVER_ERR_BAD_JSON: { status: 400, description: 'A message or body is not valid JSON.' },
  DROVER_ERR_PROTOCOL_VERSION: {
    status: 400,
    description: 'A message carries a protocol version this build does not speak.',
  },
  DROVER_ERR_PLAN_UNSIGNED: { status: 400, description: 'A plan arrived without a signature.' },
  DROVER_ERR_PLAN_SIGNATURE: {
    status: 400,
    description: 'A plan signature does not verify against the pinned coordinator key.',
  },
  DROVER_ERR_PLAN_CHECKSUM: {
    status: 400,
    description: 'A plan checksum does not match its canonical content.',
  },
  DROVER_ERR_TASK_UNSIGNED: {
    status: 400,
    description:
      'A task arrived without a signature (or as a bare, unsigned Task from an older coordinator); it was not run.',
  },
  DROVER_ERR_TASK_SIGNATURE: {
    status: 400,
    description: 'A task signature does not verify against the pinned coordinator key; it was not run.',
  },
  DROVER_ERR_JOIN_SIGNATURE: {
    status: 400,
    description:
      'A join reply is not signed by the pinned coordinator key, or answers another join; the agent keeps no credentials from it.',
  },
} as const satisfies Record<string, ErrorSpec>;

export type ProtocolErrorCode = keyof typeof PROTOCOL_ERRORS;

/** The only error decoding ever throws. `field` is a JSON pointer such as `/instances/0/health/port`. */
export class DecodeError extends TerminalError {
  readonly field: string;
  constructor(
    code: 'DROVER_ERR_DECODE' | 'DROVER_ERR_BAD_JSON' | 'DROVER_ERR_PROTOCOL_VERSION',
    field: string,
    message: string,
    cause?: unknown,
  ) {
    super(code, field ? `${field}: ${message}` : message, {
      status: PROTOCOL_ERRORS[code].status,
      details: { field },
      cause,
    });
    this.name = 'DecodeError';
    this.field = field;
  }
}

export class SignatureError extends TerminalError {
  constructor(
    code:
      | 'DROVER_ERR_PLAN_UNSIGNED'
      | 'DROVER_ERR_PLAN_SIGNATURE'
      | 'DROVER_ERR_PLAN_CHECKSUM'
      | 'DROVER_ERR_TASK_UNSIGNED'
      | 'DROVER_ERR_TASK_SIGNATURE'
      | 'DROVER_ERR_JOIN_SIGNATURE',
    message: string,
  ) {
    super(code, message, { status: PROTOCOL_ERRORS[code].status });
    this.name = 'SignatureError';
  }
}
