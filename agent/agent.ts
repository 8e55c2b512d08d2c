import { mkdir } from 'node:fs/promises';
import type { Logger } from 'pino';
import { type Clock, isoNow, systemClock } from '../lib/clock.js';
import { componentLogger, silentLogger } from '../lib/logger.js';
import { DROVER_VERSION } from '../lib/version.js';
import {
  type Facts,
  type InstanceStatus,
  type NodePlan,
  type NodeStatus,
  nodeInboxPrefix,
  type PlanResult,
  PROTOCOL_VERSION,
  type Register,
  type SignedPlan,
  type SignedTask,
  type StatusDigest,
  TASK_CLOCK_SKEW_MS,
  type TaskResult,
  verifyPlan,
} from '../protocol/index.js';
import { Applier, makeExpander } from './applier.js';
import { nodeBusSettings } from './bus-join.js';
import { CertManager } from './certs.js';
import { errorBody, IllegalStateError } from './errors.js';
import { type BinaryProbeOptions, collectFacts, type FactsSource, factsKey } from './facts.js';
import { defaultAdvertiseAddress, type Identity, resolveIdentity } from './identity.js';
import { KeyPin } from './keys.js';
import { LastOutputs } from './last-output.js';
import type { AgentOptions } from './options.js';
import { type AppliedRef, checkPlan } from './plan-guard.js';
import { ProbeSet } from './probe-set.js';
import { ProcessRuntime } from './runtime/process.js';
import { SystemdRuntime, type SystemdRuntimeOptions } from './runtime/systemd.js';
import type { Runtime } from './runtime/types.js';
import { SnapshotSeeder } from './seed.js';
import { Session } from './session.js';
import { buildInstanceStatus, type PlanInfo, statusDigest } from './status.js';
import { checkTask } from './task-guard.js';
import { TaskLedger } from './task-ledger.js';
import { runTask } from './tasks.js';

export type AgentState = 'created' | 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

const TRANSITIONS: Record<AgentState, readonly AgentState[]> = {
  created: ['starting', 'stopping'],
  starting: ['running', 'failed', 'stopping'],
  running: ['stopping'],
  failed: ['stopping'],
  stopping: ['stopped'],
  stopped: [],
};

/** Ports and knobs tests inject; production uses the defaults. */
export interface AgentDeps {
  logger?: Logger;
  clock?: Clock;
  /** a ready runtime instead of the one `options.runtime` names */
  runtime?: Runtime;
  factsSource?: FactsSource;
  binaries?: BinaryProbeOptions;
  /** process runtime: how often adopted pids and log sizes are checked (default 1000 ms) */
  processPollIntervalMs?: number;
  /** process runtime: the longest a crashed instance's restart is held while the plan may be stale (default 10 s) */
  restartHoldMaxMs?: number;
  /** systemd runtime overrides (systemctl path, env) */
  systemd?: Partial<SystemdRuntimeOptions>;
  /** debounce before a status change is published; default 100 ms */
  statusDebounceMs?: number;
  /** after a restart, how long to wait for a fresh plan before starting the saved one; default max(5 s, 5 heartbeats) */
  startupGraceMs?: number;
}

/**
 * The node daemon: resolves its identity, re-adopts what runs, re-applies the persisted plan, then
 * talks to the coordinator through a Session. Everything that keeps roles running is local, so NATS
 * or the coordinator going away changes nothing on the host.
 */
export class Agent {
  private opts: AgentOptions;
  private readonly deps: AgentDeps;
  private readonly clock: Clock;
  private log: Logger;
  private state_: AgentState = 'created';
  private closing: Promise<void> | undefined;
  private identity_: Identity | undefined;
  private runtime_: Runtime | undefined;
  /** the last output of failing instances, for their status (agent/last-output.ts) */
  private outputs: LastOutputs | undefined;
  private applier_: Applier | undefined;
  private keys: KeyPin;
  /** task ids seen, so a replayed task is refused (agent/task-ledger.ts) */
  private readonly ledger: TaskLedger;
  private session_: Session | undefined;
  private readonly probes: ProbeSet;
  private facts_: Facts | undefined;
  private factsKey_ = '';
  private factsTimer: unknown;
  private driftTimer: unknown;
  private graceTimer: unknown;
  private statusTimer: unknown;
  private applied: AppliedRef | undefined;
  private planInfo: PlanInfo = { generation: 0, checksum: '', coordinatorEpoch: 0, state: 'none' };
  private readonly stats = { plansApplied: 0, plansRefused: 0, tasksRun: 0, tasksRefused: 0 };
  /** cancels a join in progress when the agent closes */
  private readonly joinAbort = new AbortController();

  constructor(options: AgentOptions, deps: AgentDeps = {}) {
    this.opts = options;
    this.deps = deps;
    this.clock = deps.clock ?? systemClock;
    this.log = deps.logger ?? silentLogger;
    this.keys = new KeyPin(
      options.dataDir,
      options.coordinatorKeyFingerprint,
      this.clock,
      options.insecureTrustFirstCoordinator,
    );
    this.ledger = new TaskLedger({
      dataDir: options.dataDir,
      skewMs: TASK_CLOCK_SKEW_MS,
      clock: this.clock,
      logger: this.log,
    });
    this.probes = new ProbeSet({
      clock: this.clock,
      logger: () => this.log,
      onChange: (instance, health, err) => {
        this.log.info({ instance, health, err }, 'health changed');
        this.scheduleStatus();
      },
    });
  }

  get state(): AgentState {
    return this.state_;
  }
  get nodeId(): string {
    if (!this.identity_) throw new IllegalStateError('the agent has not started');
    return this.identity_.nodeId;
  }
  get runtime(): Runtime {
    if (!this.runtime_) throw new IllegalStateError('the agent has not started');
    return this.runtime_;
  }
  get session(): Session | undefined {
    return this.session_;
  }
  get facts(): Facts | undefined {
    return this.facts_;
  }
  get options(): AgentOptions {
    return this.opts;
  }

  private transition(to: AgentState): void {
    if (!TRANSITIONS[this.state_].includes(to)) {
      throw new IllegalStateError(`agent cannot go from ${this.state_} to ${to}`);
    }
    this.log.info({ from: this.state_, to }, 'agent state');
    this.state_ = to;
  }

  async start(): Promise<void> {
    this.transition('starting');
    try {
      await mkdir(this.opts.dataDir, { recursive: true });
      this.identity_ = await resolveIdentity(this.opts);
      this.log = this.log.child({ nodeId: this.identity_.nodeId });
      this.log.info({ source: this.identity_.source, runtime: this.opts.runtime }, 'identity resolved');
      await this.keys.load();
      await this.ledger.load();
      const runtime = this.deps.runtime ?? this.createRuntime();
      this.runtime_ = runtime;
      this.outputs = new LastOutputs(runtime, () => this.scheduleStatus(), this.log);
      runtime.onChange((id) => this.onRuntimeChange(id));
      this.applier_ = new Applier({
        runtime,
        rootDir: this.opts.rootDir,
        dataDir: this.opts.dataDir,
        logger: this.log,
        certs: new CertManager({
          rootDir: this.opts.rootDir,
          clock: this.clock,
          logger: componentLogger(this.log, 'certs'),
          transport: () => {
            const s = this.session_;
            return s?.isConnected ? (req) => s.requestCertificate(req) : undefined;
          },
        }),
        seeder: new SnapshotSeeder({
          dataDir: this.opts.dataDir,
          rootDir: this.opts.rootDir,
          expand: makeExpander(this.opts.rootDir),
          logger: componentLogger(this.log, 'seed'),
          fetch: () => {
            const s = this.session_;
            return s?.isConnected ? (req) => s.requestSnapshotChunk(req) : undefined;
          },
        }),
      });
      const persisted = await this.applier_.loadPersisted();
      const adopted = await runtime.recover();
      if (adopted.length) this.log.info({ adopted }, 're-adopted running instances');
      if (persisted) await this.resumePersisted(persisted, adopted);
      await this.refreshFacts(false);
      this.scheduleFacts();
      this.scheduleDriftCheck();
      // node credentials: configured, or `<dataDir>/bus.creds`, or got now with the join token
      const nats = await this.busSettings(false);
      this.session_ = new Session({
        nodeId: this.identity_.nodeId,
        nats,
        inboxPrefix: nodeInboxPrefix(this.identity_.nodeId),
        onAuthRefused:
          this.opts.joinToken && !this.opts.nats.credsFile ? () => this.busSettings(true) : undefined,
        heartbeatIntervalMs: this.opts.heartbeatIntervalMs,
        clock: this.clock,
        logger: this.log,
        handlers: {
          buildRegister: () => this.buildRegister(),
          onRegistered: async (reply) => {
            await this.keys.accept(reply.signingKey);
          },
          onPlan: (signed, source) => this.handlePlan(signed, source),
          onTask: (task) => this.handleTask(task),
          digest: () => this.digest(),
          status: () => this.status(),
          have: () =>
            this.applied
              ? { generation: this.applied.generation, checksum: this.applied.checksum }
              : undefined,
        },
      });
      this.session_.start();
      this.transition('running');
    } catch (err) {
      this.log.error({ err }, 'agent failed to start');
      this.transition('failed');
      throw err;
    }
  }

  /** The bus settings the session connects with (agent/bus-join.ts, `nodeBusSettings`). */
  private busSettings(rejoin: boolean): Promise<AgentOptions['nats']> {
    return nodeBusSettings({
      opts: this.opts,
      rejoin,
      log: this.log,
      facts: async () => this.facts_ ?? (await this.refreshFacts(false)),
      identity: this.identity_!,
      pin: this.keys,
      clock: this.clock,
      signal: this.joinAbort.signal,
    });
  }

  private createRuntime(): Runtime {
    if (this.opts.runtime === 'process') {
      return new ProcessRuntime({
        dataDir: this.opts.dataDir,
        clock: this.clock,
        logger: componentLogger(this.log, 'runtime'),
        logMaxBytes: this.opts.logMaxBytes,
        pollIntervalMs: this.deps.processPollIntervalMs,
        restartHold: () => this.session_?.planMayBeStale() ?? false,
        restartHoldMaxMs: this.deps.restartHoldMaxMs,
      });
    }
    return new SystemdRuntime({
      unitDir: this.opts.unitDir,
      clock: this.clock,
      logger: componentLogger(this.log, 'runtime'),
      ...this.deps.systemd,
    });
  }

  /**
   * After a restart the saved plan may be stale: while this host was dead its instances may have
   * moved elsewhere. So instances still running are re-adopted at once (nothing restarts), but
   * missing ones start only from a fresh plan — or, when the coordinator has not answered within
   * the start-up grace (it or NATS is away), from the saved plan: static stability.
   */
  private async resumePersisted(signed: SignedPlan, adopted: string[]): Promise<void> {
    const running = new Set(adopted);
    const missing = signed.plan.instances.filter((i) => !running.has(i.id)).map((i) => i.id);
    if (missing.length === 0) {
      await this.applyPersisted(signed);
      return;
    }
    const key = this.keys.key();
    if (key && running.size > 0) {
      try {
        const plan = verifyPlan(signed, key);
        await this.applier_!.apply({ ...plan, instances: plan.instances.filter((i) => running.has(i.id)) });
      } catch (err) {
        this.log.error({ err: errorBody(err) }, 'persisted plan does not verify; not adopting from it');
      }
    }
    const graceMs = this.deps.startupGraceMs ?? Math.max(5000, 5 * this.opts.heartbeatIntervalMs);
    this.log.info(
      { missing, graceMs },
      'waiting for a fresh plan before starting instances of the saved plan',
    );
    this.graceTimer = this.clock.setTimeout(() => {
      this.graceTimer = undefined;
      if (this.applied || this.state_ === 'stopping' || this.state_ === 'stopped') return;
      this.log.warn(
        { missing },
        'no plan from the coordinator within the start-up grace; starting the saved plan',
      );
      void this.applyPersisted(signed).catch((err) =>
        this.log.error({ err }, 'applying the saved plan failed'),
      );
    }, graceMs);
  }

  /** Static stability: what was applied last runs again after an agent restart, coordinator or not. */
  private async applyPersisted(signed: SignedPlan): Promise<void> {
    const key = this.keys.key();
    let plan: NodePlan = signed.plan;
    if (key) {
      try {
        plan = verifyPlan(signed, key);
      } catch (err) {
        this.log.error(
          { err: errorBody(err) },
          'persisted plan does not verify against the pinned key; not applying it',
        );
        return;
      }
    } else this.log.warn('no coordinator key is pinned; applying the persisted plan unverified');
    await this.applyVerified(signed, plan);
    this.log.info({ generation: plan.generation }, 'persisted plan re-applied');
  }

  private appliedRefFor(p: NodePlan): AppliedRef {
    return { generation: p.generation, checksum: p.checksum, coordinatorEpoch: p.coordinatorEpoch };
  }

  async handlePlan(signed: SignedPlan, source: 'push' | 'register' | 'fetch' = 'push'): Promise<PlanResult> {
    const base = {
      v: PROTOCOL_VERSION,
      type: 'plan-result' as const,
      nodeId: this.nodeId,
      generation: signed.plan.generation,
      checksum: signed.plan.checksum,
    };
    let verdict: ReturnType<typeof checkPlan>;
    try {
      verdict = checkPlan(signed, { nodeId: this.nodeId, key: this.keys.key(), applied: this.applied });
    } catch (err) {
      return { ...base, accepted: false, error: this.refuse(err, signed, source) };
    }
    if (verdict.kind === 'noop') {
      if (this.planInfo.state === 'refused')
        this.setPlanInfo({ ...this.planInfo, state: 'applied', error: undefined });
      const ids = [...(this.applier_?.instances().keys() ?? [])].sort();
      return {
        ...base,
        accepted: true,
        changes: { started: [], restarted: [], stopped: [], unchanged: ids },
      };
    }
    return this.applyVerified(signed, verdict.plan, source);
  }

  private refuse(err: unknown, signed: SignedPlan, source: string): { code: string; message: string } {
    const body = errorBody(err);
    this.stats.plansRefused++;
    this.log.warn({ err: body, generation: signed.plan.generation, source }, 'plan refused; nothing changed');
    this.setPlanInfo({ ...this.planInfo, state: 'refused', error: `${body.code}: ${body.message}` });
    return body;
  }

  private async applyVerified(signed: SignedPlan, plan: NodePlan, source = 'disk'): Promise<PlanResult> {
    const applier = this.applier_!;
    const base = {
      v: PROTOCOL_VERSION,
      type: 'plan-result' as const,
      nodeId: this.nodeId,
      generation: plan.generation,
      checksum: plan.checksum,
    };
    try {
      applier.validate(plan);
    } catch (err) {
      return { ...base, accepted: false, error: this.refuse(err, signed, source) };
    }
    const prev = this.planInfo;
    this.setPlanInfo({ ...prev, state: 'applying', error: undefined });
    const outcome = await applier.apply(plan).catch((err) => ({
      changes: { started: [], restarted: [], stopped: [], unchanged: [] },
      errors: [{ id: '*', ...errorBody(err) }],
    }));
    await applier.persist(signed).catch((err) => this.log.error({ err }, 'cannot persist the applied plan'));
    this.applied = this.appliedRefFor(plan);
    this.stats.plansApplied++;
    const firstError = outcome.errors[0];
    this.setPlanInfo({
      ...this.appliedRefFor(plan),
      state: firstError ? 'error' : 'applied',
      error: firstError ? `${firstError.id}: ${firstError.code}: ${firstError.message}` : undefined,
    });
    this.syncProbes();
    this.log.info(
      { generation: plan.generation, source, ...outcome.changes, errors: outcome.errors.length },
      'plan applied',
    );
    return {
      ...base,
      accepted: true,
      changes: outcome.changes,
      ...(firstError
        ? { error: { code: 'DROVER_ERR_APPLY_FAILED', message: `${firstError.id}: ${firstError.message}` } }
        : {}),
    };
  }

  private setPlanInfo(p: PlanInfo): void {
    const clean: PlanInfo = {
      generation: p.generation,
      checksum: p.checksum,
      coordinatorEpoch: p.coordinatorEpoch,
      state: p.state,
    };
    if (p.error) clean.error = p.error.slice(0, 1000);
    this.planInfo = clean;
    this.scheduleStatus();
  }

  /** One prober per instance with a health probe (agent/probe-set.ts). */
  private syncProbes(): void {
    const applier = this.applier_;
    if (!applier) return;
    this.probes.sync(applier.instances(), applier.expand, (id) => this.runtime_?.status(id));
  }

  private onRuntimeChange(id: string): void {
    this.outputs?.observe(id);
    this.probes.runtimeChanged(id, this.runtime_?.status(id));
    this.scheduleStatus();
  }

  private scheduleStatus(): void {
    if (this.statusTimer !== undefined || this.state_ === 'stopping' || this.state_ === 'stopped') return;
    this.statusTimer = this.clock.setTimeout(() => {
      this.statusTimer = undefined;
      this.session_?.publishStatus(false);
    }, this.deps.statusDebounceMs ?? 100);
  }

  instanceStatuses(): InstanceStatus[] {
    const applier = this.applier_;
    const runtime = this.runtime_;
    if (!applier || !runtime) return [];
    return [...applier.instances().values()].map((spec) => {
      const rs = runtime.status(spec.id);
      const held = applier.isHeld(spec.id);
      return buildInstanceStatus(
        spec,
        rs,
        this.probes.get(spec.id),
        held,
        this.outputs?.get(spec.id),
        applier.startFailure(spec.id),
      );
    });
  }

  digest(): StatusDigest {
    return statusDigest(this.planInfo, this.instanceStatuses());
  }

  status(): Omit<NodeStatus, 'seq' | 'sentAt'> {
    const instances = this.instanceStatuses();
    return {
      v: PROTOCOL_VERSION,
      type: 'status',
      nodeId: this.nodeId,
      plan: { ...this.planInfo },
      digest: statusDigest(this.planInfo, instances),
      instances,
    };
  }

  counters(): Record<string, unknown> {
    const s = this.session_?.counters;
    const malformed = s?.malformed ?? { plan: 0, task: 0, registerReply: 0, planFetchReply: 0 };
    return {
      ...this.stats,
      malformed: { ...malformed },
      malformedTotal: Object.values(malformed).reduce((a, b) => a + b, 0),
      heartbeats: s?.heartbeats ?? 0,
      statusPublished: s?.statusPublished ?? 0,
      factsPublished: s?.factsPublished ?? 0,
      registrations: s?.registrations ?? 0,
      reconnects: s?.reconnects ?? 0,
    };
  }

  /**
   * Runs a signed task once: its signature (the pinned key), node id, validity window and id
   * (never seen before, agent/task-ledger.ts) are checked first; a refused task runs nothing and
   * is answered with the reason.
   */
  async handleTask(signed: SignedTask): Promise<TaskResult> {
    let task: ReturnType<typeof checkTask>;
    try {
      task = checkTask(signed, {
        nodeId: this.nodeId,
        key: this.keys.key(),
        now: this.clock.now(),
        skewMs: TASK_CLOCK_SKEW_MS,
        appliedEpoch: this.planInfo.coordinatorEpoch || undefined,
      });
      await this.ledger.admit(task);
    } catch (err) {
      this.stats.tasksRefused++;
      const error = errorBody(err);
      this.log.warn(
        { err: error, taskId: signed.task.id, kind: signed.task.kind, for: signed.task.nodeId },
        'task refused; nothing ran',
      );
      return {
        v: PROTOCOL_VERSION,
        type: 'task-result',
        id: signed.task.id,
        nodeId: this.nodeId,
        ok: false,
        error,
        finishedAt: isoNow(this.clock),
      };
    }
    this.stats.tasksRun++;
    const r = await runTask(task, {
      nodeId: this.nodeId,
      applier: this.applier_!,
      runtime: this.runtime,
      facts: () => this.facts_,
      instanceStatus: (id) => this.instanceStatuses().find((i) => i.id === id),
      counters: () => this.counters(),
      logger: this.log,
      clock: this.clock,
    });
    this.scheduleStatus();
    return r;
  }

  private async buildRegister(): Promise<Register> {
    const facts = this.facts_ ?? (await this.refreshFacts(false));
    const id = this.identity_!;
    const pinned = this.keys.fingerprint();
    return {
      v: PROTOCOL_VERSION,
      type: 'register',
      nodeId: id.nodeId,
      hostname: facts.hostname,
      address: this.opts.advertiseAddress ?? defaultAdvertiseAddress(),
      labels: { ...this.opts.labels },
      facts,
      fingerprint: id.fingerprint,
      agentVersion: DROVER_VERSION,
      ...(pinned ? { pinnedKeyFingerprint: pinned } : {}),
      ...(this.applied ? { applied: { ...this.applied } } : {}),
    };
  }

  /** Collects facts; publishes them when they changed (and `publish` is set). */
  async refreshFacts(publish = true): Promise<Facts> {
    const collected = await collectFacts({
      machineId: this.identity_?.fingerprint.machineId ?? '',
      source: this.deps.factsSource,
      binaries: this.deps.binaries,
      logger: this.log,
    });
    const facts = this.opts.hostname ? { ...collected, hostname: this.opts.hostname } : collected;
    const key = factsKey(facts);
    const changed = key !== this.factsKey_;
    this.facts_ = facts;
    this.factsKey_ = key;
    if (changed && publish) this.session_?.publishFacts(facts);
    return facts;
  }

  /** Periodically puts role files that were changed behind the agent's back right again. */
  private scheduleDriftCheck(): void {
    this.clock.clearTimeout(this.driftTimer);
    this.driftTimer = this.clock.setTimeout(() => {
      (this.applier_?.repairDrift() ?? Promise.resolve([]))
        .then((ids) => {
          if (ids.length) this.scheduleStatus();
        })
        .catch((err) => this.log.warn({ err }, 'file drift check failed'))
        .finally(() => {
          if (this.state_ === 'running' || this.state_ === 'starting') this.scheduleDriftCheck();
        });
    }, this.opts.driftCheckIntervalMs);
  }

  private scheduleFacts(): void {
    this.clock.clearTimeout(this.factsTimer);
    this.factsTimer = this.clock.setTimeout(() => {
      this.refreshFacts(true)
        .catch((err) => this.log.warn({ err }, 'facts refresh failed'))
        .finally(() => {
          if (this.state_ === 'running') this.scheduleFacts();
        });
    }, this.opts.factsIntervalMs);
  }

  /** SIGHUP: takes the options that can change live, and refreshes facts. Others need a restart. */
  async reload(next: AgentOptions): Promise<string[]> {
    const needRestart: string[] = [];
    const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
    for (const k of [
      'nodeId',
      'nats',
      'dataDir',
      'rootDir',
      'runtime',
      'unitDir',
      'coordinatorKeyFingerprint',
      'insecureTrustFirstCoordinator',
    ] as const) {
      if (!same(this.opts[k], next[k])) needRestart.push(k);
    }
    const labelsChanged =
      !same(this.opts.labels, next.labels) || this.opts.advertiseAddress !== next.advertiseAddress;
    this.opts = {
      ...this.opts,
      labels: next.labels,
      advertiseAddress: next.advertiseAddress,
      joinToken: next.joinToken,
      heartbeatIntervalMs: next.heartbeatIntervalMs,
      factsIntervalMs: next.factsIntervalMs,
      stopRolesOnExit: next.stopRolesOnExit,
      logLevel: next.logLevel,
    };
    this.log.level = next.logLevel;
    this.session_?.setHeartbeatInterval(next.heartbeatIntervalMs);
    if (needRestart.length)
      this.log.warn({ options: needRestart }, 'these options change only after a restart');
    await this.refreshFacts(true);
    this.scheduleFacts();
    if (labelsChanged) this.session_?.reregister();
    this.log.info('configuration reloaded');
    return needRestart;
  }

  /** Stops the agent. Roles keep running unless `stopRolesOnExit`. Idempotent; every step runs even if one fails. */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    if (this.state_ === 'stopped') return;
    this.transition('stopping');
    const step = async (what: string, fn: () => unknown) => {
      try {
        await fn();
      } catch (err) {
        this.log.error({ err, step: what }, 'shutdown step failed');
      }
    };
    this.joinAbort.abort();
    await step('session', () => this.session_?.close());
    await step('timers', () => {
      this.clock.clearTimeout(this.factsTimer);
      this.clock.clearTimeout(this.driftTimer);
      this.clock.clearTimeout(this.graceTimer);
      this.clock.clearTimeout(this.statusTimer);
      this.outputs?.close();
    });
    await step('probes', () => this.probes.stopAll());
    if (this.opts.stopRolesOnExit) await step('stop roles', () => this.runtime_?.stopAll());
    await step('runtime', () => this.runtime_?.close());
    this.transition('stopped');
  }
}
