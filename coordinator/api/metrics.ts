import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { INSTANCE_PHASES, NODE_STATES } from '../../protocol/index.js';
import type { Engine } from '../engine.js';

export type RepairResult = 'started' | 'succeeded' | 'failed' | 'skipped' | 'paused';

/**
 * The coordinator's Prometheus metrics on a private registry (so tests and several coordinators
 * in one process never collide on the global one). Counters are fed by the engine's callbacks;
 * gauges are computed from the engine at scrape time, so they can never drift from the truth.
 */
/** The bus's running totals since the coordinator started. */
export interface BusCounters {
  heartbeats: number;
  malformed: number;
}

export interface CoordinatorMetrics {
  readonly registry: Registry;
  /** pass as EngineOptions.onReconcile */
  onReconcile(kind: 'cluster' | 'node', outcome: string, ms: number): void;
  /** pass as EngineOptions.onPush */
  onPush(ok: boolean): void;
  /** the repair policy counts each step: `metrics.repairs.inc({ result: 'succeeded' })` */
  readonly repairs: Counter<'result'>;
  readonly authFailures: Counter<'reason'>;
  /** wrong secrets presented for a known token id, by that id (ids are few: one per API token) */
  readonly tokenAuthFailures: Counter<'token_id'>;
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  /** lets the gauges read nodes and instances from the engine, and NATS status */
  observe(source: MetricsSource): void;
  contentType: string;
  render(): Promise<string>;
}

export interface MetricsSource {
  engine: Pick<Engine, 'nodes' | 'converged' | 'clusterNames' | 'unplacedFor' | 'events'>;
  natsConnected?: () => boolean;
  /** messages received from agents, by kind, and malformed ones dropped */
  busCounters?: () => BusCounters;
  /** issued leaves and the CAs, with their expiry (coordinator/pki/cert-book.ts) */
  certificates?: () => ReadonlyArray<{
    kind: string;
    cluster: string;
    node: string;
    instance: string;
    profile: string;
    notAfter: string;
  }>;
}

export interface MetricsOptions {
  /** also export process metrics (CPU, memory, event loop lag) as `drover_coordinator_process_*`; default false */
  processMetrics?: boolean;
}

export function createMetrics(opts: MetricsOptions = {}): CoordinatorMetrics {
  const registry = new Registry();
  let source: MetricsSource | undefined;
  if (opts.processMetrics) collectDefaultMetrics({ register: registry, prefix: 'drover_coordinator_' });

  const reconciles = new Counter({
    name: 'drover_reconcile_total',
    help: 'Reconciles by kind (cluster placement+render, node plan push) and outcome',
    labelNames: ['kind', 'outcome'] as const,
    registers: [registry],
  });
  const reconcileSeconds = new Histogram({
    name: 'drover_reconcile_duration_seconds',
    help: 'Reconcile latency by kind',
    labelNames: ['kind'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const pushes = new Counter({
    name: 'drover_plan_pushes_total',
    help: 'Plan pushes to agents by result (ok: accepted, failed: refused or no answer)',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  const repairs = new Counter({
    name: 'drover_repairs_total',
    help: 'Repair actions by result',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  const authFailures = new Counter({
    name: 'drover_api_auth_failures_total',
    help: 'Refused API authentications by reason (missing, invalid, wrong-secret, rate-limited)',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const tokenAuthFailures = new Counter({
    name: 'drover_api_token_auth_failures_total',
    help: 'Wrong secrets presented for a known API token id, by that id (the sender address is what gets blocked)',
    labelNames: ['token_id'] as const,
    registers: [registry],
  });
  const httpRequests = new Counter({
    name: 'drover_api_requests_total',
    help: 'API requests by method, route pattern and status code',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'drover_nodes',
    help: 'Nodes by effective lifecycle state',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      if (!source) return;
      const counts = new Map<string, number>(NODE_STATES.map((s) => [s, 0]));
      const reg = source.engine.nodes;
      for (const n of reg.all()) {
        const s = reg.effectiveState(n);
        counts.set(s, (counts.get(s) ?? 0) + 1);
      }
      for (const [state, v] of counts) this.set({ state }, v);
    },
  });
  new Gauge({
    name: 'drover_instances',
    help: 'Role instances reported by agents, by phase and whether they are simulated stand-ins',
    labelNames: ['phase', 'simulated'] as const,
    registers: [registry],
    collect() {
      if (!source) return;
      this.reset();
      for (const p of INSTANCE_PHASES) this.set({ phase: p, simulated: 'false' }, 0);
      const reg = source.engine.nodes;
      for (const n of reg.all()) {
        for (const i of reg.liveness(n.id)?.status?.instances ?? [])
          this.inc({ phase: i.phase, simulated: String(i.simulated) });
      }
    },
  });
  new Gauge({
    name: 'drover_unplaced_instances',
    help: 'Role instances placement could not put on any node, by cluster',
    labelNames: ['cluster'] as const,
    registers: [registry],
    collect() {
      if (!source) return;
      this.reset();
      for (const c of source.engine.clusterNames())
        this.set({ cluster: c }, source.engine.unplacedFor(c).length);
    },
  });
  new Gauge({
    name: 'drover_converged',
    help: '1 when every reachable node has applied its desired plan',
    registers: [registry],
    collect() {
      if (source) this.set(source.engine.converged() ? 1 : 0);
    },
  });
  new Gauge({
    name: 'drover_nats_connected',
    help: '1 while the coordinator is connected to NATS',
    registers: [registry],
    collect() {
      this.set(source?.natsConnected?.() ? 1 : 0);
    },
  });
  // the bus keeps running totals: each scrape copies them into a counter
  const busCounter = (name: string, help: string, pick: (c: BusCounters) => number) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        const c = source?.busCounters?.();
        if (!c) return;
        this.reset();
        this.inc(pick(c));
      },
    });
  busCounter('drover_heartbeats_total', 'Heartbeats received from agents', (c) => c.heartbeats);
  busCounter(
    'drover_malformed_messages_total',
    'Messages from agents dropped because they failed schema validation',
    (c) => c.malformed,
  );
  new Gauge({
    name: 'drover_certificate_expiry_seconds',
    help: 'Seconds until each certificate expires (negative: expired): the newest leaf issued per cluster, node, instance and profile, and each CA (profile ca:<name>)',
    labelNames: ['cluster', 'node', 'profile', 'instance'] as const,
    registers: [registry],
    collect() {
      const rows = source?.certificates?.();
      if (!rows) return;
      this.reset();
      const now = Date.now();
      for (const r of rows)
        this.set(
          { cluster: r.cluster, node: r.node, profile: r.profile, instance: r.instance },
          Math.round((Date.parse(r.notAfter) - now) / 1000),
        );
    },
  });
  new Gauge({
    name: 'drover_events_last_seq',
    help: 'Sequence number of the newest event',
    registers: [registry],
    collect() {
      if (source) this.set(source.engine.events.lastSeq);
    },
  });

  return {
    registry,
    repairs,
    authFailures,
    tokenAuthFailures,
    httpRequests,
    onReconcile(kind, outcome, ms) {
      reconciles.inc({ kind, outcome });
      reconcileSeconds.observe({ kind }, ms / 1000);
    },
    onPush(ok) {
      pushes.inc({ result: ok ? 'ok' : 'failed' });
    },
    observe(s) {
      source = s;
    },
    contentType: registry.contentType,
    render: () => registry.metrics(),
  };
}
