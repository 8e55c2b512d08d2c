import { type ChildProcess, execFile, spawn } from 'node:child_process';
import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { join } from 'node:path';
import type { NatsConnection } from 'nats';
import { compileCoordinatorOptions } from '../../coordinator/config.js';
import { type CoordinatorHandle, startCoordinator } from '../../coordinator/daemon.js';
import { type RoleProcess, roleProcesses } from '../../lab/collect.js';
import { allProcs, freezeAndKill, type ProcInfo, signalAll, withDescendants } from '../../lab/procs.js';
import { createLogger } from '../../lib/logger.js';
import type { Event } from '../../protocol/index.js';
import { etcdctlTlsFlags } from './etcd-tls.js';
import { LbClient } from './lab-client.js';
import { type NatsHandle, startNats } from './servers.js';
import { freePort, tempDir, waitFor } from './wait.js';

export { waitFor };

/**
 * The repair fleet's topology: haproxy and a single etcd on the `lb` node, three API servers on
 * the `control-plane` pool (four nodes there leave one spare). Used by the repair tests and bench.
 */
export const repairTopology = (name: string) => `apiVersion: drover.dev/v1
kind: Topology
metadata: { name: ${name} }
cluster:
  name: ${name}
  apiEndpoint: { mode: haproxy, port: 6443 }
roles:
  load-balancer: { replicas: 1, nodeSelector: { pool: lb } }
  etcd: { replicas: 1, nodeSelector: { pool: lb } }
  kube-apiserver: { replicas: 3, nodeSelector: { pool: control-plane } }
`;

/** Fleet nodes `ids`, all in `pool`. */
export const poolNodes = (pool: string, ...ids: string[]): FleetOptions['nodes'] =>
  ids.map((id) => ({ id, pool }));

/** The repair fleet's nodes (see repairTopology): `lb`, and cp-1 … cp-4 in the control-plane pool. */
export const repairNodes = (): FleetOptions['nodes'] => [
  ...poolNodes('lb', 'lb'),
  ...poolNodes('control-plane', 'cp-1', 'cp-2', 'cp-3', 'cp-4'),
];

/**
 * A fleet of real processes on one machine, for repair tests: a real nats-server, a coordinator
 * (in this process through `startCoordinator`, or as a `drover-coordinator` child process that can
 * be SIGKILLed and restarted on the same data dir), and one `drover-agent` process per node on its
 * own loopback address `<subnet>.N` (N = 2, 3, …) and its own hostname (a UTS namespace, so two
 * agents never look like one wiped host). Agents use the process runtime; their role processes
 * run detached, with pidfiles under `<dataDir>/run/`.
 *
 * Fault injection: `kill(node)` freezes then SIGKILLs the agent and every role process of the node
 * (a host losing power); `revive(node)` starts the agent again on the same dirs; `pause`/`resume`
 * SIGSTOP/SIGCONT the agent alone (a network blip: the roles keep serving). Everything is cleaned
 * up by `close()` (`test/helpers/fleet.ts` registers it with the test; benches call it).
 *
 * This module does not import vitest, so benchmarks can use it too.
 *
 * Each test file must use its own `subnet`: role ports are fixed per address (etcd 2379/2380,
 * the API server and load balancer 6443), and test files run in parallel.
 */

export const DIST = new URL('../../dist/', import.meta.url).pathname;

export interface FleetTimings {
  heartbeatInterval: string;
  unreachableAfter: string;
  reassignAfter: string;
  etcdReassignAfter: string;
  stormThreshold: number;
}

export const FAST_TIMINGS: FleetTimings = {
  heartbeatInterval: '500ms',
  unreachableAfter: '2s',
  reassignAfter: '2s',
  etcdReassignAfter: '3s',
  stormThreshold: 0.4,
};

export interface FleetOptions {
  /** the first three octets, e.g. `127.0.71`; nodes get .2, .3, … in order */
  subnet: string;
  nodes: Array<{ id: string; pool: string }>;
  /** every agent is labelled `drover.dev/cluster=<cluster>`: a node joins a topology's cluster only explicitly */
  cluster?: string;
  timings?: Partial<FleetTimings>;
  /** `child` runs `node dist/drover-coordinator.mjs` (killable); default in-process */
  coordinator?: 'in-process' | 'child';
  /** the coordinator's store: the lowdb file (default) or a JetStream bucket on the fleet's nats-server */
  store?: 'lowdb' | 'jetstream';
  logLevel?: string;
  /** more coordinator flags, e.g. `{ 'pki-leaf-lifetime': '150s' }` */
  coordinatorFlags?: Record<string, string>;
}

export interface FleetNode {
  id: string;
  pool: string;
  address: string;
  dir: string;
  dataDir: string;
  rootDir: string;
  log: string;
  state: 'running' | 'paused' | 'killed';
  proc?: ChildProcess;
}

export interface AssignmentView {
  instanceId: string;
  role: string;
  nodeId: string;
  epoch: number;
  ordinal: number;
  previousNodeId?: string;
  phase: string;
  health: string;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class Fleet {
  readonly events: Event[] = [];
  readonly nodes = new Map<string, FleetNode>();
  coordinator?: CoordinatorHandle;
  private coordProc?: ChildProcess;
  private coordPaused = false;
  private apiUrl = '';
  private token = '';
  private apiPort = 0;
  private nc?: NatsConnection;
  private readonly clients: LbClient[] = [];
  private closing?: Promise<void>;

  private constructor(
    readonly opts: FleetOptions,
    readonly timings: FleetTimings,
    readonly dir: string,
    readonly nats: NatsHandle,
  ) {}

  get coordinatorDataDir(): string {
    return join(this.dir, 'coordinator');
  }

  /** Starts the fleet; `onCleanup` registers `close()` (a test's autoCleanup). */
  static async start(opts: FleetOptions, onCleanup?: (fn: () => Promise<void>) => void): Promise<Fleet> {
    requireBinary('unshare');
    // the bus runs Drover's generated auth and TLS; the coordinator shares its keys (bus.dir)
    const nats = await startNats({ jetstream: opts.store === 'jetstream' });
    const f = new Fleet(opts, { ...FAST_TIMINGS, ...opts.timings }, tempDir('fleet'), nats);
    if (onCleanup) onCleanup(() => f.close());
    else process.once('exit', () => f.killAllSync());
    f.nc = await nats.connectAs({ coordinator: true }, { name: 'fleet-events' });
    const sub = f.nc.subscribe('drover.v1.events.>');
    void (async () => {
      for await (const m of sub) {
        try {
          f.events.push(JSON.parse(new TextDecoder().decode(m.data)) as Event);
        } catch {}
      }
    })();
    await f.startCoordinator();
    opts.nodes.forEach((n, i) => {
      const dir = join(f.dir, n.id);
      const node: FleetNode = {
        id: n.id,
        pool: n.pool,
        address: `${opts.subnet}.${i + 2}`,
        dir,
        dataDir: join(dir, 'data'),
        rootDir: join(dir, 'root'),
        log: join(dir, 'agent.log'),
        state: 'killed',
      };
      mkdirSync(node.rootDir, { recursive: true });
      f.nodes.set(n.id, node);
    });
    // each host joins for real: its own single-use token, the coordinator key pinned
    for (const n of f.nodes.values()) f.spawnAgent(n, await f.joinToken(n.id));
    await waitFor(
      `${f.nodes.size} nodes Ready`,
      async () => {
        const nodes = (await f.api<{ items: Array<{ id: string; state: string }> }>('GET', '/v1/nodes'))
          .items;
        return nodes.filter((x) => x.state === 'Ready').length === f.nodes.size;
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    return f;
  }

  // ------------------------------------------------------------------ coordinator

  private coordinatorFlags(): Record<string, string> {
    const t = this.timings;
    return {
      'data-dir': this.coordinatorDataDir,
      'nats-servers': this.nats.url,
      'bus-dir': this.nats.bus.auth.dir,
      'api-listen': `127.0.0.1:${this.apiPort}`,
      'heartbeat-interval': t.heartbeatInterval,
      'unreachable-after': t.unreachableAfter,
      'reassign-after': t.reassignAfter,
      'etcd-reassign-after': t.etcdReassignAfter,
      'storm-threshold': String(t.stormThreshold),
      'standin-command': `${process.execPath},${join(DIST, 'drover-standin.mjs')}`,
      'log-level': this.opts.logLevel ?? 'info',
      ...(this.opts.store === 'jetstream' ? { 'store-backend': 'jetstream' } : {}),
      ...(this.opts.coordinatorFlags ?? {}),
    };
  }

  /** Starts the coordinator (again, on the same data dir and API port after `killCoordinator`). */
  async startCoordinator(): Promise<void> {
    mkdirSync(this.coordinatorDataDir, { recursive: true });
    if (!this.apiPort) this.apiPort = await freePort();
    const log = join(this.dir, 'coordinator.log');
    if (this.opts.coordinator === 'child') {
      const args = Object.entries(this.coordinatorFlags()).flatMap(([k, v]) => [`--${k}`, v]);
      const fd = openSync(log, 'a');
      this.coordProc = spawn(
        process.execPath,
        [join(DIST, 'drover-coordinator.mjs'), '--config', '/dev/null', ...args],
        {
          stdio: ['ignore', fd, fd],
          env: { ...process.env, DROVER_LOG_LEVEL: this.opts.logLevel ?? 'info' },
        },
      );
      closeSync(fd);
      const p = this.coordProc;
      this.apiUrl = `http://127.0.0.1:${this.apiPort}`;
      await waitFor(
        'the coordinator API',
        async () => {
          if (p.exitCode !== null) throw new Error(`drover-coordinator exited: ${this.tail(log)}`);
          const r = await fetch(`${this.apiUrl}/readyz`).catch(() => undefined);
          return r?.ok;
        },
        { timeoutMs: 20_000, intervalMs: 100 },
      );
    } else {
      const opts = compileCoordinatorOptions({ flags: this.coordinatorFlags() });
      this.coordinator = await startCoordinator(
        opts,
        createLogger({ name: 'drover-coordinator', level: this.opts.logLevel ?? 'info', destination: log }),
      );
      this.apiUrl = this.coordinator.api.url;
    }
    this.token = readFileSync(join(this.coordinatorDataDir, 'admin-token'), 'utf8').trim();
  }

  /** SIGKILLs the coordinator child process (coordinator: 'child' only). */
  async killCoordinator(): Promise<void> {
    const p = this.coordProc;
    if (!p) throw new Error('killCoordinator needs a fleet started with coordinator: "child"');
    if (p.exitCode === null && p.signalCode === null) {
      const gone = new Promise((r) => p.once('exit', r));
      p.kill('SIGKILL');
      await gone;
    }
    this.coordProc = undefined;
  }

  /** SIGSTOPs the coordinator child process (a VM pause; coordinator: 'child' only). */
  pauseCoordinator(): void {
    const p = this.coordProc;
    if (!p?.pid) throw new Error('pauseCoordinator needs a fleet started with coordinator: "child"');
    process.kill(p.pid, 'SIGSTOP');
    this.coordPaused = true;
  }

  /** SIGCONTs the coordinator child process after `pauseCoordinator`. */
  resumeCoordinator(): void {
    const p = this.coordProc;
    if (!p?.pid) throw new Error('resumeCoordinator needs a fleet started with coordinator: "child"');
    process.kill(p.pid, 'SIGCONT');
    this.coordPaused = false;
  }

  async api<T = unknown>(method: string, path: string, body?: unknown, yaml = false): Promise<T> {
    const r = await fetch(`${this.apiUrl}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        ...(body !== undefined ? { 'content-type': yaml ? 'application/yaml' : 'application/json' } : {}),
      },
      body: body === undefined ? undefined : yaml ? String(body) : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await r.text();
    if (!r.ok) throw new Error(`${method} ${path}: HTTP ${r.status}: ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** `drover …` (the CLI bundle) against this fleet's coordinator. */
  cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        [join(DIST, 'drover.mjs'), ...args, '--server', this.apiUrl, '--token', this.token],
        { timeout: 30_000, env: { ...process.env, HOME: this.dir, NO_COLOR: '1' } },
        (err, stdout, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
  }

  applyTopology(yaml: string): Promise<unknown> {
    return this.api('PUT', '/v1/topology', yaml, true);
  }

  async assignments(): Promise<AssignmentView[]> {
    return (await this.api<{ items: AssignmentView[] }>('GET', '/v1/assignments')).items;
  }

  /** Waits until every plan is applied and every role is Healthy. */
  async converged(timeoutMs = 60_000): Promise<void> {
    let last = '';
    await waitFor(
      'the fleet to converge',
      async () => {
        const s = await this.api<{ converged: boolean; clusters: Array<{ reasons: string[] }> }>(
          'GET',
          '/v1/status',
        );
        last = s.clusters.flatMap((c) => c.reasons).join('; ');
        return s.converged;
      },
      { timeoutMs, intervalMs: 250 },
    ).catch((err: Error) => {
      throw new Error(`${err.message}; last reasons: ${last}`);
    });
  }

  // ------------------------------------------------------------------ events

  eventsOf(kind: string, since = 0): Event[] {
    return this.events.filter((e) => (e.kind === kind || e.kind.startsWith(`${kind}.`)) && e.seq > since);
  }

  async waitEvent(
    what: string,
    pred: (e: Event) => boolean,
    timeoutMs = 30_000,
    /** only events after this `mark()` */
    from = 0,
  ): Promise<Event> {
    return waitFor(what, () => this.events.slice(from).find(pred), { timeoutMs, intervalMs: 10 });
  }

  /** A position in `events`, for `since(mark)`: unlike `seq`, it survives a coordinator crash (whose unflushed events' numbers are reused). */
  mark(): number {
    return this.events.length;
  }

  since(mark: number): Event[] {
    return this.events.slice(mark);
  }

  /** The newest event sequence number seen (events carry a per-coordinator-store sequence). */
  get lastSeq(): number {
    return this.events.reduce((m, e) => Math.max(m, e.seq), 0);
  }

  // ------------------------------------------------------------------ nodes

  node(id: string): FleetNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no fleet node ${id}`);
    return n;
  }

  /** A single-use join token for `nodeId` from the coordinator's API, with the key to pin. */
  async joinToken(nodeId: string): Promise<{ token: string; fingerprint: string }> {
    const r = await this.api<{ token: string; coordinatorKeyFingerprint: string }>(
      'POST',
      '/v1/join-tokens',
      { description: `fleet host ${nodeId}` },
    );
    return { token: r.token, fingerprint: r.coordinatorKeyFingerprint };
  }

  /** Starts the node's agent: with `join` when it has no bus credentials yet, else on its own `<dataDir>/bus.creds`. */
  private spawnAgent(n: FleetNode, join_?: { token: string; fingerprint: string }): void {
    const argv = [
      process.execPath,
      join(DIST, 'drover-agent.mjs'),
      '--config',
      '/dev/null',
      '--node-id',
      n.id,
      '--nats-servers',
      this.nats.url,
      '--advertise-address',
      n.address,
      '--data-dir',
      n.dataDir,
      '--root-dir',
      n.rootDir,
      '--runtime',
      'process',
      ...(join_ ? ['--join-token', join_.token, '--coordinator-key-fingerprint', join_.fingerprint] : []),
      '--heartbeat-interval',
      this.timings.heartbeatInterval,
      '--labels',
      `pool=${n.pool}${this.opts.cluster ? `,drover.dev/cluster=${this.opts.cluster}` : ''}`,
      '--log-level',
      this.opts.logLevel ?? 'info',
    ];
    const fd = openSync(n.log, 'a');
    // its own hostname, as a real host has: the coordinator refuses a second node with the same one
    n.proc = spawn('unshare', ['--uts', '--', 'sh', '-c', 'hostname "$0" && exec "$@"', n.id, ...argv], {
      stdio: ['ignore', fd, fd],
      detached: true,
    });
    closeSync(fd);
    n.state = 'running';
  }

  /** The node's agent, if it runs. */
  agentPid(id: string): number | undefined {
    const p = this.node(id).proc;
    return p && p.exitCode === null && p.signalCode === null ? p.pid : undefined;
  }

  /** Live role processes of a node, from its agent's pidfiles. */
  roles(id: string): RoleProcess[] {
    const n = this.node(id);
    return roleProcesses({ name: n.id, dataDir: n.dataDir });
  }

  /** instance id → the nodes whose pidfiles show it running (a live process). */
  running(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const n of this.nodes.values())
      for (const r of this.roles(n.id)) out.set(r.instanceId, [...(out.get(r.instanceId) ?? []), n.id]);
    return out;
  }

  private procsOf(n: FleetNode): ProcInfo[] {
    const roots = this.roles(n.id).map((r) => r.pid);
    const agent = this.agentPid(n.id);
    if (agent) roots.push(agent);
    return withDescendants(roots, allProcs());
  }

  /** The host loses power: its agent and every process of its roles are SIGKILLed at once. */
  async kill(id: string): Promise<number> {
    const n = this.node(id);
    // frozen before killed, listed again until nothing new (lab/procs.ts, freezeAndKill)
    const procs = freezeAndKill(() => this.procsOf(n));
    if (n.proc) n.proc.kill('SIGKILL');
    await waitFor(
      `${id}'s processes to die`,
      () => this.procsOf(n).length === 0 && this.agentPid(id) === undefined,
      {
        timeoutMs: 10_000,
        intervalMs: 20,
      },
    );
    n.state = 'killed';
    return procs.length;
  }

  /** The host boots again: its agent starts on the same data and root dirs. */
  revive(id: string): void {
    const n = this.node(id);
    if (this.agentPid(id)) throw new Error(`${id}'s agent already runs`);
    this.spawnAgent(n);
  }

  /** The agent freezes (SIGSTOP), as if its network dropped; its roles keep running. */
  pause(id: string): void {
    const pid = this.agentPid(id);
    if (!pid) throw new Error(`${id}'s agent is not running`);
    process.kill(pid, 'SIGSTOP');
    this.node(id).state = 'paused';
  }

  resume(id: string): void {
    const pid = this.agentPid(id);
    if (!pid) throw new Error(`${id}'s agent is not running`);
    process.kill(pid, 'SIGCONT');
    this.node(id).state = 'running';
  }

  // ------------------------------------------------------------------ roles

  /** Backend addresses in the haproxy.cfg the LB node's agent wrote (under its root dir). */
  haproxyBackends(lbNode: string, instance = 'load-balancer-0'): string[] {
    const cfg = join(this.node(lbNode).rootDir, 'etc/drover', instance, 'haproxy.cfg');
    if (!existsSync(cfg)) return [];
    return readFileSync(cfg, 'utf8')
      .split('\n')
      .map((l) => /^\s*server\s+\S+\s+([\d.]+):\d+/.exec(l)?.[1])
      .filter((x): x is string => !!x)
      .sort();
  }

  /** A background client opening a new connection through the load balancer every `intervalMs`. */
  lbClient(lbNode: string, port = 6443, intervalMs = 100): LbClient {
    const c = new LbClient(this.node(lbNode).address, port, intervalMs).start();
    this.clients.push(c);
    return c;
  }

  /** etcdctl over mutual TLS, with a client certificate from the coordinator's etcd CA. */
  async etcdctl(endpoints: string[], args: string[]): Promise<string> {
    const tls = await etcdctlTlsFlags(join(this.coordinatorDataDir, 'pki'));
    return new Promise((resolve, reject) => {
      execFile(
        'etcdctl',
        [`--endpoints=${endpoints.join(',')}`, ...tls, '--dial-timeout=2s', '--command-timeout=5s', ...args],
        { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 20_000 },
        (err, stdout, stderr) =>
          err ? reject(new Error(`etcdctl ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout),
      );
    });
  }

  etcdUrl(id: string): string {
    return `https://${this.node(id).address}:2379`;
  }

  // ------------------------------------------------------------------ diagnostics, cleanup

  tail(path: string, lines = 30): string {
    try {
      return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(none)';
    }
  }

  /** The end of every log of the fleet, for a failed test's report. */
  logs(lines = 30): string {
    const parts = [`--- coordinator\n${this.tail(join(this.dir, 'coordinator.log'), lines)}`];
    for (const n of this.nodes.values()) parts.push(`--- ${n.id} agent\n${this.tail(n.log, lines)}`);
    parts.push(
      `--- events\n${this.events
        .slice(-60)
        .map((e) => `${e.time} ${e.kind} ${e.message}`)
        .join('\n')}`,
    );
    return parts.join('\n');
  }

  /** Last resort on process exit: SIGKILL everything the fleet started (no waiting, no cleanup). */
  killAllSync(): void {
    for (const n of this.nodes.values()) {
      signalAll(this.procsOf(n), 'SIGKILL');
      n.proc?.kill('SIGKILL');
    }
    this.coordProc?.kill('SIGKILL');
    const natsPid = this.nats.pid();
    try {
      if (natsPid) process.kill(natsPid, 'SIGKILL');
    } catch {
      // already gone (the fleet was closed before the process exits)
    }
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const c of this.clients) await c.stop().catch(() => {});
      for (const n of this.nodes.values()) {
        if (n.state === 'paused') {
          const pid = this.agentPid(n.id);
          if (pid) process.kill(pid, 'SIGCONT');
        }
        await this.kill(n.id).catch(() => {});
      }
      if (this.coordProc && this.coordPaused) this.resumeCoordinator();
      if (this.coordProc) await this.killCoordinator().catch(() => {});
      await this.coordinator?.close().catch(() => {});
      await this.nc?.close().catch(() => {});
      await this.nats.stop();
      await sleep(50);
      // DROVER_FLEET_KEEP=1 keeps the logs and dirs for a post-mortem
      if (process.env.DROVER_FLEET_KEEP) process.stderr.write(`fleet dir kept: ${this.dir}\n`);
      else rmSync(this.dir, { recursive: true, force: true });
    })();
    return this.closing;
  }
}

// ------------------------------------------------------------------ small process helpers

function requireBinary(name: string): string {
  for (const d of [
    ...(process.env.PATH ?? '').split(':'),
    '/usr/local/sbin',
    '/usr/local/bin',
    '/usr/sbin',
    '/usr/bin',
    '/sbin',
    '/bin',
  ]) {
    try {
      accessSync(join(d, name), constants.X_OK);
      return join(d, name);
    } catch {}
  }
  throw new Error(
    `${name} is not installed (it is in the Debian package of the same name, or util-linux for unshare)`,
  );
}
