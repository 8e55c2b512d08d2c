import { type ConnectionOptions, connect, type Msg, type NatsConnection } from 'nats';
import type { Logger } from 'pino';
import { Backoff, OutageBackoff } from '../lib/backoff.js';
import { type Clock, isoNow, systemClock } from '../lib/clock.js';
import { componentLogger, silentLogger } from '../lib/logger.js';
import { natsConnectOptions } from '../lib/nats-options.js';
import {
  type CertificateReply,
  type CertificateRequest,
  canonicalJson,
  type DecodeError,
  decodeMessage,
  encode,
  type Facts,
  type Heartbeat,
  type NodeStatus,
  type PlanResult,
  PROTOCOL_VERSION,
  type Register,
  type RegisterReply,
  type SignedPlan,
  type SignedTask,
  type SnapshotChunkReply,
  type SnapshotChunkRequest,
  type StatusDigest,
  subjects,
  type TaskResult,
} from '../protocol/index.js';
import { isAuthError } from './bus-join.js';
import { AgentError, errorBody } from './errors.js';
import type { AgentOptions } from './options.js';

export type SessionState = 'idle' | 'connecting' | 'registering' | 'pending' | 'ready' | 'refused' | 'closed';

/** What the session needs from the agent: narrow, so it can be driven in tests. */
export interface SessionHandlers {
  buildRegister(): Promise<Register>;
  /** checks and pins the signing key; throws to refuse the coordinator */
  onRegistered(reply: RegisterReply): Promise<void>;
  onPlan(signed: SignedPlan, source: 'push' | 'register' | 'fetch'): Promise<PlanResult>;
  /** a signed task; the handler verifies it (agent/task-guard.ts) */
  onTask(task: SignedTask): Promise<TaskResult>;
  digest(): StatusDigest;
  status(): Omit<NodeStatus, 'seq' | 'sentAt'>;
  have(): { generation: number; checksum: string } | undefined;
}

export interface SessionCounters {
  /** malformed messages received, by subject kind */
  malformed: Record<'plan' | 'task' | 'registerReply' | 'planFetchReply', number>;
  heartbeats: number;
  statusPublished: number;
  factsPublished: number;
  registrations: number;
  reconnects: number;
}

export interface SessionOptions {
  nodeId: string;
  nats: AgentOptions['nats'];
  heartbeatIntervalMs: number;
  handlers: SessionHandlers;
  clock?: Clock;
  logger?: Logger;
  requestTimeoutMs?: number;
  /** the inbox prefix replies arrive under: the node's `_INBOX_<id>` (its credentials allow only that) */
  inboxPrefix?: string;
  /**
   * The bus refused the node's credentials (revoked: the node was removed). Returns new settings
   * (it joined again with the configured token) or undefined (it could not; retried slowly).
   */
  onAuthRefused?: () => Promise<AgentOptions['nats'] | undefined>;
}

/**
 * The wait between reconnect attempts: half the time already spent disconnected, between 250 ms and
 * 10 s, ±20 % jitter. It grows like an exponential backoff but is a pure function of the outage's
 * age, because nats.js asks for it more than once per attempt (a stateful `next()` would race ahead).
 */
export function reconnectDelay(elapsedMs: number, random: () => number = Math.random): number {
  const base = Math.min(10_000, Math.max(250, elapsedMs / 2));
  return Math.round(base * (0.8 + 0.4 * random()));
}

/** nats.js options from ours: reconnect forever, with our jittered backoff between attempts. */
export function natsConnectionOptions(
  nodeId: string,
  nats: AgentOptions['nats'],
  reconnectDelay: () => number,
  inboxPrefix?: string,
): ConnectionOptions {
  return natsConnectOptions(nats, {
    name: `drover-agent-${nodeId}`,
    reconnect: { delayMs: reconnectDelay },
    maxPingOut: 3,
    connectTimeoutMs: 5000,
    inboxPrefix,
  });
}

/**
 * The agent's NATS session: connects (forever, with backoff), registers by request/reply (retried
 * with backoff; re-done after every reconnect, since the coordinator may have restarted), then
 * heartbeats, publishes status when it changes, serves plan pushes and tasks, and fetches its plan
 * after every (re)registration that did not carry one. Losing NATS never touches the roles.
 */
export class Session {
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly h: SessionHandlers;
  private nc: NatsConnection | undefined;
  private state: SessionState = 'idle';
  private closed = false;
  private connected = false;
  private regGen = 0;
  private hbTimer: unknown;
  private hbSeq = 0;
  private statusSeq = 0;
  private lastStatusKey = '';
  private heartbeatMs: number;
  private readonly waits = new Set<() => void>();
  /** the NATS outage, on the injected clock: it paces nats.js's reconnect attempts */
  private readonly outage: OutageBackoff;
  /** set when contact returns after a long silence; cleared when a plan is applied (see planMayBeStale) */
  private awaitingPlan = false;
  /** last NATS round trip, registration or applied plan (clock ms) */
  private lastContactAt: number | undefined;
  private probing = false;
  /** set while a registration request and its key check are in flight */
  private registering: Promise<void> | undefined;
  private work: Promise<unknown> = Promise.resolve();
  readonly counters: SessionCounters = {
    malformed: { plan: 0, task: 0, registerReply: 0, planFetchReply: 0 },
    heartbeats: 0,
    statusPublished: 0,
    factsPublished: 0,
    registrations: 0,
    reconnects: 0,
  };
  /** the coordinator's answer to the last registration */
  lastReply: RegisterReply | undefined;

  /** the bus settings in use (new credentials after a re-join) */
  private nats: AgentOptions['nats'];

  constructor(private readonly opts: SessionOptions) {
    this.nats = opts.nats;
    this.clock = opts.clock ?? systemClock;
    this.outage = new OutageBackoff(this.clock, (ageMs) => reconnectDelay(ageMs));
    this.log = componentLogger(opts.logger ?? silentLogger, 'session');
    this.h = opts.handlers;
    this.heartbeatMs = opts.heartbeatIntervalMs;
  }

  get currentState(): SessionState {
    return this.state;
  }

  get isConnected(): boolean {
    return this.connected;
  }

  private setState(s: SessionState, extra: Record<string, unknown> = {}): void {
    if (s === this.state) return;
    this.log.info({ from: this.state, to: s, ...extra }, 'session state');
    this.state = s;
  }

  start(): void {
    if (this.state !== 'idle') return;
    void this.connectLoop();
  }

  /** Sleeps on the injected clock; close() cuts every wait short. */
  private wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.waits.delete(done);
        this.clock.clearTimeout(t);
        resolve();
      };
      const t = this.clock.setTimeout(done, ms);
      this.waits.add(done);
    });
  }

  private async connectLoop(): Promise<void> {
    const backoff = new Backoff({ initialMs: 250, maxMs: 10_000, jitter: 0.3 });
    const refused = new Backoff({ initialMs: 5000, maxMs: 300_000, jitter: 0.2 });
    this.setState('connecting');
    let nc: NatsConnection | undefined;
    while (!this.closed) {
      try {
        nc = await connect(
          natsConnectionOptions(this.opts.nodeId, this.nats, () => this.outage.next(), this.opts.inboxPrefix),
        );
        break;
      } catch (err) {
        if (isAuthError(err)) {
          // the node's credentials are revoked (it was removed) or not this bus's: say so, and
          // join again when the config still holds a token (it fails clearly when used up)
          this.log.error(
            { err: (err as Error).message, credsFile: this.nats.credsFile },
            `the bus refused this node's credentials${this.nats.credsFile ? ` (${this.nats.credsFile})` : ''}: the node was removed (its credentials are revoked) or they belong to another bus; it needs a new join token (\`drover token create --join\`)`,
          );
          const next = await this.opts.onAuthRefused?.().catch((e) => {
            this.log.error({ err: (e as Error).message }, 'joining again failed');
            return undefined;
          });
          if (next && !this.closed) {
            this.nats = next;
            continue;
          }
          const delay = refused.next();
          await this.wait(delay);
          continue;
        }
        const delay = backoff.next();
        this.log.warn({ err: (err as Error).message, retryInMs: delay }, 'cannot connect to NATS; retrying');
        await this.wait(delay);
      }
    }
    if (!nc) return;
    if (this.closed) {
      await nc.close().catch(() => {});
      return;
    }
    this.nc = nc;
    this.connected = true;
    this.log.info({ server: nc.getServer() }, 'connected to NATS');
    nc.subscribe(subjects.plan(this.opts.nodeId), {
      callback: (_e, m) => this.enqueue(() => this.onPlanMsg(m)),
    });
    nc.subscribe(subjects.task(this.opts.nodeId), { callback: (_e, m) => void this.onTaskMsg(m) });
    void this.watchStatus(nc);
    nc.closed().then((err) => {
      this.connected = false;
      this.stopHeartbeat();
      if (this.closed) return;
      this.log.error({ err: err?.message }, 'NATS connection closed for good; connecting again');
      this.nc = undefined;
      this.state = 'idle';
      void this.connectLoop();
    });
    void this.registerLoop();
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') {
        this.connected = false;
        this.outage.down();
        this.log.warn({ server: s.data }, 'NATS disconnected; roles keep running; reconnecting');
      } else if (s.type === 'reconnect') {
        this.connected = true;
        this.counters.reconnects++;
        this.outage.up();
        this.log.info({ server: s.data }, 'NATS reconnected; registering again');
        void this.registerLoop();
      }
    }
  }

  /** Plans are handled one at a time, in arrival order. */
  private enqueue(fn: () => Promise<void>): void {
    this.work = this.work.then(fn).catch((err) => this.log.error({ err }, 'plan handling failed'));
  }

  private async registerLoop(): Promise<void> {
    const gen = ++this.regGen;
    const backoff = new Backoff({ initialMs: 500, maxMs: 30_000, jitter: 0.2 });
    const slow = new Backoff({ initialMs: 5000, maxMs: 300_000, jitter: 0.2 });
    this.setState('registering');
    while (!this.closed && gen === this.regGen && this.nc) {
      let reply: RegisterReply;
      let finished!: () => void;
      this.registering = new Promise<void>((r) => {
        finished = r;
      });
      try {
        reply = await this.registerOnce();
      } catch (err) {
        finished();
        if (err instanceof AgentError && err.code === 'DROVER_ERR_REGISTER_REFUSED') {
          // asking again with the same report gets the same answer: slowly, and say so
          const delay = slow.next();
          this.setState('refused', { reason: err.message });
          this.log.error({ err: errorBody(err), retryInMs: delay }, 'coordinator refused this node');
          await this.wait(delay);
          continue;
        }
        const delay = backoff.next();
        this.log.warn({ err: (err as Error).message, retryInMs: delay }, 'registration failed; retrying');
        await this.wait(delay);
        continue;
      }
      if (gen !== this.regGen || this.closed) {
        finished();
        return;
      }
      this.lastReply = reply;
      this.contact(false); // the registration brings (or fetches) the plan itself
      if (!reply.accepted) {
        finished();
        const delay = slow.next();
        this.setState('refused', { reason: reply.reason });
        this.log.error({ reason: reply.reason, retryInMs: delay }, 'coordinator refused this node');
        await this.wait(delay);
        continue;
      }
      try {
        await this.h.onRegistered(reply);
      } catch (err) {
        finished();
        const delay = slow.next();
        this.setState('refused', { reason: (err as Error).message });
        this.log.error({ err: errorBody(err), retryInMs: delay }, 'refusing the coordinator');
        await this.wait(delay);
        continue;
      }
      finished();
      this.counters.registrations++;
      this.heartbeatMs = reply.heartbeatIntervalMs || this.heartbeatMs;
      this.startHeartbeat();
      this.publishStatus(true);
      if (reply.state === 'Pending') {
        // Accepted but awaiting approval: no plan yet. Ask again until approved.
        const delay = backoff.next();
        this.setState('pending', { retryInMs: delay });
        await this.wait(delay);
        continue;
      }
      this.setState('ready', { nodeState: reply.state, coordinatorEpoch: reply.coordinatorEpoch });
      if (reply.plan) {
        const p = reply.plan;
        this.enqueue(async () => {
          await this.applyPlan(p, 'register');
        });
      } else await this.fetchPlan();
      return;
    }
  }

  private async registerOnce(): Promise<RegisterReply> {
    const nc = this.nc;
    if (!nc) throw new Error('not connected');
    const req = await this.h.buildRegister();
    const msg = await nc.request(subjects.register(req.nodeId), encode(req), {
      timeout: this.opts.requestTimeoutMs ?? 5000,
    });
    let reply: RegisterReply;
    try {
      reply = decodeMessage('RegisterReply', msg.data);
    } catch (err) {
      // the coordinator answers a registration it cannot take (a bad address, hostname or label)
      // with an error body: say what it said, not that its reply did not decode
      const body = errorReplyOf(msg.data);
      if (body && /^DROVER_ERR_(DECODE|BAD_JSON|PROTOCOL_VERSION)$/.test(body.code))
        throw new AgentError(
          'DROVER_ERR_REGISTER_REFUSED',
          `the coordinator refused the registration: ${body.message}`,
          { details: { code: body.code } },
        );
      // anything else (the store away, an internal error) may pass: retried as usual
      if (body) throw new Error(`registration failed on the coordinator: ${body.code}: ${body.message}`);
      this.counters.malformed.registerReply++;
      throw err;
    }
    return reply;
  }

  /**
   * Sends a CSR for one of this node's instances (`subjects.csr`) and returns the coordinator's
   * reply. Throws when not connected or when no reply comes in time.
   */
  async requestCertificate(
    req: Omit<CertificateRequest, 'v' | 'type' | 'nodeId'>,
    timeoutMs = this.opts.requestTimeoutMs ?? 5000,
  ): Promise<CertificateReply> {
    const data = await this.ask(subjects.csr(this.opts.nodeId), { type: 'csr', ...req }, timeoutMs);
    return decodeMessage('CertificateReply', data);
  }

  /** Asks for one chunk of the etcd snapshot this node's plan seeds an instance from. */
  async requestSnapshotChunk(
    req: Omit<SnapshotChunkRequest, 'v' | 'type' | 'nodeId'>,
    timeoutMs = Math.max(this.opts.requestTimeoutMs ?? 5000, 15_000),
  ): Promise<SnapshotChunkReply> {
    const data = await this.ask(
      subjects.snapshotFetch(this.opts.nodeId),
      { type: 'snapshot-chunk', ...req },
      timeoutMs,
    );
    return decodeMessage('SnapshotChunkReply', data);
  }

  /** A request to the coordinator under this node's own subject; throws when not connected. */
  private async ask(subject: string, body: Record<string, unknown>, timeoutMs: number): Promise<Uint8Array> {
    const nc = this.nc;
    if (!nc || !this.connected) throw new Error('not connected to NATS');
    const msg = await nc.request(
      subject,
      encode({ v: PROTOCOL_VERSION, nodeId: this.opts.nodeId, ...body }),
      { timeout: timeoutMs },
    );
    return msg.data;
  }

  /** Asks the coordinator for this node's current plan. The reply is a SignedPlan, or `{code,message}` when there is none. */
  async fetchPlan(): Promise<void> {
    const nc = this.nc;
    if (!nc) return;
    const have = this.h.have();
    try {
      const msg = await nc.request(
        subjects.planFetch(this.opts.nodeId),
        encode({
          v: PROTOCOL_VERSION,
          type: 'plan-fetch',
          nodeId: this.opts.nodeId,
          ...(have ? { have } : {}),
        }),
        { timeout: this.opts.requestTimeoutMs ?? 5000 },
      );
      let signed: SignedPlan;
      try {
        signed = decodeMessage('SignedPlan', msg.data);
      } catch (err) {
        const body = safeJson(msg.data) as { code?: unknown; message?: unknown } | undefined;
        if (body && typeof body.code === 'string') {
          this.log.info({ code: body.code, message: body.message }, 'coordinator has no plan for this node');
          this.awaitingPlan = false; // nothing newer to wait for
          return;
        }
        this.counters.malformed.planFetchReply++;
        this.log.warn({ err: (err as DecodeError).message }, 'malformed plan-fetch reply');
        return;
      }
      this.enqueue(async () => {
        await this.applyPlan(signed, 'fetch');
      });
    } catch (err) {
      this.log.warn(
        { err: (err as Error).message },
        'plan fetch failed; the next push or heartbeat mismatch repairs it',
      );
    }
  }

  private async applyPlan(signed: SignedPlan, source: 'register' | 'fetch' | 'push') {
    const result = await this.h.onPlan(signed, source);
    if (result.accepted) {
      this.awaitingPlan = false;
      this.lastContactAt = this.clock.now();
    }
    return result;
  }

  /**
   * True while this node's plan may be out of date because the coordinator could not hear it for
   * long enough to move its instances away: nothing heard for 3 heartbeat intervals (when the
   * coordinator calls a node Suspect), or contact came back after such a silence and no plan has
   * been applied since. The process runtime holds local restarts of crashed instances meanwhile (up to
   * a bound), so a fenced host does not bring back what moved away in the second before its new
   * plan arrives (e.g. an etcd member that exits because it was replaced).
   */
  planMayBeStale(): boolean {
    return this.awaitingPlan || this.silentTooLong(this.clock.now());
  }

  /** No contact for 3 heartbeat intervals; never in contact yet is not silence (the applier's start-up grace covers that). */
  private silentTooLong(now: number): boolean {
    return this.lastContactAt !== undefined && now - this.lastContactAt >= 3 * this.heartbeatMs;
  }

  /**
   * A round trip to the NATS server on every heartbeat. A partition often leaves the TCP
   * connection half-open, so nats.js only notices after its ping timeouts (tens of seconds);
   * this notices within a heartbeat or two.
   */
  private probeContact(): void {
    const nc = this.nc;
    if (!nc || !this.connected || this.probing) return;
    this.probing = true;
    let timer: unknown;
    const timeout = new Promise<never>((_, reject) => {
      timer = this.clock.setTimeout(() => reject(new Error('rtt timed out')), this.heartbeatMs);
    });
    Promise.race([nc.rtt(), timeout])
      .then(
        () => this.contact(),
        () => {},
      )
      .finally(() => {
        this.clock.clearTimeout(timer);
        this.probing = false;
      });
  }

  /** We heard from NATS (or the coordinator). After a long silence: fetch the plan before any restart. */
  private contact(fetch = true): void {
    const now = this.clock.now();
    if (this.silentTooLong(now) && !this.awaitingPlan) {
      this.awaitingPlan = true;
      this.log.warn(
        { silentMs: now - (this.lastContactAt ?? now) },
        'back in contact after a long silence; local restarts wait for a fresh plan',
      );
      if (fetch) void this.fetchPlan();
    }
    this.lastContactAt = now;
  }

  private async onPlanMsg(m: Msg): Promise<void> {
    let signed: SignedPlan;
    try {
      signed = decodeMessage('SignedPlan', m.data);
    } catch (err) {
      this.counters.malformed.plan++;
      this.log.warn({ err: errorBody(err), subject: m.subject }, 'malformed plan message ignored');
      this.reply(m, {
        v: PROTOCOL_VERSION,
        type: 'plan-result',
        nodeId: this.opts.nodeId,
        generation: 0,
        checksum: '',
        accepted: false,
        error: errorBody(err),
      } satisfies PlanResult);
      return;
    }
    // A coordinator may push a plan right after answering our registration, before the reply (and
    // the signing key in it) has been processed here: let the registration finish first.
    if (this.registering) await this.registering;
    const result = await this.applyPlan(signed, 'push');
    this.reply(m, result);
    // A push that changes nothing is how a coordinator asks for a status it lost (a status is
    // sent once, on change): send the full one again.
    const c = result.changes;
    if (result.accepted && c && !c.started.length && !c.restarted.length && !c.stopped.length)
      this.publishStatus(true);
  }

  private async onTaskMsg(m: Msg): Promise<void> {
    let signed: SignedTask;
    try {
      signed = decodeMessage('SignedTask', m.data);
    } catch (err) {
      this.counters.malformed.task++;
      const raw = safeJson(m.data) as { type?: unknown; id?: unknown; task?: { id?: unknown } } | undefined;
      // A well-formed bare Task is what a coordinator older than signed tasks sends: say so.
      const bare = raw?.type === 'task';
      const error = bare ? bareTaskError(m.data) : errorBody(err);
      this.log.warn({ err: error, subject: m.subject }, 'task message refused');
      const rawId = bare ? raw?.id : raw?.task?.id;
      const id = typeof rawId === 'string' && rawId.length > 0 && rawId.length <= 64 ? rawId : 'unknown';
      this.reply(m, {
        v: PROTOCOL_VERSION,
        type: 'task-result',
        id,
        nodeId: this.opts.nodeId,
        ok: false,
        error,
        finishedAt: isoNow(this.clock),
      } satisfies TaskResult);
      return;
    }
    const task = signed.task;
    let result: TaskResult;
    try {
      result = await this.h.onTask(signed);
    } catch (err) {
      result = {
        v: PROTOCOL_VERSION,
        type: 'task-result',
        id: task.id,
        nodeId: this.opts.nodeId,
        ok: false,
        error: errorBody(err),
        finishedAt: isoNow(this.clock),
      };
    }
    this.reply(m, result);
  }

  private reply(m: Msg, body: unknown): void {
    if (!m.reply) return;
    try {
      m.respond(encode(body));
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'cannot send reply');
    }
  }

  private startHeartbeat(): void {
    this.stopHeartbeat();
    const tick = () => {
      this.sendHeartbeat();
      this.probeContact();
      this.hbTimer = this.clock.setTimeout(tick, this.heartbeatMs);
    };
    this.hbTimer = this.clock.setTimeout(tick, this.heartbeatMs);
  }

  private stopHeartbeat(): void {
    this.clock.clearTimeout(this.hbTimer);
    this.hbTimer = undefined;
  }

  /** Registers again (labels or address changed on reload). */
  reregister(): void {
    if (this.nc && !this.closed) void this.registerLoop();
  }

  setHeartbeatInterval(ms: number): void {
    this.heartbeatMs = ms;
  }

  private sendHeartbeat(): void {
    if (!this.nc || !this.connected) return;
    const hb: Heartbeat = {
      v: PROTOCOL_VERSION,
      type: 'heartbeat',
      nodeId: this.opts.nodeId,
      seq: this.hbSeq++,
      sentAt: isoNow(this.clock),
      digest: this.h.digest(),
    };
    if (this.publish(subjects.heartbeat(this.opts.nodeId), hb)) this.counters.heartbeats++;
  }

  private publish(subject: string, body: unknown): boolean {
    if (!this.nc || this.nc.isClosed()) return false;
    try {
      this.nc.publish(subject, encode(body));
      return true;
    } catch (err) {
      this.log.warn({ err: (err as Error).message, subject }, 'publish failed');
      return false;
    }
  }

  /**
   * Publishes full status when it differs from the last one sent (or when forced, after every
   * registration). While disconnected nothing is sent; the forced publish after re-registering resyncs.
   */
  publishStatus(force = false): boolean {
    if (!this.nc || !this.connected || !['ready', 'pending', 'registering'].includes(this.state))
      return false;
    if (this.counters.registrations === 0) return false;
    const s = this.h.status();
    const key = canonicalJson(s);
    if (!force && key === this.lastStatusKey) return false;
    const msg: NodeStatus = { ...s, seq: this.statusSeq++, sentAt: isoNow(this.clock) };
    if (!this.publish(subjects.status(this.opts.nodeId), msg)) return false;
    this.lastStatusKey = key;
    this.counters.statusPublished++;
    return true;
  }

  publishFacts(facts: Facts): boolean {
    if (!this.nc || !this.connected || this.counters.registrations === 0) return false;
    const ok = this.publish(subjects.facts(this.opts.nodeId), {
      v: PROTOCOL_VERSION,
      type: 'facts',
      nodeId: this.opts.nodeId,
      facts,
    });
    if (ok) this.counters.factsPublished++;
    return ok;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.regGen++;
    this.stopHeartbeat();
    for (const w of [...this.waits]) w();
    this.setState('closed');
    const nc = this.nc;
    this.nc = undefined;
    if (nc) {
      await nc.drain().catch(() => nc.close().catch(() => {}));
    }
    await this.work.catch(() => {});
  }
}

/** A message typed `task` (not `task-push`): its own decode error, else "unsigned". Never run. */
function bareTaskError(data: Uint8Array): { code: string; message: string } {
  try {
    decodeMessage('Task', data);
  } catch (err) {
    return errorBody(err);
  }
  return {
    code: 'DROVER_ERR_TASK_UNSIGNED',
    message: 'task is not signed (a bare Task, as a coordinator older than signed tasks sends); not run',
  };
}

function safeJson(data: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(data));
  } catch {
    return undefined;
  }
}

/** A `{ code, message }` error body (what the coordinator answers a request it refuses), if `data` is one. */
function errorReplyOf(data: Uint8Array): { code: string; message: string } | undefined {
  try {
    const v = JSON.parse(new TextDecoder().decode(data)) as {
      code?: unknown;
      message?: unknown;
      type?: unknown;
    };
    return v && typeof v.code === 'string' && typeof v.message === 'string' && v.type === undefined
      ? { code: v.code, message: v.message }
      : undefined;
  } catch {
    return undefined;
  }
}
