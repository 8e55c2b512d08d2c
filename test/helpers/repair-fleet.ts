import { Engine, type EngineOptions, type RepairHooks } from '../../coordinator/engine.js';
import type { EtcdAdminFactory } from '../../coordinator/etcd/admin.js';
import { DEFAULT_REPAIR_OPTIONS } from '../../coordinator/options.js';
import { RepairPolicy, type RepairPorts, repairPortsFrom } from '../../coordinator/repair.js';
import { MemoryStore } from '../../coordinator/store/index.js';
import { parseTopology } from '../../coordinator/topology/index.js';
import { ManualClock } from '../../lib/clock.js';
import { componentLogger, type Logger, silentLogger } from '../../lib/logger.js';
import { generateSigningKey, PROTOCOL_VERSION } from '../../protocol/index.js';
import { RecordingBus, TEST_TIMINGS } from './api.js';
import { sampleFacts } from './fixtures.js';

export interface RepairFleetOptions {
  /** how many nodes register: n1, n2, … */
  nodes: number;
  /** the address of the i-th node (0-based) */
  address: (i: number) => string;
  /** topology YAML, applied once every node has registered */
  topology: string;
  /** the topology's file name in parse errors; default t.yaml */
  source?: string;
  /** the root logger: the engine logs as component `engine`, the repair policy as `repair`; default silent */
  logger?: Logger;
  /** the repair policy's etcd admin client; default the v3 JSON gateway */
  etcdAdmin?: EtcdAdminFactory;
  /** how the membership client reaches etcd (https with a client certificate); default plain http */
  etcdTransport?: RepairPorts['etcdTransport'];
  /** the engine's render options (a cluster PKI: plans list certificates, etcd runs TLS) */
  renderOptions?: EngineOptions['renderOptions'];
}

/**
 * A real Engine over a MemoryStore with a recording bus and the default repair policy, all on an
 * injected clock (starting at 1 000 000 ms), with `nodes` approved nodes registered and the
 * topology applied. The test plays the agents: `beat()` makes every node in `alive` report its
 * planned instances Healthy; `advance()` moves time in 500 ms heartbeat steps.
 */
export async function repairFleet(o: RepairFleetOptions) {
  const clock = new ManualClock(1_000_000);
  const store = new MemoryStore();
  const bus = new RecordingBus();
  const root = o.logger ?? silentLogger;
  const engine = manualEngine(clock, {
    store,
    logger: componentLogger(root, 'engine'),
    ...(o.renderOptions ? { renderOptions: o.renderOptions } : {}),
    repair: (e) =>
      new RepairPolicy(
        repairPortsFrom(e, {
          clock,
          log: componentLogger(root, 'repair'),
          etcdAdmin: o.etcdAdmin,
          ...(o.etcdTransport ? { etcdTransport: o.etcdTransport } : {}),
        }),
        { ...DEFAULT_REPAIR_OPTIONS },
      ),
  });
  const repair = engine.repair!;
  engine.attachBus(bus);
  await engine.start();
  const topology = parseTopology(o.topology, o.source ?? 't.yaml');
  const cluster = topology.metadata.name;
  /** registers an approved node named `id` (its hostname and machine id too), in the topology's cluster */
  const register = (id: string, address: string) =>
    registerNode(engine, id, address, { 'drover.dev/cluster': cluster });
  const ids = Array.from({ length: o.nodes }, (_, i) => `n${i + 1}`);
  for (const [i, id] of ids.entries()) await register(id, o.address(i));
  await engine.applyTopology(topology);
  await engine.queue.idle();
  const alive = new Set(ids);
  /** every live node reports its planned instances Healthy (a heartbeat with status) */
  const beat = () => {
    for (const id of alive) {
      const plan = engine.desiredPlan(id);
      const digest = {
        generation: plan?.generation ?? 0,
        checksum: plan?.checksum ?? '',
        coordinatorEpoch: engine.epoch,
        health: 'x',
        instances: plan?.instances.length ?? 0,
        unhealthy: 0,
      };
      engine.handleStatus({
        v: PROTOCOL_VERSION,
        type: 'status',
        nodeId: id,
        seq: 0,
        sentAt: 'now',
        plan: { ...digest, state: 'applied' },
        digest,
        instances: (plan?.instances ?? []).map((i) => ({
          id: i.id,
          role: i.role,
          epoch: i.epoch,
          checksum: i.checksum,
          phase: 'Healthy' as const,
          health: 'healthy' as const,
          restarts: 0,
          simulated: false,
        })),
      });
    }
  };
  /** advances time in heartbeat steps, letting queued reconciles run */
  const advance = async (ms: number) => {
    for (let t = 0; t < ms; t += 500) {
      beat();
      clock.advance(500);
      await engine.queue.idle();
    }
  };
  const assignment = (inst: string) => engine.currentAssignments(cluster).find((a) => a.instanceId === inst);
  const where = (inst: string) => assignment(inst)?.nodeId;
  const kinds = () => engine.events.list().map((e) => e.kind);
  const events = (kind: string) => engine.events.list().filter((e) => e.kind === kind);
  return {
    engine,
    repair,
    store,
    bus,
    clock,
    ids,
    alive,
    register,
    beat,
    advance,
    assignment,
    where,
    kinds,
    events,
  };
}

/** `repairFleet` after a first round of Healthy reports has been processed. */
export async function beatenRepairFleet(o: RepairFleetOptions) {
  const f = await repairFleet(o);
  f.beat();
  await f.engine.queue.idle();
  return f;
}

/** A real Engine over a MemoryStore on `clock` with the test timings and join token `j` (not started). */
export function manualEngine<R extends RepairHooks = RepairHooks>(
  clock: ManualClock,
  extra: Partial<EngineOptions<R>> = {},
): Engine<R> {
  return new Engine<R>({
    store: new MemoryStore(),
    logger: silentLogger,
    signingKey: generateSigningKey(),
    timings: TEST_TIMINGS,
    clock,
    ...extra,
  });
}

/** Registers an approved node named `id` (its hostname and machine id too) with `labels`. */
export function registerNode(engine: Engine, id: string, address: string, labels: Record<string, string>) {
  return engine.handleRegister({
    v: PROTOCOL_VERSION,
    type: 'register',
    nodeId: id,
    hostname: id,
    address,
    labels,
    facts: sampleFacts({ hostname: id, machineId: id }),
    fingerprint: { machineId: id, macs: [] },
    agentVersion: 't',
  });
}

export { webTopology } from './topologies.js';
