/**
 * `drover lab up --ha`: coordinator HA in the lab. Three nats-servers as a JetStream cluster (one
 * bus: the same operator, account and CA; routes between them), three coordinators on one R3
 * store with a leader lease (coordinator/ha/), and the fault commands `lab kill-coordinator
 * [ID|--leader]`, `lab kill-nats NAME` and their `revive-…` counterparts.
 *
 * The first coordinator makes the seed material (plan-signing key, cluster PKI, API tokens); the
 * other two get copies before they start, as docs/operations.md tells an operator to do.
 */
import { cpSync, existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { prepareBus } from '../coordinator/bus/server-config.js';
import { writeFileAtomic } from '../lib/atomic-file.js';
import { LabApi } from './api.js';
import { exitedMessage, waitUntil } from './control.js';
import { labError } from './errors.js';
import { hostPath } from './k8s.js';
import type { CompiledLabUpOptions } from './options.js';
import { labPaths } from './paths.js';
import { labPath } from './preflight.js';
import { daemonEnv, isAlive, type ProcRef, readStat, spawnDetached, terminate } from './procs.js';
import {
  type LabHaCoordinator,
  type LabHaNats,
  type LabState,
  readState,
  withLock,
  writeState,
} from './state.js';

export const HA_SIZE = 3;
/** the leader lease in the lab: a kill -9 of the leader is taken over in about 2 s */
const LAB_LEASE = '2s';
/** what the other coordinators copy from the first one's data dir (API tokens are in the shared store) */
const SEED_FILES = ['plan-signing-key.pem', 'pki', 'admin-token'];

export interface HaPorts {
  nats: Array<{ client: number; monitor: number; route: number }>;
  api: number[];
}

/** The lab state's HA part: three servers and three coordinators under the lab dir. */
export function haLayout(dir: string, natsHost: string, ports: HaPorts): NonNullable<LabState['ha']> {
  const p = labPaths(dir);
  return {
    nats: ports.nats.map((q, i) => {
      const name = `nats-${i + 1}`;
      return {
        name,
        url: `tls://${natsHost}:${q.client}`,
        monitorUrl: `http://127.0.0.1:${q.monitor}`,
        config: join(p.natsDir, name, 'nats-server.conf'),
        dir: join(p.natsDir, name),
        log: p.log(`nats-server-${i + 1}`),
      };
    }),
    coordinators: ports.api.map((port, i) => {
      const id = `c${i + 1}`;
      return {
        id,
        apiUrl: `http://127.0.0.1:${port}`,
        dataDir: i === 0 ? p.coordinatorData : join(p.coordinatorDir, id, 'data'),
        config: i === 0 ? p.coordinatorConfig : join(p.coordinatorDir, id, 'coordinator.yaml'),
        log: p.log(i === 0 ? 'coordinator' : `coordinator-${id}`),
      };
    }),
  };
}

const env = (s: LabState) => daemonEnv({ PATH: hostPath(s.k8s, labPath()) });

async function natsUp(n: LabHaNats): Promise<boolean> {
  try {
    return (await fetch(`${n.monitorUrl}/healthz`, { signal: AbortSignal.timeout(2000) })).ok;
  } catch {
    return false;
  }
}

async function spawnHaNats(s: LabState, n: LabHaNats): Promise<ProcRef> {
  n.proc = await spawnDetached({
    command: 'nats-server',
    args: ['-c', n.config],
    log: n.log,
    cwd: n.dir,
    env: env(s),
  }).catch((err) => {
    throw labError('DROVER_ERR_LAB_START', `cannot start ${n.name}: ${(err as Error).message}`);
  });
  await writeState(s);
  return n.proc;
}

async function spawnHaCoordinator(s: LabState, c: LabHaCoordinator): Promise<ProcRef> {
  const proc = await spawnDetached({
    command: s.nodeBinary,
    args: [join(s.distDir, 'drover-coordinator.mjs'), '--config', c.config],
    log: c.log,
    cwd: c.dataDir,
    env: env(s),
  });
  c.proc = proc;
  if (c.id === 'c1') s.coordinator.proc = proc;
  await writeState(s);
  await waitUntil(
    `coordinator ${c.id} at ${c.apiUrl}`,
    async () =>
      (await fetch(`${c.apiUrl}/healthz`, { signal: AbortSignal.timeout(2000) }).then(
        (r) => r.ok,
        () => false,
      )) && existsSync(join(c.dataDir, 'admin-token')),
    {
      timeoutMs: 30_000,
      alive: () => (isAlive(proc) ? undefined : exitedMessage(`coordinator ${c.id}`, c.log)),
    },
  );
  return proc;
}

function coordinatorYaml(o: CompiledLabUpOptions, s: LabState, c: LabHaCoordinator): string {
  const ha = s.ha!;
  const port = new URL(c.apiUrl).port;
  const cfg: Record<string, unknown> = {
    nats: { servers: ha.nats.map((n) => n.url) },
    dataDir: c.dataDir,
    // one bus for all three: the first coordinator's bus dir (keys, creds, CA)
    bus: { dir: s.bus!.dir },
    store: { backend: 'jetstream', bucket: 'drover-state', replicas: HA_SIZE },
    ha: { enabled: true, id: c.id, lease: LAB_LEASE, advertiseApi: c.apiUrl },
    api: { listen: `127.0.0.1:${port}` },
    standinCommand: [o.nodeBinary, join(o.distDir, 'drover-standin.mjs')],
    logLevel: o.logLevel,
    ...o.timings,
  };
  return `# Written by \`drover lab up --ha\` for coordinator ${c.id}.\n${toYaml(cfg)}`;
}

/**
 * Starts the HA control plane: the three clustered nats-servers, then the first coordinator (it
 * makes the seed material and wins the first lease), then the other two with copies of it.
 */
export async function startHaControl(
  o: CompiledLabUpOptions,
  s: LabState,
  ports: HaPorts,
  natsHost: string,
  progress: (line: string) => void,
): Promise<void> {
  const ha = s.ha!;
  for (const [i, n] of ha.nats.entries()) {
    const q = ports.nats[i]!;
    const routes = ports.nats
      .filter((_, j) => j !== i)
      .map((r) => `nats-route://${natsHost}:${r.route}`)
      .join(', ');
    await prepareBus({
      dir: s.bus!.dir,
      serverDir: n.dir,
      listen: `${natsHost}:${q.client}`,
      monitor: `127.0.0.1:${q.monitor}`,
      serverName: `drover_lab_${n.name.replace('-', '_')}`,
      tlsHosts: [natsHost, '127.0.0.1'],
      jetstream: { maxMemory: '256MB', maxFile: '2GB' },
      configFile: n.config,
      extra: `ping_interval: "5s"\nping_max: 2\ncluster {\n  name: drover_lab\n  listen: ${natsHost}:${q.route}\n  routes: [${routes}]\n}\n`,
    });
  }
  for (const n of ha.nats) await spawnHaNats(s, n);
  s.nats.proc = ha.nats[0]!.proc;
  await writeState(s);
  await waitUntil(
    'the JetStream cluster (3 nats-servers)',
    async () => (await Promise.all(ha.nats.map(natsUp))).every(Boolean),
    {
      timeoutMs: 60_000,
      alive: () => {
        const dead = ha.nats.find((n) => !isAlive(n.proc));
        return dead ? exitedMessage(dead.name, dead.log) : undefined;
      },
    },
  );
  progress(
    `nats-server     ${ha.nats.map((n) => n.url).join(', ')}  (a JetStream cluster; auth and TLS from one bus)`,
  );
  const [first, ...rest] = ha.coordinators;
  for (const c of ha.coordinators) {
    mkdirSync(c.dataDir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(c.config, coordinatorYaml(o, s, c), 0o600);
  }
  await spawnHaCoordinator(s, first!);
  for (const c of rest) {
    for (const f of SEED_FILES)
      if (existsSync(join(first!.dataDir, f)))
        cpSync(join(first!.dataDir, f), join(c.dataDir, f), { recursive: true });
    await spawnHaCoordinator(s, c);
  }
  progress(
    `coordinators    ${ha.coordinators.map((c) => `${c.id} ${c.apiUrl}`).join(', ')}  (one leads by lease; store: JetStream R${HA_SIZE})`,
  );
}

async function onHa<T>(
  dir: string,
  fn: (s: LabState, ha: NonNullable<LabState['ha']>) => Promise<T>,
): Promise<T> {
  const d = resolve(dir);
  return withLock(d, async () => {
    const s = readState(d);
    if (!s.ha)
      throw labError(
        'DROVER_ERR_LAB_MODE',
        `the lab in ${d} runs one coordinator: this needs \`drover lab up --ha\``,
      );
    const r = await fn(s, s.ha);
    await writeState(s);
    return r;
  });
}

async function sigkill(proc: ProcRef | undefined, what: string): Promise<number> {
  const st = proc && isAlive(proc) ? readStat(proc.pid) : undefined;
  if (!st) throw labError('DROVER_ERR_LAB_MODE', `${what} is not running`);
  const left = await terminate([st], { hard: true });
  if (left.length) throw labError('DROVER_ERR_LAB_LEFTOVERS', `${what} (pid ${st.pid}) survived SIGKILL`);
  return st.pid;
}

/** `lab kill-coordinator ID|--leader`: kill -9 of one coordinator; another takes the lease over. */
export function killCoordinator(
  dir: string,
  which: { id?: string; leader?: boolean },
): Promise<{ id: string; pid: number; wasLeader: boolean }> {
  return onHa(dir, async (s, ha) => {
    const items = await new LabApi(s.coordinator.apiUrl, s.coordinator.adminTokenFile)
      .coordinators()
      .catch(() => []);
    const leader = items.find((i) => i.role === 'leader')?.id;
    const id = which.leader ? leader : which.id;
    if (!id)
      throw labError(
        'DROVER_ERR_LAB_MODE',
        'no coordinator holds the lease right now (an election is under way?)',
      );
    const c = ha.coordinators.find((x) => x.id === id);
    if (!c)
      throw labError(
        'DROVER_ERR_LAB_USAGE',
        `no coordinator ${JSON.stringify(id)}: the lab has ${ha.coordinators.map((x) => x.id).join(', ')}`,
      );
    const pid = await sigkill(c.proc, `coordinator ${id}`);
    delete c.proc;
    if (c.id === 'c1') delete s.coordinator.proc;
    return { id, pid, wasLeader: id === leader };
  });
}

/** `lab revive-coordinator ID`: starts it again (it follows until it wins a lease). */
export function reviveCoordinator(dir: string, id: string): Promise<{ id: string; pid: number }> {
  return onHa(dir, async (s, ha) => {
    const c = ha.coordinators.find((x) => x.id === id);
    if (!c) throw labError('DROVER_ERR_LAB_USAGE', `no coordinator ${JSON.stringify(id)}`);
    if (c.proc && isAlive(c.proc))
      throw labError('DROVER_ERR_LAB_MODE', `coordinator ${id} already runs (pid ${c.proc.pid})`);
    const p = await spawnHaCoordinator(s, c);
    return { id, pid: p.pid };
  });
}

/** `lab kill-nats NAME`: kill -9 of one nats-server; clients move to the other two. */
export function killNats(dir: string, name: string): Promise<{ name: string; pid: number }> {
  return onHa(dir, async (s, ha) => {
    const n = ha.nats.find((x) => x.name === name || x.name === `nats-${name}`);
    if (!n)
      throw labError(
        'DROVER_ERR_LAB_USAGE',
        `no nats-server ${JSON.stringify(name)}: the lab has ${ha.nats.map((x) => x.name).join(', ')}`,
      );
    const pid = await sigkill(n.proc, n.name);
    delete n.proc;
    if (n === ha.nats[0]) delete s.nats.proc;
    return { name: n.name, pid };
  });
}

/** `lab revive-nats NAME`: starts that nats-server again (same ports, its JetStream files). */
export function reviveNats(dir: string, name: string): Promise<{ name: string; pid: number }> {
  return onHa(dir, async (s, ha) => {
    const n = ha.nats.find((x) => x.name === name || x.name === `nats-${name}`);
    if (!n) throw labError('DROVER_ERR_LAB_USAGE', `no nats-server ${JSON.stringify(name)}`);
    if (n.proc && isAlive(n.proc))
      throw labError('DROVER_ERR_LAB_MODE', `${n.name} already runs (pid ${n.proc.pid})`);
    const p = await spawnHaNats(s, n);
    if (n === ha.nats[0]) s.nats.proc = p;
    await waitUntil(`${n.name}`, () => natsUp(n), {
      timeoutMs: 30_000,
      alive: () => (isAlive(p) ? undefined : exitedMessage(n.name, n.log)),
    });
    return { name: n.name, pid: p.pid };
  });
}

export interface HaStatus {
  nats: 'running' | 'unhealthy' | 'down';
  coordinator: 'running' | 'unhealthy' | 'down';
  problems: string[];
  servers: Array<{ name: string; status: 'running' | 'unhealthy' | 'down'; pid?: number }>;
  coordinators: Array<{
    id: string;
    status: 'running' | 'down';
    pid?: number;
    role?: string;
    epoch?: number;
  }>;
}

/**
 * `lab status` with --ha: each server and coordinator. The bus is running while a majority of its
 * servers answers (JetStream keeps quorum), the control plane while a coordinator leads.
 */
export async function haStatus(s: LabState): Promise<HaStatus> {
  const ha = s.ha!;
  const problems: string[] = [];
  const servers = await Promise.all(
    ha.nats.map(async (n) => {
      const alive = !!n.proc && isAlive(n.proc);
      const status: HaStatus['nats'] = !alive ? 'down' : (await natsUp(n)) ? 'running' : 'unhealthy';
      if (status === 'down') problems.push(`${n.name} is down (\`drover lab revive-nats ${n.name}\`)`);
      else if (status === 'unhealthy')
        problems.push(`${n.name} (pid ${n.proc!.pid}) does not answer ${n.monitorUrl}/healthz`);
      return { name: n.name, status, ...(alive ? { pid: n.proc!.pid } : {}) };
    }),
  );
  const items = await new LabApi(s.coordinator.apiUrl, s.coordinator.adminTokenFile, 3000)
    .coordinators()
    .catch(() => []);
  const coordinators = ha.coordinators.map((c) => {
    const alive = !!c.proc && isAlive(c.proc);
    const item = items.find((i) => i.id === c.id);
    if (!alive) problems.push(`coordinator ${c.id} is down (\`drover lab revive-coordinator ${c.id}\`)`);
    return {
      id: c.id,
      status: alive ? ('running' as const) : ('down' as const),
      ...(alive ? { pid: c.proc!.pid } : {}),
      ...(item ? { role: item.role } : {}),
      ...(item?.epoch !== undefined ? { epoch: item.epoch } : {}),
    };
  });
  const up = servers.filter((x) => x.status === 'running').length;
  const nats = up * 2 > servers.length ? 'running' : up > 0 ? 'unhealthy' : 'down';
  const leads = coordinators.some((c) => c.status === 'running' && c.role === 'leader');
  const coordinator = leads
    ? 'running'
    : coordinators.some((c) => c.status === 'running')
      ? 'unhealthy'
      : 'down';
  if (!leads && coordinator !== 'down')
    problems.push('no coordinator leads right now (an election is under way?)');
  return { nats, coordinator, problems, servers, coordinators };
}
