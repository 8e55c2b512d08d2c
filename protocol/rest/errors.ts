import type { ErrorSpec } from '../index.js';

/**
 * Codes only the REST API returns (routing, content negotiation, tokens, optional engine
 * features). `COORDINATOR_ERRORS` (coordinator/errors.ts) composes them; they are part of the REST contract into the one registry.
 */
export const API_ERRORS = {
  DROVER_ERR_NOT_FOUND: { status: 404, description: 'No such route; see /docs for the API.' },
  DROVER_ERR_TOKEN_NOT_FOUND: { status: 404, description: 'No API token has this id or name.' },
  DROVER_ERR_TOKEN_EXISTS: {
    status: 409,
    description: 'An API token with this name exists already; token names are unique.',
  },
  DROVER_ERR_STREAM_LIMIT: {
    status: 429,
    description:
      'This API token has `api.maxStreamsPerToken` event streams open already; close one or use another token.',
  },
  DROVER_ERR_TOPOLOGY_NOT_FOUND: {
    status: 404,
    description: 'No topology has been applied for this cluster yet.',
  },
  DROVER_ERR_ROLE_NOT_FOUND: { status: 404, description: 'No role of this name is in any topology.' },
  DROVER_ERR_UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    description: 'The body has a content type this route does not accept (JSON, or YAML for topologies).',
  },
  DROVER_ERR_PAYLOAD_TOO_LARGE: {
    status: 413,
    description: 'The request body is larger than the API accepts.',
  },
  DROVER_ERR_NOT_ACCEPTABLE: {
    status: 406,
    description: 'The route cannot answer in the media type the Accept header asks for.',
  },
  DROVER_ERR_NOT_IMPLEMENTED: {
    status: 501,
    description: 'This coordinator build does not support the operation yet (the engine lacks it).',
  },
} as const satisfies Record<string, ErrorSpec>;

export type ApiErrorCode = keyof typeof API_ERRORS;
