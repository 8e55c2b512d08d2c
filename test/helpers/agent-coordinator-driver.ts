import type { Msg, NatsConnection } from 'nats';
import {
  decodeMessage,
  encode,
  type FactsUpdate,
  generateSigningKey,
  type Heartbeat,
  type InstanceSpec,
  type NodeState,
  type NodeStatus,
  type PlanFetch,
  type PlanResult,
  PROTOCOL_VERSION,
  type Register,
  type RegisterReply,
  type SignedPlan,
  type SigningKeyPair,
  sealPlan,
  signPlan,
  signTask,
  subjects,
  type Task,
  type TaskResult,
} from '../../protocol/index.js';
import { autoCleanup, waitFor } from './proc.js';
import { natsByUrl } from './servers.js';

export interface DriverOptions {
  key?: SigningKeyPair;
  coordinatorEpoch?: number;
  /** state given to registering nodes; change `driver.nodeState` at any time */
  nodeState?: NodeState;
  heartbeatIntervalMs?: number;
  /** include the node's current plan in the RegisterReply (default false: the agent fetches it) */
  planInRegisterReply?: boolean;
}

/**
 * A test-side coordinator that speaks the real protocol over a real nats-server: answers
 * registrations, serves plan fetches, signs and pushes plans, sends tasks, and records every
 * heartbeat, status and facts message it sees. Every inbound message is decoded with the
 * protocol's schemas, so an agent that sends a malformed message fails the test.
 */
export class CoordinatorDriver {
  key: SigningKeyPair;
  coordinatorEpoch: number;
  nodeState: NodeState;
  /** when set, registrations are refused with this reason */
  refuseWith: string | undefined;
  heartbeatIntervalMs: number;
  planInRegisterReply: boolean;
  /** runs before a registration is answered (e.g. to race a plan push against the reply) */
  beforeRegisterReply: ((r: Register) => Promise<void>) | undefined;
  readonly registers: Register[] = [];
  readonly heartbeats: Heartbeat[] = [];
  readonly statuses: NodeStatus[] = [];
  readonly facts: FactsUpdate[] = [];
  readonly planFetches: PlanFetch[] = [];
  readonly decodeErrors: string[] = [];
  /** the plan each node should run, served on plan fetch */
  readonly plans = new Map<string, SignedPlan>();
  private readonly generations = new Map<string, number>();

  private constructor(
    readonly nc: NatsConnection,
    opts: DriverOptions,
  ) {
    this.key = opts.key ?? generateSigningKey();
    this.coordinatorEpoch = opts.coordinatorEpoch ?? 1;
    this.nodeState = opts.nodeState ?? 'Ready';
    this.heartbeatIntervalMs = opts.heartbeatIntervalMs ?? 500;
    this.planInRegisterReply = opts.planInRegisterReply ?? false;
  }

  static async start(natsUrl: string, opts: DriverOptions = {}): Promise<CoordinatorDriver> {
    // the bus runs Drover's auth: the driver stands in for the coordinator with its identity
    const bus = natsByUrl.get(natsUrl);
    if (!bus) throw new Error(`no test nats-server at ${natsUrl} (start it with startNats)`);
    const nc = await bus.connectAs(
      { coordinator: true },
      {
        reconnect: true,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 200,
        name: 'test-coordinator-driver',
      },
    );
    const d = new CoordinatorDriver(nc, opts);
    d.listen();
    await nc.flush();
    autoCleanup(() => d.close());
    return d;
  }

  private decode<T>(what: string, fn: () => T): T | undefined {
    try {
      return fn();
    } catch (err) {
      this.decodeErrors.push(`${what}: ${(err as Error).message}`);
      return undefined;
    }
  }

  private listen(): void {
    this.nc.subscribe(subjects.registerAll(), {
      callback: async (_e, m) => {
        const r = this.decode('Register', () => decodeMessage('Register', m.data));
        if (!r) return;
        this.registers.push(r);
        if (this.beforeRegisterReply) await this.beforeRegisterReply(r);
        const plan = this.plans.get(r.nodeId);
        const reply: RegisterReply = {
          v: PROTOCOL_VERSION,
          type: 'register-reply',
          accepted: this.refuseWith === undefined,
          nodeId: r.nodeId,
          state: this.nodeState,
          ...(this.refuseWith !== undefined ? { reason: this.refuseWith } : {}),
          coordinatorEpoch: this.coordinatorEpoch,
          signingKey: this.key.publicKeyB64,
          keyFingerprint: this.key.fingerprint,
          heartbeatIntervalMs: this.heartbeatIntervalMs,
          ...(this.planInRegisterReply && plan && this.nodeState !== 'Pending' ? { plan } : {}),
        };
        m.respond(encode(reply));
      },
    });
    this.nc.subscribe(subjects.heartbeatAll(), {
      callback: (_e, m) => {
        const hb = this.decode('Heartbeat', () => decodeMessage('Heartbeat', m.data));
        if (hb) this.heartbeats.push(hb);
      },
    });
    this.nc.subscribe(subjects.statusAll(), {
      callback: (_e, m) => {
        const s = this.decode('NodeStatus', () => decodeMessage('NodeStatus', m.data));
        if (s) this.statuses.push(s);
      },
    });
    this.nc.subscribe(subjects.factsAll(), {
      callback: (_e, m) => {
        const f = this.decode('FactsUpdate', () => decodeMessage('FactsUpdate', m.data));
        if (f) this.facts.push(f);
      },
    });
    this.nc.subscribe(subjects.planFetchAll(), {
      callback: (_e, m: Msg) => {
        const f = this.decode('PlanFetch', () => decodeMessage('PlanFetch', m.data));
        if (!f) return;
        this.planFetches.push(f);
        const plan = this.plans.get(f.nodeId);
        m.respond(
          encode(
            plan && this.nodeState !== 'Pending'
              ? plan
              : { code: 'DROVER_ERR_NODE_NOT_FOUND', message: `no plan for ${f.nodeId}` },
          ),
        );
      },
    });
  }

  /** Seals and signs a plan for a node (next generation unless given) and records it as current. */
  makePlan(
    nodeId: string,
    instances: Array<Omit<InstanceSpec, 'checksum'>>,
    opts: { generation?: number; coordinatorEpoch?: number; key?: SigningKeyPair; record?: boolean } = {},
  ): SignedPlan {
    const generation = opts.generation ?? (this.generations.get(nodeId) ?? 0) + 1;
    if (opts.generation === undefined || generation > (this.generations.get(nodeId) ?? 0))
      this.generations.set(nodeId, generation);
    const plan = sealPlan({
      v: PROTOCOL_VERSION,
      type: 'plan',
      nodeId,
      generation,
      coordinatorEpoch: opts.coordinatorEpoch ?? this.coordinatorEpoch,
      issuedAt: new Date().toISOString(),
      instances,
    });
    const signed = signPlan(plan, opts.key ?? this.key);
    if (opts.record !== false) this.plans.set(nodeId, signed);
    return signed;
  }

  async push(nodeId: string, signed: SignedPlan, timeoutMs = 30_000): Promise<PlanResult> {
    const m = await this.nc.request(subjects.plan(nodeId), encode(signed), { timeout: timeoutMs });
    return decodeMessage('PlanResult', m.data);
  }

  /** Sends raw bytes on a node subject and returns the parsed reply. */
  async requestRaw(subject: string, data: Uint8Array | string, timeoutMs = 5000): Promise<unknown> {
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    const m = await this.nc.request(subject, bytes, { timeout: timeoutMs });
    return JSON.parse(new TextDecoder().decode(m.data));
  }

  /** Builds a task for `nodeId`, valid for its timeout plus 2 s from now (override any field). */
  makeTask(nodeId: string, t: Partial<Omit<Task, 'v' | 'type'>> & Pick<Task, 'kind'>): Task {
    const now = Date.now();
    const timeoutMs = t.timeoutMs ?? 20_000;
    return {
      v: PROTOCOL_VERSION,
      type: 'task',
      id: t.id ?? `t-${Math.random().toString(36).slice(2, 10)}`,
      nodeId,
      timeoutMs,
      issuedAt: new Date(now).toISOString(),
      expiresAt: new Date(now + timeoutMs + 2000).toISOString(),
      ...t,
    };
  }

  /** Sends a task signed with this driver's key (or `opts.key`), as a coordinator does. */
  async task(
    nodeId: string,
    t: Partial<Omit<Task, 'v' | 'type'>> & Pick<Task, 'kind'>,
    timeoutMs = 30_000,
    opts: { key?: SigningKeyPair } = {},
  ): Promise<TaskResult> {
    return this.sendSignedTask(nodeId, signTask(this.makeTask(nodeId, t), opts.key ?? this.key), timeoutMs);
  }

  /** Sends a signed task envelope as given (a replay, a tampered copy) on `nodeId`'s task subject. */
  async sendSignedTask(nodeId: string, signed: unknown, timeoutMs = 30_000): Promise<TaskResult> {
    const m = await this.nc.request(subjects.task(nodeId), encode(signed), { timeout: timeoutMs });
    return decodeMessage('TaskResult', m.data);
  }

  latestStatus(nodeId: string): NodeStatus | undefined {
    for (let i = this.statuses.length - 1; i >= 0; i--)
      if (this.statuses[i]!.nodeId === nodeId) return this.statuses[i];
    return undefined;
  }

  /** Waits until the latest status from the node satisfies `pred`. */
  waitStatus(
    nodeId: string,
    what: string,
    pred: (s: NodeStatus) => boolean,
    timeoutMs = 20_000,
  ): Promise<NodeStatus> {
    return waitFor(
      `status of ${nodeId}: ${what}`,
      () => {
        const s = this.latestStatus(nodeId);
        return s && pred(s) ? s : undefined;
      },
      { timeoutMs, intervalMs: 50 },
    );
  }

  async close(): Promise<void> {
    if (!this.nc.isClosed()) await this.nc.close();
  }
}
