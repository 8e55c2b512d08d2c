/**
 * Coordinator HA with real processes: a three-server NATS JetStream cluster, three
 * `drover-coordinator` child processes on one R3 store (ha.enabled, lease 2 s), and real
 * `drover-agent` processes that know every NATS URL. Coordinators can be SIGKILLed and started
 * again; the API client finds the leader the way the CLI does (any coordinator's
 * /v1/coordinators) and follows 421 NOT_LEADER.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, cpSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NatsConnection } from 'nats';
import { roleProcesses } from '../../lab/collect.js';
import {
  createBridge,
  createNodeNet,
  type NetNames,
  netNames,
  setLink,
  teardownNet,
} from '../../lab/netns.js';
import { allProcs, freezeAndKill, withDescendants } from '../../lab/procs.js';
import { DIST } from './fleet-core.js';
import { type NatsCluster, startNatsCluster } from './nats-cluster.js';
import { autoCleanup, freePort, tempDir, waitFor } from './proc.js';

export interface HaCoordinator {
  id: string;
  dir: string;
  api: string;
  log: string;
  proc?: ChildProcess;
}

export interface HaAgent {
  id: string;
  address: string;
  dataDir: string;
  log: string;
  proc?: ChildProcess;
}

export interface CoordinatorItem {
  id: string;
  api?: string;
  role: 'leader' | 'follower';
  epoch?: number;
  term?: number;
  leaseAgeMs?: number;
}

const alive = (p?: ChildProcess) => !!p && p.exitCode === null && p.signalCode === null;

export class HaFleet {
  readonly coordinators = new Map<string, HaCoordinator>();
  readonly agents = new Map<string, HaAgent>();
  token = '';
  net?: { names: NetNames; bridgeIp: string; c1Ip: string; netns: string; hostVeth: string };
  private constructor(
    readonly cluster: NatsCluster,
    readonly dir: string,
    readonly leaseMs: number,
  ) {}

  static async start(o: {
    subnet: string;
    agents: string[];
    leaseMs?: number;
    /**
     * c1 runs in a network namespace of its own (10.<n>.0.2 behind a veth on a bridge that holds
     * the nats-servers at 10.<n>.0.1), so `partition('c1')` cuts it off the bus
     */
    netns?: { octet: number };
  }): Promise<HaFleet> {
    const dir = tempDir('ha-fleet');
    let net: HaFleet['net'];
    if (o.netns) {
      const names = netNames(dir);
      const base = `10.${o.netns.octet}.0`;
      net = {
        names,
        bridgeIp: `${base}.1`,
        c1Ip: `${base}.2`,
        netns: names.netns('c1'),
        hostVeth: names.hostVeth(1),
      };
      autoCleanup(async () => void (await teardownNet(names)));
      await createBridge(names.bridge, `${net.bridgeIp}/24`);
      await createNodeNet(names.bridge, {
        netns: net.netns,
        hostVeth: net.hostVeth,
        peerVeth: names.peerVeth(1),
        cidr: `${net.c1Ip}/24`,
        gateway: net.bridgeIp,
      });
    }
    const cluster = await startNatsCluster(3, net?.bridgeIp ?? '127.0.0.1');
    const f = new HaFleet(cluster, dir, o.leaseMs ?? 2000);
    f.net = net;
    autoCleanup(() => f.close());
    for (const id of ['c1', 'c2', 'c3']) {
      const host = id === 'c1' && net ? net.c1Ip : '127.0.0.1';
      f.coordinators.set(id, {
        id,
        dir: join(f.dir, id),
        api: `http://${host}:${await freePort(net && id === 'c1' ? '0.0.0.0' : '127.0.0.1')}`,
        log: join(f.dir, `${id}.log`),
      });
    }
    // the first coordinator makes the seed material; the others get copies (docs/operations.md)
    await f.startCoordinator('c1');
    f.token = readFileSync(join(f.coordinators.get('c1')!.dir, 'admin-token'), 'utf8').trim();
    await waitFor('c1 leads', async () => (await f.leader())?.id === 'c1', { timeoutMs: 30_000 });
    const d1 = f.coordinators.get('c1')!.dir;
    for (const id of ['c2', 'c3']) {
      const d = f.coordinators.get(id)!.dir;
      mkdirSync(d, { recursive: true });
      for (const file of ['plan-signing-key.pem', 'pki', 'tokens.json', 'admin-token'])
        if (existsSync(join(d1, file))) cpSync(join(d1, file), join(d, file), { recursive: true });
    }
    await f.startCoordinator('c2');
    await f.startCoordinator('c3');
    o.agents.forEach((id, i) => {
      const dir = join(f.dir, id);
      f.agents.set(id, {
        id,
        address: `${o.subnet}.${i + 2}`,
        dataDir: join(dir, 'data'),
        log: join(dir, 'agent.log'),
      });
      mkdirSync(join(dir, 'root'), { recursive: true });
    });
    for (const a of f.agents.values()) await f.spawnAgent(a);
    await waitFor(
      `${f.agents.size} nodes Ready`,
      async () => {
        const nodes = await f.api<{ items: Array<{ state: string }> }>('GET', '/v1/nodes');
        return nodes.items.filter((x) => x.state === 'Ready').length === f.agents.size;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    return f;
  }

  async startCoordinator(id: string): Promise<void> {
    const c = this.coordinators.get(id)!;
    mkdirSync(c.dir, { recursive: true });
    const flags: Record<string, string> = {
      'data-dir': c.dir,
      'nats-servers': this.cluster.urls.join(','),
      'bus-dir': this.cluster.busDir,
      'store-backend': 'jetstream',
      'store-replicas': '3',
      'store-bucket': 'drover-state',
      'ha-enabled': 'true',
      'ha-id': id,
      'ha-lease': `${this.leaseMs}ms`,
      'api-listen': c.api.replace('http://', ''),
      'heartbeat-interval': '500ms',
      'unreachable-after': '2s',
      'reassign-after': '1s',
      'standin-command': `${process.execPath},${join(DIST, 'drover-standin.mjs')}`,
    };
    const fd = openSync(c.log, 'a');
    const argv = [
      process.execPath,
      join(DIST, 'drover-coordinator.mjs'),
      '--config',
      '/dev/null',
      ...Object.entries(flags).flatMap(([k, v]) => [`--${k}`, v]),
    ];
    // c1 in its namespace: `ip netns exec` execs the coordinator (same pid)
    const inNs = id === 'c1' && this.net ? ['ip', 'netns', 'exec', this.net.netns] : [];
    const cmd = [...inNs, ...argv];
    c.proc = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    const p = c.proc;
    await waitFor(
      `coordinator ${id} API`,
      async () => {
        if (!alive(p))
          throw new Error(`coordinator ${id} exited: ${readFileSync(c.log, 'utf8').slice(-2000)}`);
        return (await fetch(`${c.api}/healthz`).catch(() => undefined))?.ok;
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );
  }

  /** Cuts c1's namespace off the bridge (its veth down), or heals it. */
  async partition(id: string, cut: boolean): Promise<void> {
    if (id !== 'c1' || !this.net) throw new Error('partition needs HaFleet.start({ netns }) and c1');
    await setLink(this.net.hostVeth, !cut);
  }

  /** kill -9 of a coordinator process. */
  async killCoordinator(id: string): Promise<void> {
    const p = this.coordinators.get(id)?.proc;
    if (!p || !alive(p)) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await gone;
  }

  /** Every live coordinator's view of the coordinators (the first that answers). */
  async coordinatorList(): Promise<CoordinatorItem[] | undefined> {
    for (const c of this.coordinators.values()) {
      if (!alive(c.proc)) continue;
      const r = await fetch(`${c.api}/v1/coordinators`, {
        headers: { authorization: `Bearer ${this.token}` },
        signal: AbortSignal.timeout(2000),
      }).catch(() => undefined);
      if (r?.ok) return ((await r.json()) as { items: CoordinatorItem[] }).items;
    }
    return undefined;
  }

  async leader(): Promise<CoordinatorItem | undefined> {
    const items = await this.coordinatorList();
    const l = items?.find((i) => i.role === 'leader');
    return l && alive(this.coordinators.get(l.id)?.proc) ? l : undefined;
  }

  /** A request to the leader: found through /v1/coordinators, re-sent after 421 or a dead leader. */
  async api<T = unknown>(method: string, path: string, body?: string, timeoutMs = 20_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      const l = await this.leader();
      if (l?.api) {
        const r = await fetch(`${l.api}${path}`, {
          method,
          headers: {
            authorization: `Bearer ${this.token}`,
            ...(body !== undefined ? { 'content-type': 'application/yaml' } : {}),
          },
          body,
          signal: AbortSignal.timeout(5000),
        }).catch((err: Error) => ({ ok: false, status: 0, text: async () => err.message }) as const);
        const text = await r.text();
        if (r.ok) return (text ? JSON.parse(text) : undefined) as T;
        last = `HTTP ${r.status}: ${text}`;
        if (r.status !== 0 && r.status !== 421 && r.status !== 503)
          throw new Error(`${method} ${path}: ${last}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${method} ${path}: no leader answered in ${timeoutMs} ms (${last})`);
  }

  private async spawnAgent(a: HaAgent): Promise<void> {
    const t = await this.json<{ token: string; coordinatorKeyFingerprint: string }>(
      'POST',
      '/v1/join-tokens',
      {
        description: `ha host ${a.id}`,
      },
    );
    const argv = [
      process.execPath,
      join(DIST, 'drover-agent.mjs'),
      '--config',
      '/dev/null',
      '--node-id',
      a.id,
      '--nats-servers',
      this.cluster.urls.join(','),
      '--advertise-address',
      a.address,
      '--data-dir',
      a.dataDir,
      '--root-dir',
      join(a.dataDir, '..', 'root'),
      '--runtime',
      'process',
      '--join-token',
      t.token,
      '--coordinator-key-fingerprint',
      t.coordinatorKeyFingerprint,
      '--heartbeat-interval',
      '500ms',
      '--labels',
      'pool=web,drover.dev/cluster=t',
    ];
    const fd = openSync(a.log, 'a');
    a.proc = spawn('unshare', ['--uts', '--', 'sh', '-c', 'hostname "$0" && exec "$@"', a.id, ...argv], {
      stdio: ['ignore', fd, fd],
      detached: true,
    });
    closeSync(fd);
  }

  async json<T>(method: string, path: string, body: unknown): Promise<T> {
    const l = await waitFor('a leader', () => this.leader(), { timeoutMs: 20_000 });
    const r = await fetch(`${l.api}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await r.text();
    if (!r.ok) throw new Error(`${method} ${path}: HTTP ${r.status}: ${text}`);
    return JSON.parse(text) as T;
  }

  /** instance id → the agents whose pidfiles show it running. */
  running(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const a of this.agents.values())
      for (const r of roleProcesses({ name: a.id, dataDir: a.dataDir }))
        out.set(r.instanceId, [...(out.get(r.instanceId) ?? []), a.id]);
    return out;
  }

  /** The host loses power: its agent and its role processes are SIGKILLed. */
  killAgent(id: string): void {
    const a = this.agents.get(id)!;
    freezeAndKill(() => {
      const roots = roleProcesses({ name: a.id, dataDir: a.dataDir }).map((r) => r.pid);
      if (a.proc?.pid) roots.push(a.proc.pid);
      return withDescendants(roots, allProcs());
    });
  }

  async connect(): Promise<NatsConnection> {
    return this.cluster.connectAsCoordinator();
  }

  /**
   * True when the leader's /v1/status says converged; otherwise throws with its reasons, so a
   * `waitFor` that times out on it says why (plans not applied, roles not healthy).
   */
  async converged(timeoutMs?: number): Promise<true> {
    const st = await this.api<{ converged: boolean; clusters?: Array<{ reasons?: string[] }> }>(
      'GET',
      '/v1/status',
      undefined,
      timeoutMs,
    );
    if (st.converged) return true;
    const reasons = (st.clusters ?? []).flatMap((c) => c.reasons ?? []);
    throw new Error(`not converged: ${reasons.join('; ') || 'no reason given'}`);
  }

  /** The last lines of every coordinator's and agent's log, for a failed test's output. */
  logs(): string {
    const tail = (name: string, file: string, n: number) => {
      try {
        return `--- ${name}\n${readFileSync(file, 'utf8').split('\n').slice(-n).join('\n')}`;
      } catch {
        return '';
      }
    };
    return [
      ...[...this.coordinators.values()].map((c) => tail(c.id, c.log, 60)),
      ...[...this.agents.values()].map((a) => tail(`agent ${a.id}`, a.log, 30)),
    ].join('\n');
  }

  async close(): Promise<void> {
    for (const a of this.agents.values()) this.killAgent(a.id);
    for (const c of this.coordinators.keys()) await this.killCoordinator(c);
  }
}
