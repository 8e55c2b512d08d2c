import { type ErrorSpec, TerminalError } from '../../protocol/index.js';

export const VC_ERRORS = {
  DROVER_ERR_VC_QUANTITY: {
    status: 400,
    description:
      'A CPU or memory quantity cannot be parsed (Kubernetes forms: 100m, 1, 0.5, 100Mi, 1Gi, 500M).',
  },
  DROVER_ERR_VC_INPUT: {
    status: 400,
    description:
      'Slice-placement input is invalid (duplicate name, negative count, bad capacity); the message names it.',
  },
  DROVER_ERR_VC_TENANT_NOT_FOUND: {
    status: 404,
    description: 'No VirtualCluster tenant has this name (`drover tenants` lists them).',
  },
} as const satisfies Record<string, ErrorSpec>;

export type VcErrorCode = keyof typeof VC_ERRORS;

export function vcError(
  code: VcErrorCode,
  message: string,
  details?: Record<string, unknown>,
): TerminalError {
  return new TerminalError(code, message, { status: VC_ERRORS[code].status, details });
}
