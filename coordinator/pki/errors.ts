import { type ErrorSpec, TerminalError } from '../../protocol/index.js';

/**
 * Error codes of the cluster PKI. CSR refusals are terminal: asking again with the same CSR can
 * never succeed, so the agent must not retry them with backoff.
 */
export const PKI_ERRORS = {
  DROVER_ERR_CSR_PARSE: { status: 400, description: 'The CSR is not a PEM-encoded PKCS#10 request.' },
  DROVER_ERR_CSR_SIGNATURE: {
    status: 400,
    description: 'The CSR self-signature does not verify: it was altered or not signed by its key.',
  },
  DROVER_ERR_CSR_KEY: {
    status: 400,
    description: 'The CSR public key is not accepted (ECDSA P-256/P-384 or RSA >= 2048 bits only).',
  },
  DROVER_ERR_CSR_PROFILE_UNKNOWN: { status: 400, description: 'No certificate profile has this name.' },
  DROVER_ERR_CSR_PROFILE_NOT_ALLOWED: {
    status: 403,
    description: 'The certificate profile may not be issued to an instance of this role.',
  },
  DROVER_ERR_CSR_ROLE_NOT_ASSIGNED: {
    status: 403,
    description: 'The requesting instance role is not assigned to this node.',
  },
  DROVER_ERR_CSR_SUBJECT: {
    status: 400,
    description:
      'The CSR subject (CN/O) differs from what the profile issues for this node; details name both.',
  },
  DROVER_ERR_CSR_SAN: {
    status: 400,
    description:
      'The CSR subjectAltNames differ from what the profile issues for this node; details list missing and extra names.',
  },
  DROVER_ERR_CSR_CONTEXT: {
    status: 400,
    description: 'The cluster context given to the signer is invalid (e.g. a malformed service CIDR).',
  },
  DROVER_ERR_PKI_KUBECONFIG: {
    status: 400,
    description: 'A kubeconfig cannot be rendered from the given fields; `details.field` names the field.',
  },
  DROVER_ERR_PKI_OPTIONS: {
    status: 400,
    description: 'The PKI options are invalid; the message names the option.',
  },
  DROVER_ERR_PKI_STORE: {
    status: 500,
    description:
      'The PKI directory is incomplete or inconsistent (a key without its cert, a key that does not match).',
  },
} as const satisfies Record<string, ErrorSpec>;

export type PkiErrorCode = keyof typeof PKI_ERRORS;

export function pkiError(
  code: PkiErrorCode,
  message: string,
  details?: Record<string, unknown>,
  cause?: unknown,
) {
  return new TerminalError(code, message, { status: PKI_ERRORS[code].status, details, cause });
}
