import { RestClient, type RestError, type RestErrorBody, type RestRequest } from '../protocol/rest/client.js';
import { CliError, EXIT, exitForStatus } from './errors.js';
import { describeTimeout, type Settings } from './settings.js';

export type RequestOptions = RestRequest;

/** What to do next, by error code; the server's message says what went wrong. */
function hintFor(code: string | undefined, s: Settings): string | undefined {
  switch (code) {
    case 'DROVER_ERR_UNAUTHORIZED':
      return s.token
        ? `the token from ${s.source.token} was refused; check it or ask an admin for a new one (\`drover token create NAME --role viewer\`)`
        : 'pass --token, set DROVER_TOKEN, or put token/tokenFile in ~/.config/drover/config.yaml; the first admin token is in <dataDir>/admin-token on the coordinator host';
    case 'DROVER_ERR_FORBIDDEN':
      return 'use a token with a higher role (viewer < operator < admin)';
    case 'DROVER_ERR_RATE_LIMITED':
      return 'too many wrong tokens from this address; wait a minute and check your token';
    case 'DROVER_ERR_NODE_NOT_FOUND':
      return 'list nodes with `drover get nodes`';
    case 'DROVER_ERR_INSTANCE_NOT_FOUND':
      return 'list instances with `drover get assignments`';
    case 'DROVER_ERR_TOKEN_NOT_FOUND':
      return 'list tokens with `drover get tokens`';
    case 'DROVER_ERR_TOPOLOGY_NOT_FOUND':
      return 'list topologies with `drover get topology`';
    case 'DROVER_ERR_ROLE_NOT_FOUND':
      return 'list roles with `drover get roles`';
    case 'DROVER_ERR_NOT_LEADER':
      return `this coordinator is a follower: add the leader's API URL (in the message) to --server, comma-separated with the others (from ${s.source.server}); \`drover get coordinators\` lists them`;
    case 'DROVER_ERR_NOT_READY':
      return 'the coordinator is starting or lost NATS; retry in a few seconds (`curl SERVER/readyz`)';
    case 'DROVER_ERR_NOT_IMPLEMENTED':
      return 'upgrade the coordinator, or use the alternative the message names';
    default:
      return undefined;
  }
}

/**
 * The coordinator's REST client (protocol/rest/client.ts) for the CLI: its failures become
 * CliErrors with stable exit codes and a hint at what to do next.
 */
export class ApiClient extends RestClient {
  constructor(readonly settings: Settings) {
    super({ server: settings.server, token: settings.token, requestTimeoutMs: settings.requestTimeoutMs });
  }

  /**
   * A client whose request timeout covers a request the server holds for up to `ms` (a
   * `task --wait`): the larger of that plus 10 s and the configured one (0, no limit, stays).
   */
  forLongRequest(ms: number): ApiClient {
    const t = this.settings.requestTimeoutMs;
    if (t === 0 || t >= ms + 10_000) return this;
    return new ApiClient({ ...this.settings, requestTimeoutMs: ms + 10_000 });
  }

  protected override failed(err: RestError): Error {
    const f = err.failure;
    const s = this.settings;
    switch (f.kind) {
      case 'timeout':
        return new CliError(
          `${s.server} did not answer ${err.method} ${err.path} within ${describeTimeout(f.ms)} (request timeout)`,
          EXIT.TIMEOUT,
          `is the coordinator overloaded or stopped? Raise the limit with --request-timeout (from ${s.source.requestTimeout}), DROVER_REQUEST_TIMEOUT or requestTimeout in the CLI config`,
        );
      case 'unreachable':
        if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|TLS|SSL/i.test(f.code ?? ''))
          return new CliError(
            `the TLS certificate of ${s.server} is not trusted (${f.code})`,
            EXIT.FAILED,
            'point NODE_EXTRA_CA_CERTS at the CA (or certificate) that signed the coordinator API certificate',
          );
        return new CliError(
          `cannot reach the coordinator at ${s.server} (${f.code ?? f.message})`,
          EXIT.FAILED,
          `is drover-coordinator running? The server comes from ${s.source.server}; set --server or DROVER_URL`,
        );
      case 'status':
        return this.errorFrom(f.status, f.body, f.text);
      case 'bad-response':
        return new CliError(f.message, EXIT.FAILED);
    }
  }

  errorFrom(status: number, b: RestErrorBody | undefined, text = ''): CliError {
    const code = b?.code;
    const field = b?.details?.field;
    const msg = b?.message ?? (text.trim() || `HTTP ${status}`);
    return new CliError(
      typeof field === 'string' && field && !msg.includes(field) ? `${msg} (field ${field})` : msg,
      exitForStatus(status),
      hintFor(code, this.settings),
      code,
    );
  }
}
