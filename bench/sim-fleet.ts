// Simulated agents for the coordinator benchmarks, and the coordinator process they talk to.
//
// A simulated agent speaks the real protocol (register, heartbeat with digest, plan pushes
// answered with a PlanResult and a full status) and runs nothing. On the secure bus each one
// connects AS ITS NODE: its own node user JWT (minted in memory with `BusAuth.nodeUser`, as a join
// would issue it; no creds files), the bus CA, its own inbox prefix. A node user may publish only
// its own subjects and subscribe only to its own plan/task/inbox subjects, so sims cannot share a
// connection as they once did (250 per connection): every sim has ONE CONNECTION OF ITS OWN, as a
// real agent does — 5,000 sims are 5,000 TLS connections (sockets here and in nats-server).
// Their node users are minted ahead on every core (bench/mint-worker.ts) and their nonces signed
// with node:crypto (bench/lib.ts nodeKey): nkeys' pure-JS signatures would take minutes.
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Authenticator, connect, type Msg, type NatsConnection } from 'nats';
import { encode, type NodePlan, nodeInboxPrefix, PROTOCOL_VERSION, subjects } from '../protocol/index.js';
import { sampleFacts } from '../test/helpers/fixtures.js';
import { simulatedStatus } from '../test/helpers/sim-agent.js';
import { freePort, waitUntil } from './lib.js';

/** Where the sims connect: a plain bus has no `nodeAuth` and no `caFile`. */
export interface SimBus {
  url: string;
  caFile?: string;
  nodeAuth?: (nodeId: string) => Promise<Authenticator>;
  /** mints the node users ahead, in bulk */
  prepareNodes?: (nodeIds: readonly string[]) => Promise<void>;
}

export interface Sim {
  id: string;
  nc: NatsConnection;
  generation: number;
  checksum: string;
  epoch: number;
  /** `<BENCH_RUN env>/<config file content>` of the last plan, '' before any */
  version: string;
  seq: number;
  /** when this sim last received a plan with a new version */
  appliedAt?: number;
}

const td = new TextDecoder();

/** A real agent's answer to a plan push: accepted, then a full status (every instance Healthy). */
function onPlan(sim: Sim, m: Msg): void {
  const signed = JSON.parse(td.decode(m.data)) as { plan: NodePlan };
  const p = signed.plan;
  sim.generation = p.generation;
  sim.checksum = p.checksum;
  sim.epoch = p.coordinatorEpoch;
  const i0 = p.instances[0];
  const v = i0 ? `${i0.run.env.BENCH_RUN}/${i0.files[0]?.content}` : '';
  if (v !== sim.version) sim.appliedAt = performance.now();
  sim.version = v;
  m.respond(
    encode({
      v: PROTOCOL_VERSION,
      type: 'plan-result',
      nodeId: sim.id,
      generation: p.generation,
      checksum: p.checksum,
      accepted: true,
    }),
  );
  sim.nc.publish(subjects.status(sim.id), encode(simulatedStatus(sim.id, ++sim.seq, p)));
}

/** Runs `fn` over `items` with at most `width` in flight. */
async function pool<T>(items: readonly T[], width: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

export const simId = (i: number) => `sim-${String(i).padStart(5, '0')}`;

/** Connects `n` sims, one connection each (see the top of this file), subscribed to their plans. */
export async function connectSims(bus: SimBus, n: number): Promise<Sim[]> {
  const sims: Sim[] = Array.from({ length: n }, (_, i) => ({
    id: simId(i),
    nc: undefined as unknown as NatsConnection,
    generation: 0,
    checksum: '',
    epoch: 0,
    version: '',
    seq: 0,
  }));
  await bus.prepareNodes?.(sims.map((s) => s.id));
  await pool(sims, 32, async (sim) => {
    sim.nc = await connect({
      servers: bus.url,
      name: `bench-${sim.id}`,
      inboxPrefix: nodeInboxPrefix(sim.id),
      ...(bus.nodeAuth ? { authenticator: await bus.nodeAuth(sim.id) } : {}),
      ...(bus.caFile ? { tls: { caFile: bus.caFile } } : {}),
      // the default reconnect would hide a refused connection behind retries
      maxReconnectAttempts: 0,
    });
    sim.nc.subscribe(subjects.plan(sim.id), { callback: (_e, m) => onPlan(sim, m) });
  });
  await Promise.all(sims.map((s) => s.nc.flush()));
  return sims;
}

export async function closeSims(sims: readonly Sim[]): Promise<void> {
  await Promise.all(sims.filter((s) => s.nc && !s.nc.isClosed()).map((s) => s.nc.close().catch(() => {})));
}

/**
 * Registers every sim (64 requests in flight). Returns the time from the first register request
 * sent to the last accepted reply, in ms. A refused registration throws.
 */
export async function registerAll(sims: readonly Sim[], width = 64): Promise<number> {
  const facts = sampleFacts();
  const t0 = performance.now();
  let last = t0;
  await pool(sims, width, async (s) => {
    const i = Number(s.id.slice(4));
    const reg = {
      v: PROTOCOL_VERSION,
      type: 'register',
      nodeId: s.id,
      hostname: s.id,
      address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
      labels: { pool: 'worker', 'drover.dev/cluster': 'bench' },
      facts: { ...facts, hostname: s.id, machineId: s.id },
      fingerprint: { machineId: s.id, macs: [] },
      agentVersion: 'bench',
    };
    const r = await s.nc.request(subjects.register(s.id), encode(reg), { timeout: 60_000 });
    const reply = JSON.parse(td.decode(r.data)) as { accepted?: boolean };
    if (!reply.accepted) throw new Error(`register of ${s.id} refused: ${JSON.stringify(reply)}`);
    last = performance.now();
  });
  return last - t0;
}

/** Heartbeats from every sim at `intervalMs`, spread evenly (a tenth of the fleet every tenth). */
export function startHeartbeats(sims: readonly Sim[], intervalMs: number): { sent(): number; stop(): void } {
  let sent = 0;
  let cursor = 0;
  const slice = Math.ceil(sims.length / 10);
  const timer = setInterval(() => {
    const start = cursor;
    cursor = (cursor + slice) % sims.length;
    for (const s of sims.slice(start, start + slice)) {
      s.nc.publish(
        subjects.heartbeat(s.id),
        encode({
          v: PROTOCOL_VERSION,
          type: 'heartbeat',
          nodeId: s.id,
          seq: ++s.seq,
          sentAt: new Date().toISOString(),
          digest: {
            generation: s.generation,
            checksum: s.checksum,
            coordinatorEpoch: s.epoch,
            health: '0000000000000000',
            instances: s.version ? 1 : 0,
            unhealthy: 0,
          },
        }),
      );
      sent++;
    }
  }, intervalMs / 10);
  return { sent: () => sent, stop: () => clearInterval(timer) };
}

export interface CoordinatorProcess {
  child: ChildProcess;
  pid: number;
  api: string;
  /** the admin token (`<dataDir>/admin-token`) */
  token: string;
  dir: string;
  /** a CPU sample a bench keeps with it */
  cpuBefore?: { rssKb: number; ticks: number };
  stop(): Promise<void>;
}

/**
 * The bundled drover-coordinator (dist/drover-coordinator.mjs) as a CHILD PROCESS, so its CPU and
 * RSS are its own (/proc/<pid>), apart from the simulated fleet in this process.
 * - secure bus: `busDir` is the dir nats-server's config was prepared from; the coordinator
 *   connects with its creds there and verifies the server against its CA;
 * - plain bus: no `busDir` (its keys are made in <dataDir>/bus and its creds offered to a server
 *   that checks none) and `--bus-tls false`.
 * The registration limiter (default 20/s) is lifted: these benches measure what the coordinator
 * can take, not the limiter.
 */
export async function startCoordinatorProcess(o: {
  natsUrl: string;
  busDir?: string;
  heartbeatMs: number;
  nodeArgs?: string[];
  /** more coordinator flags (coordinator HA: --store-backend jetstream --ha-enabled true …) */
  extraArgs?: string[];
  /** a coordinator data dir whose seed material (signing key, PKI, tokens) this one copies first */
  seedFrom?: string;
}): Promise<CoordinatorProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'drover-bench-coord-'));
  if (o.seedFrom)
    for (const f of ['plan-signing-key.pem', 'pki', 'tokens.json', 'admin-token'])
      if (existsSync(join(o.seedFrom, f))) cpSync(join(o.seedFrom, f), join(dir, f), { recursive: true });
  const apiPort = await freePort();
  const child = spawn(
    process.execPath,
    [
      ...(o.nodeArgs ?? []),
      'dist/drover-coordinator.mjs',
      '--data-dir',
      dir,
      '--nats-servers',
      o.natsUrl,
      ...(o.busDir ? ['--bus-dir', o.busDir] : ['--bus-tls', 'false']),
      '--api-listen',
      `127.0.0.1:${apiPort}`,
      '--heartbeat-interval',
      `${o.heartbeatMs}ms`,
      '--registration-rate',
      '1000000',
      '--registration-burst',
      '1000000',
      '--log-level',
      'warn',
      ...(o.extraArgs ?? []),
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const api = `http://127.0.0.1:${apiPort}`;
  const stop = async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitUntil(
      'coordinator API',
      async () => {
        if (child.exitCode !== null) throw new Error(`drover-coordinator exited with ${child.exitCode}`);
        return (await fetch(`${api}/readyz`).catch(() => undefined))?.ok === true;
      },
      20_000,
      100,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  const token = readFileSync(join(dir, 'admin-token'), 'utf8').trim();
  return { child, pid: child.pid!, api, token, dir, stop };
}

/** A counter or gauge from the coordinator's /metrics (summed over labels: the first line). */
export async function metric(c: CoordinatorProcess, name: string): Promise<number | undefined> {
  const r = await fetch(`${c.api}/metrics`, { headers: { authorization: `Bearer ${c.token}` } }).catch(
    () => undefined,
  );
  if (!r?.ok) return undefined;
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)$`, 'm').exec(await r.text());
  return m ? Number(m[1]) : undefined;
}
