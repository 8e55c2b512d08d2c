import type { FastifyInstance } from 'fastify';
import { buildApi, type CoordinatorMetrics, createMetrics, TokenStore } from '../../coordinator/api/index.js';
import { PurgeLists } from '../../coordinator/engine/purge-lists.js';
import { type AgentBus, Engine, type EngineTimings } from '../../coordinator/engine.js';
import type { SnapshotBook } from '../../coordinator/etcd/snapshot-book.js';
import { NodeRegistry } from '../../coordinator/nodes.js';
import { compileEngineOptions, DEFAULT_REPAIR_OPTIONS } from '../../coordinator/options.js';
import type { CertificateBook } from '../../coordinator/pki/cert-book.js';
import { RepairPolicy, repairPortsFrom } from '../../coordinator/repair.js';
import { ClusterState } from '../../coordinator/state/cluster-state.js';
import { MemoryStore } from '../../coordinator/store/index.js';
import { systemClock } from '../../lib/clock.js';
import { silentLogger } from '../../lib/logger.js';
import {
  type Event,
  generateSigningKey,
  type InstanceStatus,
  type PlanResult,
  PROTOCOL_VERSION,
  type SignedPlan,
  type SignedTask,
  type Task,
  type TaskResult,
} from '../../protocol/index.js';
import { sampleFacts } from './fixtures.js';

/**
 * A recording AgentBus (the engine's narrow port to agents): every plan push and task is kept and
 * answered like a healthy agent would, unless a test sets `refuse`/`failTasks`.
 */
export class RecordingBus implements AgentBus {
  readonly pushes: Array<{ nodeId: string; signed: SignedPlan }> = [];
  readonly tasks: Task[] = [];
  readonly events: Event[] = [];
  failTasks = false;

  async pushPlan(nodeId: string, signed: SignedPlan): Promise<PlanResult> {
    this.pushes.push({ nodeId, signed });
    return {
      v: PROTOCOL_VERSION,
      type: 'plan-result',
      nodeId,
      generation: signed.plan.generation,
      checksum: signed.plan.checksum,
      accepted: true,
    };
  }

  /** the signed envelopes, as sent (`tasks` holds what they carry) */
  readonly signedTasks: SignedTask[] = [];

  async sendTask(nodeId: string, signed: SignedTask): Promise<TaskResult> {
    const task = signed.task;
    this.signedTasks.push(signed);
    this.tasks.push(task);
    if (this.failTasks) throw new Error('request timed out');
    return {
      v: PROTOCOL_VERSION,
      type: 'task-result',
      id: task.id,
      nodeId,
      ok: true,
      output: `${task.kind} ${task.instanceId ?? ''} done`,
      finishedAt: new Date().toISOString(),
    };
  }

  publishEvent(e: Event): void {
    this.events.push(e);
  }
}

/** The engine's defaults (coordinator/options.ts) with a faster heartbeat, a later move and a short push timeout. */
export const TEST_TIMINGS: EngineTimings = compileEngineOptions({
  heartbeatInterval: 1000,
  reassignAfter: 15_000,
  pushTimeout: 2000,
}).timings;

export interface TestApi {
  app: FastifyInstance;
  engine: Engine;
  bus: RecordingBus;
  store: MemoryStore;
  /** the clean records the engine's plans read purge lists from (pass on to another buildApi) */
  purge: PurgeLists;
  metrics: CoordinatorMetrics;
  tokens: TokenStore;
  admin: string;
  operator: string;
  viewer: string;
  /**
   * registers a node through the engine as its agent would over its own bus identity; a `hostname`
   * another node has in the cluster leaves it Pending (node.hostname-conflict)
   */
  register(
    id: string,
    opts?: { hostname?: string; labels?: Record<string, string>; address?: string },
  ): Promise<void>;
  /** reports every instance of the node's desired plan in `phase` (Healthy by default), as its agent would */
  report(
    nodeId: string,
    opts?: { phase?: InstanceStatus['phase']; simulated?: boolean; lastError?: string },
  ): void;
  /** waits until the engine's work queue has nothing left to do */
  settle(): Promise<void>;
  auth(token: string): { authorization: string };
  close(): Promise<void>;
}

/** What an agent reports as health for a phase: probed and passing, no probe, or failing. */
function healthOf(phase: InstanceStatus['phase']): InstanceStatus['health'] {
  if (phase === 'Healthy') return 'healthy';
  if (phase === 'Running' || phase === 'Starting' || phase === 'Pending') return 'unknown';
  return 'unhealthy';
}

export async function startTestApi(
  opts: {
    natsConnected?: () => boolean;
    sseHeartbeatMs?: number;
    /** `api.trustedProxies` */
    trustedProxies?: string[];
    /** `api.maxStreamsPerToken` */
    maxStreamsPerToken?: number;
    /** the etcd snapshot book the API serves (built on the test's engine and store) */
    snapshots?: (engine: Engine, store: MemoryStore) => SnapshotBook;
    /** the certificate book the API lists */
    certificates?: CertificateBook;
  } = {},
): Promise<TestApi> {
  const store = new MemoryStore();
  const bus = new RecordingBus();
  const metrics = createMetrics();
  // as in coordinator/daemon.ts: the read model and the clean records (plans carry their purge lists) first
  const state = new ClusterState(new NodeRegistry(store, systemClock, TEST_TIMINGS));
  const purge = new PurgeLists(state, store);
  const engine = new Engine({
    store,
    logger: silentLogger,
    signingKey: generateSigningKey(),
    timings: TEST_TIMINGS,
    onReconcile: metrics.onReconcile,
    onPush: metrics.onPush,
    state,
    planAddons: (nodeId) => purge.addons(nodeId),
    repair: (e) =>
      new RepairPolicy(
        repairPortsFrom(e, {
          clock: systemClock,
          log: silentLogger,
          onRepair: (r) => metrics.repairs.inc({ result: r }),
        }),
        { ...DEFAULT_REPAIR_OPTIONS },
      ),
  });
  await purge.load();
  engine.attachBus(bus);
  await engine.start();
  const tokens = await TokenStore.open({ logger: silentLogger });
  const admin = (await tokens.create('root', 'admin')).token;
  const operator = (await tokens.create('ops', 'operator')).token;
  const viewer = (await tokens.create('watcher', 'viewer')).token;
  const app = buildApi({
    engine,
    tokens,
    logger: silentLogger,
    metrics,
    store,
    natsConnected: opts.natsConnected ?? (() => true),
    sse: { heartbeatMs: opts.sseHeartbeatMs ?? 15_000, maxStreamsPerToken: opts.maxStreamsPerToken },
    trustedProxies: opts.trustedProxies,
    purge,
    ...(opts.snapshots ? { snapshots: opts.snapshots(engine, store) } : {}),
    ...(opts.certificates ? { certificates: opts.certificates } : {}),
  });
  await app.ready();
  // Reconciles enqueue more reconciles (cluster → node pushes); wait until the queue stays empty.
  const settle = async () => {
    for (let i = 0; i < 3; i++) {
      await engine.queue.idle();
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  let seq = 0;
  return {
    app,
    engine,
    bus,
    store,
    purge,
    metrics,
    tokens,
    admin,
    operator,
    viewer,
    settle,
    auth: (t) => ({ authorization: `Bearer ${t}` }),
    async register(id, o = {}) {
      const n = Number(id.replace(/\D/g, '')) || 1;
      const address = o.address ?? `127.0.0.${n + 1}`;
      await engine.handleRegister({
        v: PROTOCOL_VERSION,
        type: 'register',
        nodeId: id,
        hostname: o.hostname ?? `host-${id}`,
        address,
        labels: o.labels ?? {},
        facts: sampleFacts({ hostname: `host-${id}`, machineId: `machine-${id}` }),
        fingerprint: { machineId: `machine-${id}`, macs: [] },
        agentVersion: '0.1.0',
      });
    },
    report(nodeId, o = {}) {
      const plan = engine.desiredPlan(nodeId);
      const instances: InstanceStatus[] = (plan?.instances ?? []).map((i) => ({
        id: i.id,
        role: i.role,
        epoch: i.epoch,
        checksum: i.checksum,
        phase: o.phase ?? 'Healthy',
        health: healthOf(o.phase ?? 'Healthy'),
        restarts: 0,
        simulated: o.simulated ?? i.simulated,
        ...(o.lastError ? { lastError: o.lastError } : {}),
      }));
      const digest = {
        generation: plan?.generation ?? 0,
        checksum: plan?.checksum ?? '',
        coordinatorEpoch: engine.epoch,
        health: '0000000000000000',
        instances: instances.length,
        unhealthy: instances.filter((i) => i.health !== 'healthy').length,
      };
      engine.handleStatus({
        v: PROTOCOL_VERSION,
        type: 'status',
        nodeId,
        seq: ++seq,
        sentAt: new Date().toISOString(),
        plan: {
          generation: digest.generation,
          checksum: digest.checksum,
          coordinatorEpoch: engine.epoch,
          state: 'applied',
        },
        digest,
        instances,
      });
    },
    async close() {
      await app.close();
      await engine.close();
    },
  };
}

/** A valid topology with one custom role (no Kubernetes binaries needed), as JSON. */
export function echoTopology(replicas = 2, name = 'default'): Record<string, unknown> {
  return {
    apiVersion: 'drover.dev/v1',
    kind: 'Topology',
    metadata: { name },
    cluster: { name },
    customRoles: {
      echo: {
        command: 'node',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: the agent expands ${DROVER_ROOT}, not JS
        args: ['${DROVER_ROOT}/opt/echo.cjs', '{{node.address}}', '18080'],
        files: [
          {
            path: '/opt/echo.cjs',
            mode: '0644',
            content:
              'require("node:http").createServer((q, s) => s.end("ok")).listen(Number(process.argv[3]), process.argv[2]);\n',
          },
        ],
        health: { kind: 'http', port: 18080, path: '/healthz', period: '500ms', timeout: '400ms' },
      },
    },
    roles: { echo: { replicas } },
  };
}
