import { request } from 'node:https';

/**
 * A background client of the Kubernetes API endpoint, as kubectl would be: every `intervalMs` it
 * opens a new TCP+TLS connection through the load balancer and sends `GET /version` (or
 * `options.path`; new connections, so haproxy's round robin spreads them over every backend).
 * With `options.tls` it authenticates as kubectl does, with a client certificate, and checks the
 * server's certificate against the cluster CA. Each request is recorded; a failure is an error, a
 * timeout or a non-200 answer.
 */
export interface ProbeSample {
  at: number;
  ok: boolean;
  ms: number;
  error?: string;
  /** which API server answered (stand-ins name themselves by component; real ones do not) */
  server?: string;
}

/** What kubectl presents: the cluster CA and a client certificate (PEM), e.g. the admin kubeconfig's. */
export interface LbClientTls {
  ca: string;
  cert: string;
  key: string;
}

export interface LbClientOptions {
  /** the request path; default `/version` */
  path?: string;
  /** absent: no client certificate, the server's certificate is not checked */
  tls?: LbClientTls;
}

export interface ProbeWindow {
  from: number;
  to: number;
  failures: number;
}

export class LbClient {
  readonly samples: ProbeSample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private inflight = new Set<Promise<void>>();

  constructor(
    readonly host: string,
    readonly port: number,
    readonly intervalMs = 100,
    readonly timeoutMs = 1000,
    readonly options: LbClientOptions = {},
  ) {}

  start(): this {
    this.timer = setInterval(() => {
      const p = this.once().finally(() => this.inflight.delete(p));
      this.inflight.add(p);
    }, this.intervalMs);
    return this;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await Promise.all([...this.inflight]);
  }

  private once(): Promise<void> {
    const at = Date.now();
    const tls = this.options.tls;
    return new Promise<void>((resolve) => {
      let done = false;
      const finish = (s: Omit<ProbeSample, 'at' | 'ms'>) => {
        if (done) return;
        done = true;
        this.samples.push({ at, ms: Date.now() - at, ...s });
        resolve();
      };
      const req = request(
        {
          host: this.host,
          port: this.port,
          path: this.options.path ?? '/version',
          method: 'GET',
          ...(tls
            ? { ca: tls.ca, cert: tls.cert, key: tls.key, rejectUnauthorized: true }
            : { rejectUnauthorized: false }),
          agent: false,
          timeout: this.timeoutMs,
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            body += c;
          });
          res.on('end', () => {
            if (res.statusCode === 200) finish({ ok: true, server: body.slice(0, 200) });
            else finish({ ok: false, error: `HTTP ${res.statusCode}` });
          });
          res.on('error', (err) => finish({ ok: false, error: err.message }));
        },
      );
      req.on('timeout', () => {
        req.destroy(new Error(`timeout after ${this.timeoutMs}ms`));
      });
      req.on('error', (err) => finish({ ok: false, error: err.message }));
      req.end();
    });
  }

  /** Samples whose request started in [from, to). */
  between(from: number, to = Number.POSITIVE_INFINITY): ProbeSample[] {
    return this.samples.filter((s) => s.at >= from && s.at < to);
  }

  failures(from = 0, to = Number.POSITIVE_INFINITY): ProbeSample[] {
    return this.between(from, to).filter((s) => !s.ok);
  }

  /** The failure budget in time: failed requests × the request interval. */
  failedMs(from = 0, to = Number.POSITIVE_INFINITY): number {
    return this.failures(from, to).length * this.intervalMs;
  }

  /** Runs of consecutive failed requests (by start time), for the report. */
  windows(from = 0, to = Number.POSITIVE_INFINITY): ProbeWindow[] {
    const out: ProbeWindow[] = [];
    let cur: ProbeWindow | undefined;
    for (const s of [...this.between(from, to)].sort((a, b) => a.at - b.at)) {
      if (!s.ok) {
        if (!cur) cur = { from: s.at, to: s.at, failures: 0 };
        cur.to = s.at;
        cur.failures++;
      } else if (cur) {
        out.push(cur);
        cur = undefined;
      }
    }
    if (cur) out.push(cur);
    return out;
  }

  /** The longest run of consecutive failed requests, in time (0: none failed). */
  longestGapMs(from = 0, to = Number.POSITIVE_INFINITY): number {
    return Math.max(0, ...this.windows(from, to).map((w) => w.to - w.from + this.intervalMs));
  }

  summary(from = 0, to = Number.POSITIVE_INFINITY): string {
    const all = this.between(from, to);
    const f = all.filter((s) => !s.ok);
    const errors = [...new Set(f.map((s) => s.error))].slice(0, 4).join('; ');
    const w = this.windows(from, to)
      .map((x) => `${x.failures} failed over ${x.to - x.from + this.intervalMs}ms`)
      .join(', ');
    return `${all.length} requests, ${f.length} failed (${f.length * this.intervalMs}ms worth)${w ? `: ${w}` : ''}${errors ? ` [${errors}]` : ''}`;
  }
}
