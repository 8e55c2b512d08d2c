import type { Event } from '../schemas/messages.js';
import type { Assignment, InstanceView, NodeView, RoleView, StatusView } from './schemas.js';

/**
 * The one client of the coordinator's REST API, shared by the `drover` CLI (cli/client.ts) and the
 * lab (lab/api.ts). It speaks HTTP and the contract in ./schemas.ts; what a failure means to a
 * user (exit codes, hints, the lab's error code) is the caller's: `failed()` turns each RestError
 * into the caller's own error.
 */

export type RestQuery = Record<string, string | number | boolean | undefined>;

export interface RestRequest {
  query?: RestQuery;
  body?: unknown;
  /** raw text body with its content type (topologies as YAML) */
  text?: { body: string; contentType: string };
  signal?: AbortSignal;
}

/** The error body the coordinator answers with (protocol ErrorBody, every field optional here). */
export interface RestErrorBody {
  code?: string;
  message?: string;
  details?: Record<string, unknown>;
}

/** Why a request failed, before anyone words it. */
export type RestFailure =
  /** no answer within the request timeout */
  | { kind: 'timeout'; ms: number }
  /** the request never got an answer: refused, reset, DNS, TLS (`code` is the cause's, e.g. ECONNREFUSED) */
  | { kind: 'unreachable'; code?: string; message: string }
  /** the server answered with an error status */
  | { kind: 'status'; status: number; body?: RestErrorBody; text: string }
  /** the server answered something this client cannot read */
  | { kind: 'bad-response'; message: string };

export class RestError extends Error {
  override name = 'RestError';
  constructor(
    readonly method: string,
    readonly path: string,
    readonly failure: RestFailure,
    options?: { cause?: unknown },
  ) {
    super(`${method} ${path}: ${describeFailure(failure)}`, options);
  }
}

/** A failure in words, without the request: `answered 404: …`, `no answer within 5000 ms`. */
export function describeFailure(f: RestFailure): string {
  switch (f.kind) {
    case 'timeout':
      return `no answer within ${f.ms} ms`;
    case 'unreachable':
      return f.code ? `${f.message} (${f.code})` : f.message;
    case 'status':
      return `answered ${f.status}: ${f.body ? `${f.body.code ?? f.status}: ${f.body.message ?? f.text}` : f.text}`;
    case 'bad-response':
      return f.message;
  }
}

export interface RestClientOptions {
  /**
   * the coordinator's base URL, e.g. http://127.0.0.1:8080; with coordinator HA, every
   * coordinator's, comma-separated: the client asks for the leader and sends everything there,
   * moves on when one is unreachable, and follows 421 NOT_LEADER to a leader in this list only
   */
  server: string;
  /** the bearer token; a function is asked on every request (a token file written later) */
  token?: string | (() => string | undefined);
  /** per request, up to the response headers (and the whole body for `request`); 0: no limit */
  requestTimeoutMs: number;
}

/** The reason a request's own timer aborts it with (a user's Ctrl-C aborts with an AbortError). */
class RequestTimedOut extends Error {
  override name = 'RequestTimedOut';
}

const sleepFor = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });

export class RestClient {
  /** the coordinators' API URLs (one, unless HA) */
  readonly servers: string[];
  private active = 0;
  private leaderAsked?: Promise<void>;

  constructor(readonly options: RestClientOptions) {
    this.servers = options.server
      .split(',')
      .map((s) => s.trim().replace(/\/+$/, ''))
      .filter(Boolean);
    if (this.servers.length === 0) this.servers = [options.server];
  }

  /** the server requests go to now (the leader, once found) */
  get server(): string {
    return this.servers[this.active]!;
  }

  /**
   * With several servers: asks them in turn who leads (GET /v1/coordinators) and makes the leader
   * the active one, when it is in the list. Once per client; failures leave the first server.
   */
  private findLeader(signal: AbortSignal): Promise<void> {
    if (this.servers.length < 2) return Promise.resolve();
    // requests made at once all wait for the one question
    this.leaderAsked ??= this.askLeader(signal);
    return this.leaderAsked;
  }

  private async askLeader(signal: AbortSignal): Promise<void> {
    for (const base of this.servers) {
      try {
        const r = await fetch(`${base}/v1/coordinators`, {
          headers: this.headers(),
          signal: AbortSignal.any([signal, AbortSignal.timeout(2000)]),
        });
        if (!r.ok) continue;
        const body = (await r.json()) as { items?: Array<{ role?: string; api?: string }> };
        const api = body.items?.find((i) => i.role === 'leader')?.api?.replace(/\/+$/, '');
        const idx = api ? this.servers.indexOf(api) : -1;
        this.active = idx >= 0 ? idx : this.servers.indexOf(base);
        return;
      } catch {
        if (signal.aborted) return;
      }
    }
  }

  /** The caller's error for a failure; by default the RestError itself. */
  protected failed(err: RestError): Error {
    return err;
  }

  url(path: string, query?: RestQuery): string {
    const u = new URL(this.server + path);
    for (const [k, v] of Object.entries(query ?? {}))
      if (v !== undefined && v !== '') u.searchParams.set(k, String(v));
    return u.toString();
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    const h: Record<string, string> = { accept: 'application/json', ...extra };
    const t = this.options.token;
    const token = typeof t === 'function' ? t() : t;
    if (token) h.authorization = `Bearer ${token}`;
    return h;
  }

  /**
   * Runs `fn` with a signal that aborts on the caller's signal or after the request timeout. A
   * timeout becomes a `timeout` failure; the caller's own abort stays what it was.
   */
  private async timed<T>(
    method: string,
    path: string,
    outer: AbortSignal | undefined,
    fn: (signal: AbortSignal) => Promise<T>,
    /** a stream's body is read after this returns: Ctrl-C must still reach it */
    keepLinked = false,
  ): Promise<T> {
    const ms = this.options.requestTimeoutMs;
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
        throw this.failed(new RestError(method, path, { kind: 'timeout', ms }, { cause: err }));
      throw err;
    } finally {
      clearTimeout(timer);
      if (!keepLinked) outer?.removeEventListener('abort', onAbort);
    }
  }

  /** The response once its headers arrived (the request timeout covers only that far). */
  async fetch(method: string, path: string, opts: RestRequest = {}, accept?: string): Promise<Response> {
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
    opts: RestRequest,
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
    const headers = this.headers(extra);
    await this.findLeader(signal);
    const unreachable: string[] = [];
    let lastCause: { code?: string; message?: string; err?: unknown } = {};
    // an election under way (a 421 naming no leader): asked again while the request timeout
    // allows (25 s without one): a leader change after a NATS server died can take that long
    const wait = this.options.requestTimeoutMs > 0 ? this.options.requestTimeoutMs - 1000 : 25_000;
    const electionDeadline = Date.now() + Math.min(25_000, Math.max(1000, wait));
    for (let redirects = 0; ; ) {
      let r: Response;
      // the server this attempt goes to (another request may move `active` meanwhile)
      const at = this.active;
      try {
        r = await fetch(this.url(path, opts.query), { method, headers, body, signal });
      } catch (err) {
        if ((err as Error).name === 'AbortError' || signal.aborted) throw err;
        const cause = (err as { cause?: { code?: string; message?: string } }).cause;
        lastCause = { code: cause?.code, message: cause?.message ?? (err as Error).message, err };
        unreachable.push(`${this.server} (${cause?.code ?? lastCause.message})`);
        // HA: the next coordinator in the list (a follower redirects a write to the leader)
        if (unreachable.length < this.servers.length) {
          if (this.active === at) this.active = (at + 1) % this.servers.length;
          continue;
        }
        throw this.failed(
          new RestError(
            method,
            path,
            {
              kind: 'unreachable',
              code: lastCause.code,
              message:
                this.servers.length > 1
                  ? `no coordinator answered: ${unreachable.join(', ')}`
                  : (lastCause.message ?? 'unreachable'),
            },
            { cause: lastCause.err },
          ),
        );
      }
      if (r.status === 421 && redirects < 100) {
        // a follower: re-send to the leader it names, if that is one of ours; none named: an
        // election is under way, ask again in a moment
        const leader = r.headers.get('x-drover-leader')?.replace(/\/+$/, '');
        const idx = leader ? this.servers.indexOf(leader) : -1;
        if (idx >= 0 && idx !== at) {
          redirects++;
          this.active = idx;
          continue;
        }
        if (!leader && Date.now() < electionDeadline) {
          redirects++;
          await sleepFor(250, signal);
          continue;
        }
      }
      return r;
    }
  }

  private statusFailure(method: string, path: string, status: number, text: string): Error {
    let body: RestErrorBody | undefined;
    try {
      const parsed = text ? (JSON.parse(text) as unknown) : undefined;
      if (parsed && typeof parsed === 'object') body = parsed as RestErrorBody;
    } catch {
      // not JSON: the text is the message
    }
    return this.failed(new RestError(method, path, { kind: 'status', status, body, text }));
  }

  /** One request and its whole body, within the request timeout. A body that is not JSON comes back as text. */
  async request<T>(method: string, path: string, opts: RestRequest = {}): Promise<T> {
    const { r, text } = await this.timed(method, path, opts.signal, async (signal) => {
      const r = await this.send(method, path, opts, signal);
      return { r, text: await r.text() };
    });
    if (!r.ok) throw this.statusFailure(method, path, r.status, text);
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (parsed === undefined && text) return text as T;
    return parsed as T;
  }

  /** One request whose body is bytes (a file download), with its response headers. */
  async bytes(
    method: string,
    path: string,
    opts: RestRequest = {},
  ): Promise<{ bytes: Uint8Array; headers: Headers }> {
    const { r, body } = await this.timed(method, path, opts.signal, async (signal) => {
      const r = await this.send(method, path, opts, signal, 'application/octet-stream');
      return { r, body: new Uint8Array(await r.arrayBuffer()) };
    });
    if (!r.ok) throw this.statusFailure(method, path, r.status, new TextDecoder().decode(body));
    return { bytes: body, headers: r.headers };
  }

  get<T>(path: string, query?: RestQuery): Promise<T> {
    return this.request<T>('GET', path, { query });
  }

  post<T>(path: string, body?: unknown, query?: RestQuery): Promise<T> {
    return this.request<T>('POST', path, { body, query });
  }

  /** Server-Sent Events from `path`: yields each `data:` payload parsed as JSON. */
  async *stream<T>(path: string, query: RestQuery | undefined, signal?: AbortSignal): AsyncGenerator<T> {
    const r = await this.fetch('GET', path, { query, signal }, 'text/event-stream');
    if (!r.ok) throw this.statusFailure('GET', path, r.status, await r.text());
    if (!r.body)
      throw this.failed(
        new RestError('GET', path, {
          kind: 'bad-response',
          message: 'the server sent an empty event stream',
        }),
      );
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

  // The resources both callers read.

  /** true once /readyz answers 200 (engine started, NATS connected); no token needed */
  async ready(timeoutMs = 2000): Promise<boolean> {
    try {
      const r = await fetch(`${this.server}/readyz`, { signal: AbortSignal.timeout(timeoutMs) });
      return r.ok;
    } catch {
      return false;
    }
  }

  applyTopology(yamlText: string, query?: RestQuery): Promise<unknown> {
    return this.request('PUT', '/v1/topology', {
      text: { body: yamlText, contentType: 'application/yaml' },
      query,
    });
  }

  async nodes(): Promise<NodeView[]> {
    return (await this.get<{ items: NodeView[] }>('/v1/nodes')).items;
  }

  async roles(): Promise<RoleView[]> {
    return (await this.get<{ items: RoleView[] }>('/v1/roles')).items;
  }

  status(): Promise<StatusView> {
    return this.get('/v1/status');
  }

  async assignments(): Promise<AssignmentView[]> {
    return (await this.get<{ items: AssignmentView[] }>('/v1/assignments')).items;
  }

  async events(limit = 200): Promise<Event[]> {
    return (await this.get<{ items: Event[] }>('/v1/events', { limit })).items;
  }
}

/** One row of GET /v1/assignments: the assignment joined with its instance's view. */
export type AssignmentView = Assignment & InstanceView;
