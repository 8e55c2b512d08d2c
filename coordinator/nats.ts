import { type ConnectionOptions, connect, type Msg, type NatsConnection, type Subscription } from 'nats';
import type { Logger } from '../lib/logger.js';
import { type NatsSettings, natsConnectOptions } from '../lib/nats-options.js';
import {
  type CertificateReply,
  type CertificateRequest,
  DecodeError,
  DroverError,
  decodeMessage,
  type Event,
  encode,
  type JoinReply,
  type MessageName,
  type MessageOf,
  NODE_MESSAGE_MAX_BYTES,
  nodeIdFromSubject,
  type PlanResult,
  PROTOCOL_VERSION,
  type SignedPlan,
  type SignedTask,
  type SnapshotChunkReply,
  type SnapshotChunkRequest,
  subjects,
  type TaskResult,
} from '../protocol/index.js';
import type { AgentBus, Engine } from './engine.js';

export type { NatsSettings };

/** The coordinator's nats.js options: a fixed reconnect wait with jitter, no per-request traces. */
export function natsConnectionOptions(s: NatsSettings, name: string): ConnectionOptions {
  // nats.js captures a stack trace per request for async error traces; at thousands of plan
  // pushes a second that was ~5 % of the coordinator's CPU.
  return natsConnectOptions(s, { name, reconnect: { waitMs: 500, jitterMs: 500 }, noAsyncTraces: true });
}

/** The `nodeId` a message body claims, when it is a valid node id; for naming the node in errors. */
function claimedNodeId(data: Uint8Array): string | undefined {
  try {
    const id = (JSON.parse(new TextDecoder().decode(data)) as { nodeId?: unknown } | null)?.nodeId;
    return typeof id === 'string' && /^[A-Za-z0-9_-]{1,128}$/.test(id) ? id : undefined;
  } catch {
    return undefined;
  }
}

export interface NatsBusOptions {
  /** signs agents' certificate requests (see coordinator/pki/csr-service.ts) */
  csr?: (req: CertificateRequest) => Promise<CertificateReply>;
  /**
   * answers a Join on `drover.v1.join.<tokenId>` (coordinator/engine/join.ts): the token id from
   * the subject, the raw body (it decodes and checks it itself, so every refusal is signed)
   */
  join?: (
    tokenId: string,
    data: Uint8Array,
  ) => Promise<{ reply: JoinReply; afterReply?: () => Promise<void> }>;
  /**
   * serves a chunk of the etcd snapshot a node's plan seeds an instance from (coordinator/etcd/restore.ts);
   * the request's node id is the sender's subject, checked by `decode`
   */
  snapshotChunk?: (req: SnapshotChunkRequest) => Promise<SnapshotChunkReply>;
  /**
   * Coordinator HA: asked right before every plan push and task (the leader lease's `mayAct`);
   * false refuses to send, so a leader whose lease ran out never pushes again
   */
  mayAct?: () => boolean;
}

/** What a follower coordinator hears of the agents: heartbeats and status, for its liveness view. */
export interface AgentObserver {
  handleHeartbeat(hb: MessageOf<'Heartbeat'>): void;
  handleStatus(st: MessageOf<'NodeStatus'>): void;
}

export interface BusCounters {
  malformed: number;
  heartbeats: number;
}

/**
 * Wires the engine to NATS: subscribes to what agents send, implements AgentBus for what the
 * engine sends. Every inbound message is decoded against its schema; a malformed one is logged,
 * counted and dropped (or answered with an error body), never thrown.
 */
export class NatsBus implements AgentBus {
  readonly counters: BusCounters = { malformed: 0, heartbeats: 0 };
  private subs: Subscription[] = [];

  private constructor(
    readonly nc: NatsConnection,
    private readonly log: Logger,
  ) {}

  /**
   * A follower coordinator's bus: heartbeats and status only (every follower hears every report
   * beside the leader), and it sends nothing.
   */
  static async observe(settings: NatsSettings, observer: AgentObserver, log: Logger): Promise<NatsBus> {
    const nc = await connect(natsConnectionOptions(settings, 'drover-coordinator-follower'));
    const bus = new NatsBus(nc, log);
    bus.mayAct = () => false;
    bus.watchStatus();
    bus.sub(subjects.heartbeatAll(), (m) => {
      const hb = bus.decode('Heartbeat', m);
      if (hb) observer.handleHeartbeat(hb);
    });
    bus.sub(subjects.statusAll(), (m) => {
      const st = bus.decode('NodeStatus', m);
      if (st) observer.handleStatus(st);
    });
    return bus;
  }

  private sub(subject: string, fn: (m: Msg) => void): void {
    this.subs.push(
      this.nc.subscribe(subject, {
        callback: (err, m) => {
          if (err) this.log.error({ err, subject }, 'subscription error');
          else
            try {
              fn(m);
            } catch (e) {
              this.log.warn({ err: e, subject }, 'follower could not take a report');
            }
        },
      }),
    );
  }

  private watchStatus(): void {
    void (async () => {
      for await (const s of this.nc.status()) {
        if (s.type === 'disconnect') this.isConnected = false;
        if (s.type === 'reconnect') this.isConnected = true;
        this.log.info({ nats: s.type, data: typeof s.data === 'string' ? s.data : undefined }, 'nats status');
      }
    })().catch(() => {});
  }

  static async connect(
    settings: NatsSettings,
    engine: Engine,
    log: Logger,
    opts: NatsBusOptions = {},
  ): Promise<NatsBus> {
    const nc = await connect(natsConnectionOptions(settings, 'drover-coordinator'));
    const bus = new NatsBus(nc, log);
    bus.csr = opts.csr;
    bus.join = opts.join;
    bus.snapshotChunk = opts.snapshotChunk;
    bus.mayAct = opts.mayAct;
    bus.listen(engine);
    bus.watchStatus();
    engine.attachBus(bus);
    return bus;
  }

  private isConnected = true;
  /** answers agents' CSRs (the coordinator's ClusterPki); without it they are refused */
  private csr?: (req: CertificateRequest) => Promise<CertificateReply>;
  private join?: NatsBusOptions['join'];
  private snapshotChunk?: NatsBusOptions['snapshotChunk'];
  private mayAct?: () => boolean;

  get connected(): boolean {
    return !this.nc.isClosed() && this.isConnected;
  }

  private decode<N extends MessageName>(name: N, m: Msg): MessageOf<N> | undefined {
    try {
      const max = NODE_MESSAGE_MAX_BYTES[name];
      if (max !== undefined && m.data.length > max)
        throw new DecodeError(
          'DROVER_ERR_DECODE',
          '/',
          `a ${name} of ${m.data.length} bytes is over the ${max / 1024} KiB a node may send`,
        );
      const v = decodeMessage(name, m.data);
      const fromSubject = nodeIdFromSubject(m.subject);
      const claimed = (v as { nodeId?: string }).nodeId;
      if (fromSubject && claimed && fromSubject !== claimed) {
        throw new DecodeError(
          'DROVER_ERR_DECODE',
          '/nodeId',
          `nodeId ${claimed} does not match subject ${m.subject}`,
        );
      }
      return v;
    } catch (err) {
      this.counters.malformed++;
      // name the node: from the subject, else the body's nodeId (registration is one subject)
      const nodeId = nodeIdFromSubject(m.subject) ?? claimedNodeId(m.data);
      const body = (err as DroverError).toJSON?.() ?? { code: 'DROVER_ERR_DECODE', message: String(err) };
      if (nodeId && !body.message.startsWith(`node ${nodeId}`))
        body.message = `node ${nodeId}: ${body.message}`;
      this.log.warn(
        { subject: m.subject, nodeId, err: body.message, code: body.code },
        'dropped malformed message',
      );
      if (m.reply) m.respond(encode(body));
      return undefined;
    }
  }

  /**
   * A plain subscription, never a queue group: the lease lets only one coordinator listen at a
   * time, and a queue group would split agents' reports with a ghost. A leader cut off by a
   * partition unsubscribes when it loses its lease, but the UNSUB cannot reach the server until
   * the link is back; the server keeps its subscription meanwhile, and in a queue group it would
   * take every other heartbeat and status (a status is sent once, on change, so the new leader
   * would never learn it). Without one, the ghost's copy is dropped by its own client and the
   * new leader gets every message.
   */
  private on(subject: string, fn: (m: Msg) => void | Promise<void>): void {
    const sub = this.nc.subscribe(subject, {
      callback: (err, m) => {
        if (err) {
          this.log.error({ err, subject }, 'subscription error');
          return;
        }
        try {
          const r = fn(m);
          if (r) r.catch((e) => this.replyError(m, e));
        } catch (e) {
          this.replyError(m, e);
        }
      },
    });
    this.subs.push(sub);
  }

  private replyError(m: Msg, e: unknown): void {
    const body =
      e instanceof DroverError
        ? e.toJSON()
        : { code: 'DROVER_ERR_INTERNAL', message: (e as Error)?.message ?? String(e) };
    if (!(e instanceof DroverError)) this.log.error({ err: e, subject: m.subject }, 'handler failed');
    else if (e instanceof DecodeError)
      this.log.warn({ subject: m.subject, err: e.message, code: e.code }, 'refused a node report');
    if (m.reply) m.respond(encode(body));
  }

  private listen(engine: Engine): void {
    // ---- joins: a bootstrap user asks for its node credentials (only with bus authorisation)
    if (this.join) {
      const join = this.join;
      this.on(subjects.joinAll(), async (m) => {
        const tokenId = m.subject.slice(subjects.joinAll().length - 1);
        const { reply, afterReply } = await join(tokenId, m.data);
        if (!reply.ok) this.counters.malformed += reply.error?.code === 'DROVER_ERR_DECODE' ? 1 : 0;
        if (m.reply) m.respond(encode(reply));
        if (!afterReply) return;
        // the reply leaves before the bootstrap user is revoked (that disconnects the host); give
        // it a moment on the wire. A leader deposed meanwhile leaves it to the new one's sweep.
        await this.nc.flush().catch(() => {});
        setTimeout(() => {
          if (!this.mayAct || this.mayAct()) void afterReply();
        }, 1000).unref?.();
      });
    }
    this.on(subjects.registerAll(), async (m) => {
      const msg = this.decode('Register', m);
      if (!msg) return;
      m.respond(encode(await engine.handleRegister(msg)));
    });
    this.on(subjects.heartbeatAll(), (m) => {
      const hb = this.decode('Heartbeat', m);
      if (!hb) return;
      this.counters.heartbeats++;
      engine.handleHeartbeat(hb);
    });
    this.on(subjects.statusAll(), (m) => {
      const st = this.decode('NodeStatus', m);
      if (st) engine.handleStatus(st);
    });
    this.on(subjects.factsAll(), async (m) => {
      const f = this.decode('FactsUpdate', m);
      if (f) await engine.handleFacts(f);
    });
    this.on(subjects.planFetchAll(), (m) => {
      const pf = this.decode('PlanFetch', m);
      if (pf) m.respond(encode(engine.handlePlanFetch(pf)));
    });
    // ---- seeds: certificate requests (the agent's key never leaves its node; only the CSR comes)
    this.on(subjects.csrAll(), async (m) => {
      const req = this.decode('CertificateRequest', m);
      if (!req) return;
      const reply: CertificateReply = this.csr
        ? await this.csr(req)
        : {
            v: PROTOCOL_VERSION,
            type: 'csr-reply',
            ok: false,
            error: { code: 'DROVER_ERR_NOT_IMPLEMENTED', message: 'this coordinator has no cluster PKI' },
          };
      m.respond(encode(reply));
    });
    // ---- restores: the etcd snapshot a node's plan seeds an instance from, chunk by chunk
    this.on(subjects.snapshotFetchAll(), async (m) => {
      const req = this.decode('SnapshotChunkRequest', m);
      if (!req) return;
      const reply: SnapshotChunkReply = this.snapshotChunk
        ? await this.snapshotChunk(req)
        : {
            v: PROTOCOL_VERSION,
            type: 'snapshot-chunk-reply',
            ok: false,
            error: {
              code: 'DROVER_ERR_NOT_IMPLEMENTED',
              message: 'this coordinator serves no etcd snapshots',
            },
          };
      m.respond(encode(reply));
    });
  }

  /** A leader whose lease ran out (or a follower) sends nothing to agents. */
  private fence(what: string, nodeId: string): void {
    if (this.mayAct && !this.mayAct())
      throw new DroverError(
        'DROVER_ERR_NOT_LEADER',
        `not sending the ${what} to ${nodeId}: this coordinator does not hold the leader lease`,
      );
  }

  async pushPlan(nodeId: string, signed: SignedPlan, timeoutMs: number): Promise<PlanResult> {
    this.fence('plan', nodeId);
    const r = await this.nc.request(subjects.plan(nodeId), encode(signed), { timeout: timeoutMs });
    return decodeMessage('PlanResult', r.data);
  }

  async sendTask(nodeId: string, task: SignedTask, timeoutMs: number): Promise<TaskResult> {
    this.fence('task', nodeId);
    const r = await this.nc.request(subjects.task(nodeId), encode(task), { timeout: timeoutMs });
    return decodeMessage('TaskResult', r.data);
  }

  publishEvent(e: Event): void {
    if (this.nc.isClosed()) return;
    try {
      this.nc.publish(subjects.event(e.kind), encode(e));
    } catch (err) {
      this.log.debug({ err }, 'cannot publish event');
    }
  }

  /**
   * Stops taking agents' messages at once (a deposed leader: it must not act on a report, nor
   * answer a registration, a join or a CSR, once another may lead).
   */
  stopListening(): void {
    for (const s of this.subs) s.unsubscribe();
    this.subs = [];
  }

  async close(): Promise<void> {
    for (const s of this.subs) s.unsubscribe();
    if (!this.nc.isClosed()) await this.nc.drain().catch(() => this.nc.close());
  }
}
