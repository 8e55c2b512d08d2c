import { CliError, EXIT, exitForStatus } from './errors.js';
import { describeTimeout, type Settings } from './settings.js';

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  /** raw text body with its content type (topologies as YAML) */
  text?: { body: string; contentType: string };
  signal?: AbortSignal;
}

/** The reason a request's own timer aborts it with (a user's Ctrl-C aborts with an AbortError). */
class RequestTimedOut extends Error {
  override name = 'RequestTimedOut';
}

interface ErrorBody {
  code?: string;
  message?: string;
  details?: Record<string, unknown>;
}

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
    case 'DROVER_ERR_NOT_READY':
      return 'the coordinator is starting or lost NATS; retry in a few seconds (`curl SERVER/readyz`)';
    case 'DROVER_ERR_NOT_IMPLEMENTED':
      return 'upgrade the coordinator, or use the alternative the message names';
    default:
      return undefined;
  }
}

/** A small client for the coordinator's REST API. Errors become CliErrors with stable exit codes. */
export class ApiClient {
  constructor(readonly settings: Settings) {}

  /**
   * A client whose request timeout covers a request the server holds for up to `ms` (a
   * `task --wait`): the larger of that plus 10 s and the configured one (0, no limit, stays).
   */
  forLongRequest(ms: number): ApiClient {
    const t = this.settings.requestTimeoutMs;
    if (t === 0 || t >= ms + 10_000) return this;
    return new ApiClient({ ...this.settings, requestTimeoutMs: ms + 10_000 });
  }

  url(path: string, query?: RequestOptions['query']): string {
    const u = new URL(this.settings.server + path);
    for (const [k, v] of Object.entries(query ?? {}))
      if (v !== undefined && v !== '') u.searchParams.set(k, String(v));
    return u.toString();
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    const h: Record<string, string> = { accept: 'application/json', ...extra };
    if (this.settings.token) h.authorization = `Bearer ${this.settings.token}`;
    return h;
  }

  /**
   * Runs `fn` with a signal that aborts on the caller's signal or after the request timeout
   * (`--request-timeout`, default 30 s). A timeout becomes a CliError naming the server (exit 5).
   */
  private async timed<T>(
    method: string,
    path: string,
    outer: AbortSignal | undefined,
    fn: (signal: AbortSignal) => Promise<T>,
    /** a stream's body is read after this returns: Ctrl-C must still reach it */
    keepLinked = false,
  ): Promise<T> {
    const ms = this.settings.requestTimeoutMs;
    const controller = new AbortController();
    const onAbort = () => controller.abort(outer?.reason);
    if (outer?.aborted) onAbort();
    else outer?.addEventListener('abort', onAbort, { once: true });
    const timer =
      ms > 0 ? setTimeout(() => controller.abort(new RequestTimedOut(`after ${ms} ms`)), ms) : undefined;
    try {
      return await fn(controller.signal);
    } catch (err) {
      if (controller.signal.reason instanceof RequestTimedOut && !outer?.aborted)
        throw new CliError(
          `${this.settings.server} did not answer ${method} ${path} within ${describeTimeout(ms)} (request timeout)`,
          EXIT.TIMEOUT,
          `is the coordinator overloaded or stopped? Raise the limit with --request-timeout (from ${this.settings.source.requestTimeout}), DROVER_REQUEST_TIMEOUT or requestTimeout in the CLI config`,
        );
      throw err;
    } finally {
      clearTimeout(timer);
      if (!keepLinked) outer?.removeEventListener('abort', onAbort);
    }
  }

  /** The response once its headers arrived (the request timeout covers only that far). */
  async fetch(method: string, path: string, opts: RequestOptions = {}, accept?: string): Promise<Response> {
    return this.timed(
      method,
      path,
      opts.signal,
      (signal) => this.send(method, path, opts, signal, accept),
      true,
    );
  }

  private async send(
    method: string,
    path: string,
    opts: RequestOptions,
    signal: AbortSignal,
    accept?: string,
  ): Promise<Response> {
    let body: string | undefined;
    const extra: Record<string, string> = {};
    if (opts.text) {
      body = opts.text.body;
      extra['content-type'] = opts.text.contentType;
    } else if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      extra['content-type'] = 'application/json';
    }
    if (accept) extra.accept = accept;
    try {
      return await fetch(this.url(path, opts.query), {
        method,
        headers: this.headers(extra),
        body,
        signal,
      });
    } catch (err) {
      if ((err as Error).name === 'AbortError' || signal.aborted) throw err;
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|TLS|SSL/i.test(cause?.code ?? ''))
        throw new CliError(
          `the TLS certificate of ${this.settings.server} is not trusted (${cause?.code})`,
          EXIT.FAILED,
          'point NODE_EXTRA_CA_CERTS at the CA (or certificate) that signed the coordinator API certificate',
        );
      throw new CliError(
        `cannot reach the coordinator at ${this.settings.server} (${cause?.code ?? cause?.message ?? (err as Error).message})`,
        EXIT.FAILED,
        `is drover-coordinator running? The server comes from ${this.settings.source.server}; set --server or DROVER_URL`,
      );
    }
  }

  /** One request and its whole body, within the request timeout. */
  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const { r, text } = await this.timed(method, path, opts.signal, async (signal) => {
      const r = await this.send(method, path, opts, signal);
      return { r, text: await r.text() };
    });
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!r.ok) throw this.errorFrom(r.status, parsed as ErrorBody | undefined, text);
    if (parsed === undefined && text) return text as T;
    return parsed as T;
  }

  errorFrom(status: number, b: ErrorBody | undefined, text = ''): CliError {
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

  get<T>(path: string, query?: RequestOptions['query']): Promise<T> {
    return this.request<T>('GET', path, { query });
  }

  post<T>(path: string, body?: unknown, query?: RequestOptions['query']): Promise<T> {
    return this.request<T>('POST', path, { body, query });
  }

  /** Server-Sent Events from `path`: yields each `data:` payload parsed as JSON. */
  async *stream<T>(path: string, query: RequestOptions['query'], signal?: AbortSignal): AsyncGenerator<T> {
    const r = await this.fetch('GET', path, { query, signal }, 'text/event-stream');
    if (!r.ok) {
      const text = await r.text();
      let b: ErrorBody | undefined;
      try {
        b = JSON.parse(text) as ErrorBody;
      } catch {}
      throw this.errorFrom(r.status, b, text);
    }
    if (!r.body) throw new CliError('the server sent an empty event stream', EXIT.FAILED);
    const decoder = new TextDecoder();
    let buf = '';
    for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const data = block
          .split('\n')
          .filter((l) => l.startsWith('data:'))
          .map((l) => l.slice(5).replace(/^ /, ''))
          .join('\n');
        if (data) yield JSON.parse(data) as T;
      }
    }
  }
}
