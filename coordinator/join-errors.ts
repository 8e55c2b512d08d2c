import type { ErrorSpec } from '../protocol/index.js';

/**
 * The join flow's error codes (coordinator/join-tokens.ts, coordinator/engine/join.ts): a join
 * refused on the bus carries one of them in its signed JoinReply; the API answers with them too.
 */
export const JOIN_ERRORS = {
  DROVER_ERR_JOIN_TOKEN_UNKNOWN: { status: 404, description: 'No join token has this id.' },
  DROVER_ERR_JOIN_TOKEN_EXPIRED: {
    status: 410,
    description: 'The join token expired; create a new one with `drover token create --join`.',
  },
  DROVER_ERR_JOIN_TOKEN_USED: {
    status: 410,
    description: 'The join token is used up; create a new one with `drover token create --join`.',
  },
  DROVER_ERR_JOIN_TOKEN_REVOKED: {
    status: 410,
    description: 'The join token was revoked; create a new one with `drover token create --join`.',
  },
  DROVER_ERR_JOIN_REFUSED: {
    status: 409,
    description:
      'A join was refused: the body does not match its subject, or the node id belongs to another machine; nothing changed.',
  },
  DROVER_ERR_PENDING_CAP: {
    status: 429,
    description:
      'Refused: as many nodes as `maxPendingNodes` wait for approval; approve or remove some first.',
  },
  DROVER_ERR_JOIN_RATE_LIMITED: {
    status: 429,
    description:
      'Too many joins or registrations per second (`registrationRate`, `registrationBurst`); retry later.',
  },
  DROVER_ERR_BUS_UNAVAILABLE: {
    status: 503,
    description:
      'The coordinator runs without bus authorisation (or could not push the account to nats-server); join tokens need it.',
  },
} as const satisfies Record<string, ErrorSpec>;
