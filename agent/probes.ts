import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { execa } from 'execa';
import type { Logger } from 'pino';
import { type Clock, systemClock } from '../lib/clock.js';
import { silentLogger } from '../lib/logger.js';
import type { HealthProbe } from '../protocol/index.js';

export type Health = 'unknown' | 'healthy' | 'unhealthy';

export interface ProbeResult {
  ok: boolean;
  error?: string;
}

/**
 * The probe with `${DROVER_ROOT}` expanded in every path it names: an exec probe's command and
 * args, an https probe's `caFile` (a CA the plan wrote under the role's root).
 */
export function probeUnderRoot(p: HealthProbe, expand: (s: string) => string): HealthProbe {
  return {
    ...p,
    ...(p.command ? { command: expand(p.command) } : {}),
    ...(p.args ? { args: p.args.map(expand) } : {}),
    ...(p.caFile ? { caFile: expand(p.caFile) } : {}),
  };
}

/** `${DROVER_ROOT}` in the probe is expanded before it gets here (`probeUnderRoot`). */
export async function runProbe(p: HealthProbe): Promise<ProbeResult> {
  try {
    switch (p.kind) {
      case 'http':
      case 'https':
        return await httpProbe(p);
      case 'tcp':
        return await tcpProbe(p);
      case 'exec':
        return await execProbe(p);
    }
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

function httpProbe(p: HealthProbe): Promise<ProbeResult> {
  if (!p.port) return Promise.resolve({ ok: false, error: `${p.kind} probe has no port` });
  const host = p.host ?? '127.0.0.1';
  const url = `${p.kind}://${host}:${p.port}${p.path ?? '/'}`;
  return new Promise((resolve) => {
    let settled = false;
    const done = (r: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
    };
    const opts = {
      host,
      port: p.port,
      path: p.path ?? '/',
      method: 'GET',
      // No keep-alive pool: each probe is a fresh connection, as a client coming back would make.
      agent: false,
      headers: { 'user-agent': 'drover-agent-probe' },
      ...(p.kind === 'https'
        ? { rejectUnauthorized: !p.insecure, ...(p.caFile ? { ca: readFileSync(p.caFile) } : {}) }
        : {}),
    };
    const req = (p.kind === 'https' ? httpsRequest : httpRequest)(opts, (res) => {
      res.resume();
      const code = res.statusCode ?? 0;
      done(code >= 200 && code < 400 ? { ok: true } : { ok: false, error: `GET ${url}: HTTP ${code}` });
    });
    const timer = setTimeout(() => {
      req.destroy();
      done({ ok: false, error: `GET ${url}: timed out after ${p.timeoutMs} ms` });
    }, p.timeoutMs);
    req.on('error', (err) => done({ ok: false, error: `GET ${url}: ${err.message}` }));
    req.end();
  });
}

function tcpProbe(p: HealthProbe): Promise<ProbeResult> {
  if (!p.port) return Promise.resolve({ ok: false, error: 'tcp probe has no port' });
  const host = p.host ?? '127.0.0.1';
  return new Promise((resolve) => {
    const s = connect({ host, port: p.port! });
    const done = (r: ProbeResult) => {
      s.destroy();
      resolve(r);
    };
    s.setTimeout(p.timeoutMs, () => done({ ok: false, error: `tcp ${host}:${p.port}: timed out` }));
    s.once('connect', () => done({ ok: true }));
    s.once('error', (err) => done({ ok: false, error: `tcp ${host}:${p.port}: ${err.message}` }));
  });
}

async function execProbe(p: HealthProbe): Promise<ProbeResult> {
  if (!p.command) return { ok: false, error: 'exec probe has no command' };
  const r = await execa(p.command, p.args ?? [], {
    timeout: p.timeoutMs,
    reject: false,
    all: true,
    stdin: 'ignore',
  });
  if (r.exitCode === 0) return { ok: true };
  const out = (r.all ?? '').trim().slice(-300);
  return {
    ok: false,
    error: `${p.command}: ${r.timedOut ? `timed out after ${p.timeoutMs} ms` : `exit ${r.exitCode ?? r.signal}`}${out ? `: ${out}` : ''}`,
  };
}

export interface ProberOptions {
  clock?: Clock;
  logger?: Logger;
  /** called when the verdict changes (and when the last error changes while unhealthy) */
  onChange: (health: Health, lastError: string | undefined) => void;
  run?: (p: HealthProbe) => Promise<ProbeResult>;
}

/** How often a starting instance is probed until its first pass (or the start-up grace ends). */
export const STARTUP_PROBE_PACE_MS = 500;

/**
 * Probes one instance every `periodMs` (never overlapping), turning healthy after
 * `successThreshold` passes in a row and unhealthy after `failureThreshold` failures in a row.
 *
 * `initialDelayMs` is a start-up grace, like a Kubernetes startup probe rather than a blind delay:
 * probing begins at once, at a faster pace (`STARTUP_PROBE_PACE_MS`) until the first pass, and
 * failures inside the grace do not count toward `failureThreshold`, so a slow starter is not
 * restarted while it starts, yet a fast one is reported healthy as soon as it is (which is what a
 * moved instance's restore time is measured to).
 */
export class Prober {
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly run: (p: HealthProbe) => Promise<ProbeResult>;
  private timer: unknown;
  private running = false;
  private stopped = true;
  private epoch = 0;
  private successes = 0;
  private failures = 0;
  private startedAt = 0;
  private passedOnce = false;
  health: Health = 'unknown';
  lastError: string | undefined;
  checks = 0;

  constructor(
    readonly probe: HealthProbe,
    private readonly opts: ProberOptions,
  ) {
    this.clock = opts.clock ?? systemClock;
    this.log = opts.logger ?? silentLogger;
    this.run = opts.run ?? runProbe;
  }

  /** (Re)starts probing from scratch: verdict unknown, initial delay again. Used when the process restarts. */
  start(): void {
    this.stop();
    this.stopped = false;
    const epoch = ++this.epoch;
    this.successes = 0;
    this.failures = 0;
    this.passedOnce = false;
    this.startedAt = this.clock.now();
    this.set('unknown', undefined);
    this.schedule(epoch, this.starting() ? Math.min(STARTUP_PROBE_PACE_MS, this.probe.periodMs) : 0);
  }

  /** inside the start-up grace and not yet passed once */
  private starting(): boolean {
    return !this.passedOnce && this.clock.now() - this.startedAt < this.probe.initialDelayMs;
  }

  stop(): void {
    this.stopped = true;
    this.epoch++;
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(epoch: number, ms: number): void {
    if (this.stopped || epoch !== this.epoch) return;
    this.timer = this.clock.setTimeout(() => void this.tick(epoch), ms);
  }

  private async tick(epoch: number): Promise<void> {
    if (this.running || epoch !== this.epoch) return;
    this.running = true;
    let r: ProbeResult;
    try {
      r = await this.run(this.probe);
    } catch (err) {
      r = { ok: false, error: (err as Error).message };
    } finally {
      this.running = false;
    }
    if (epoch !== this.epoch) return;
    this.checks++;
    if (r.ok) {
      this.passedOnce = true;
      this.failures = 0;
      this.successes++;
      if (this.successes >= this.probe.successThreshold) this.set('healthy', undefined);
    } else if (this.starting()) {
      // start-up grace: remembered for status, not counted toward failureThreshold
      this.successes = 0;
      this.lastError = r.error;
    } else {
      this.successes = 0;
      this.failures++;
      this.log.debug({ error: r.error, failures: this.failures }, 'probe failed');
      if (this.failures >= this.probe.failureThreshold) this.set('unhealthy', r.error);
      else if (this.health !== 'healthy') this.lastError = r.error;
    }
    const pace =
      this.starting() && this.successes < this.probe.successThreshold
        ? Math.min(STARTUP_PROBE_PACE_MS, this.probe.periodMs)
        : this.probe.periodMs;
    this.schedule(epoch, pace);
  }

  private set(h: Health, err: string | undefined): void {
    if (h === this.health && err === this.lastError) return;
    this.health = h;
    this.lastError = err;
    this.opts.onChange(h, err);
  }
}
