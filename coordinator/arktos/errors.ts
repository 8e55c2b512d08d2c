import { type ErrorSpec, TerminalError } from '../../protocol/index.js';

export const ARKTOS_ERRORS = {
  DROVER_ERR_ARKTOS_PARTITION: {
    status: 400,
    description:
      'A data partition is malformed (id, name, range bound or replicas); `details.field` names the field.',
  },
  DROVER_ERR_ARKTOS_OVERLAP: {
    status: 400,
    description: 'Two data partitions cover the same tenants; `details.partitions` names both.',
  },
  DROVER_ERR_ARKTOS_GAP: {
    status: 400,
    description:
      'Some tenants are covered by no data partition; `details` names the neighbours and the uncovered range.',
  },
  DROVER_ERR_ARKTOS_TENANT: { status: 400, description: 'A tenant name is empty or not a string.' },
  DROVER_ERR_ARKTOS_NOT_PARTITIONED: {
    status: 404,
    description:
      'The cluster has no data partitions (`cluster.partitions`), so no partition serves a tenant.',
  },
} as const satisfies Record<string, ErrorSpec>;

export type ArktosErrorCode = keyof typeof ARKTOS_ERRORS;

export function arktosError(
  code: ArktosErrorCode,
  message: string,
  details?: Record<string, unknown>,
): TerminalError {
  return new TerminalError(code, message, { status: ARKTOS_ERRORS[code].status, details });
}
