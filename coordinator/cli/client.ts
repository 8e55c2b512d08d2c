import { CliError, EXIT, exitForStatus } from './errors.js';
import type { Settings } from './settings.js';

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  /** raw text body with its content type (topologies as YAML) */
  text?: { body: string; contentType: string };
  signal?: AbortSignal;
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

  async fetch(method: string, path: string, opts: RequestOptions = {}, accept?: string): Promise<Response> {
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
        signal: opts.signal,
      });
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw err;
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

  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const r = await this.fetch(method, path, opts);
    const text = await r.text();
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
