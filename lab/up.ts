import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { type PreparedBus, prepareBus } from '../coordinator/bus/server-config.js';
import { writeFileAtomic } from '../lib/atomic-file.js';
import { freePort, portFree } from '../lib/free-port.js';
import { LabApi, type LabRoleView } from './api.js';
import { exitedMessage, spawnCoordinator, spawnNats, waitUntil } from './control.js';
import { labError } from './errors.js';
import { HA_SIZE, type HaPorts, haLayout, startHaControl } from './ha.js';
import { hostPath, k8sSummary, linkK8sBinaries, resolveLabK8s } from './k8s.js';
import { fleetLayout, type NodeLayout } from './layout.js';
import { createBridge, createNodeNet, netNames } from './netns.js';
import { type CompiledLabUpOptions, compileLabUpOptions, type LabUpOptions } from './options.js';
import { labPaths } from './paths.js';
import { checkLabDirReachable, findProgram, labPath, preflight } from './preflight.js';
import { daemonEnv, isAlive, type ProcRef, spawnDetached } from './procs.js';
import { type LabNodeState, type LabState, labExists, readState, withLock, writeState } from './state.js';
import { loadLabTopology } from './topology.js';

export type Progress = (line: string) => void;

export interface LabUpResult {
  state: LabState;
  apiUrl: string;
  adminTokenFile: string;
  cliConfig: string;
  converged: boolean;
  elapsedMs: number;
  /** a control-plane host with nothing placed on it (where repair moves roles), if any */
  spare?: string;
  /** a control-plane host that runs roles: a good one to kill in the demo */
  victim?: string;
  /** the topology edits the lab made (timing overrides) */
  topologyChanges: string[];
}

/** `preferred` when free, else any free port (0 means any). */
async function pickPort(host: string, preferred: number): Promise<number> {
  if (preferred !== 0 && (await portFree(host, preferred))) return preferred;
  return freePort(host);
}

/** The command that runs a node's agent: directly, or inside its namespace with `ip netns exec`. */
export function agentCommand(s: LabState, n: LabNodeState): { command: string; args: string[] } {
  let argv = [s.nodeBinary, join(s.distDir, 'drover-agent.mjs'), '--config', n.config];
  // Its own UTS namespace gives the host its own hostname, as a real host has (the agent reports
  // it in its facts). Every exec in the chain keeps the pid, so lab.json records the agent's.
  if (s.hostnames)
    argv = ['unshare', '--uts', '--', 'sh', '-c', 'hostname "$0" && exec "$@"', n.name, ...argv];
  if (n.netns) argv = ['ip', 'netns', 'exec', n.netns, ...argv];
  return { command: argv[0]!, args: argv.slice(1) };
}

/** Per-host hostnames need root (a UTS namespace) plus unshare(1) and hostname(1). */
export function canSetHostnames(): boolean {
  return process.getuid?.() === 0 && !!findProgram('unshare') && !!findProgram('hostname');
}

export async function startAgent(s: LabState, n: LabNodeState): Promise<ProcRef> {
  const { command, args } = agentCommand(s, n);
  return spawnDetached({
    command,
    args,
    log: n.log,
    cwd: n.dir,
    env: daemonEnv({ PATH: hostPath(s.k8s, labPath()) }),
  });
}

/** A lab host's agent config: its own join token (used once: then `<dataDir>/bus.creds`) and the key it pins. */
function agentConfig(
  o: CompiledLabUpOptions,
  n: NodeLayout,
  natsUrls: string[],
  join_: { token: string; fingerprint: string },
  p: ReturnType<typeof labPaths>,
): string {
  const np = p.node(n.name);
  const cfg: Record<string, unknown> = {
    nodeId: n.name,
    // its own host name even without a UTS namespace (not root): names are unique in a cluster
    hostname: n.name,
    nats: { servers: natsUrls },
    advertiseAddress: n.address,
    labels: n.labels,
    dataDir: np.dataDir,
    rootDir: np.rootDir,
    runtime: 'process',
    joinToken: join_.token,
    coordinatorKeyFingerprint: join_.fingerprint,
    logLevel: o.logLevel,
  };
  if (o.timings.heartbeatInterval) cfg.heartbeatInterval = o.timings.heartbeatInterval;
  return `# Written by \`drover lab up\` for lab host ${n.name} (${n.pool}${n.pending ? ', its token requires approval' : ''}).\n${toYaml(cfg)}`;
}

function coordinatorConfig(
  o: CompiledLabUpOptions,
  natsUrl: string,
  apiListen: string,
  p: ReturnType<typeof labPaths>,
): string {
  const cfg: Record<string, unknown> = {
    nats: { servers: [natsUrl] },
    dataDir: p.coordinatorData,
    // the bus keys, creds and CA are in <dataDir>/bus (bus.dir's default), where nats-server's config came from
    api: { listen: apiListen },
    // the stand-in runs the Kubernetes components this machine does not have (clearly SIMULATED)
    standinCommand: [o.nodeBinary, join(o.distDir, 'drover-standin.mjs')],
    logLevel: o.logLevel,
    ...o.timings,
  };
  return `# Written by \`drover lab up\`.\n${toYaml(cfg)}`;
}

/**
 * The lab's nats-server config, from the coordinator's bus dir (as `drover-coordinator
 * nats-config` makes it in the packaged setup): operator JWT and resolver, TLS with a cert from
 * the bus CA for the address agents dial.
 */
async function prepareLabBus(
  p: ReturnType<typeof labPaths>,
  host: string,
  port: number,
  monitorPort: number,
): Promise<PreparedBus> {
  return prepareBus({
    dir: join(p.coordinatorData, 'bus'),
    listen: `${host}:${port}`,
    monitor: `127.0.0.1:${monitorPort}`,
    serverName: `drover_lab_${port}`,
    tlsHosts: [host, '127.0.0.1'],
    pidFile: join(p.natsDir, 'nats.pid'),
    configFile: p.natsConfig,
    // a partitioned agent's connection is noticed within ~10 s, not the 4 min of the defaults
    extra: 'ping_interval: "5s"\nping_max: 2',
  });
}

/** One line per role: `etcd 3/3 · kube-apiserver 1/3 (SIMULATED) · …`. */
export function roleLine(roles: LabRoleView[]): string {
  const several = new Set(roles.map((r) => r.cluster)).size > 1;
  return roles
    .map(
      (r) => `${several ? `${r.cluster}/` : ''}${r.name} ${r.healthy}/${r.desired}${r.simulated ? '*' : ''}`,
    )
    .join(' · ');
}

/**
 * `drover lab up`: checks prerequisites, then starts nats-server, the coordinator and one agent per
 * host as detached processes (logs in DIR/logs), waits until every agent registered, applies the
 * topology and waits until the fleet converges. lab.json is written as soon as the first process
 * runs, so `lab down` can clean up even a start that failed half-way.
 */
export async function labUp(input: LabUpOptions, progress: Progress = () => {}): Promise<LabUpResult> {
  const o = compileLabUpOptions(input);
  const t0 = Date.now();
  // Everything that can be checked is checked before anything starts.
  preflight({ netns: o.netns, distDir: o.distDir });
  const k8s = resolveLabK8s({
    netns: o.netns,
    simulated: o.simulated,
    ...(o.k8sBinDir ? { k8sBinDir: o.k8sBinDir } : {}),
  });
  const topo = loadLabTopology(o.topology, o.timings);
  const layout = fleetLayout(o.nodes, o.subnet, {
    clusters: topo.clusters.map((c) => c.name),
    pending: o.pending,
  });
  const missingPools = topo.pools.filter((p) => !layout.some((n) => n.labels.pool === p));
  if (missingPools.length)
    progress(
      `warning: the topology selects pool=${missingPools.join(', pool=')}, which no lab host has; those roles will stay unplaced`,
    );
  mkdirSync(o.dir, { recursive: true });
  checkLabDirReachable(o.dir);
  if (labExists(o.dir)) {
    const old = readState(o.dir);
    const alive = [old.nats.proc, old.coordinator.proc, ...old.nodes.map((n) => n.proc)].some((p) =>
      isAlive(p),
    );
    if (alive)
      throw labError('DROVER_ERR_LAB_EXISTS', `a lab is already running in ${o.dir}`, {
        hint: `\`drover lab status --dir ${o.dir}\` shows it; \`drover lab down --dir ${o.dir}\` stops it`,
      });
    progress(`found the state of a stopped lab in ${o.dir}; cleaning it up first`);
    const { labDown } = await import('./down.js');
    await labDown({ dir: o.dir });
  }
  const started = await withLock(o.dir, async () => {
    const p = labPaths(o.dir);
    rmSync(p.logs, { recursive: true, force: true });
    for (const d of [p.logs, p.natsDir, p.coordinatorData, p.nodesDir]) mkdirSync(d, { recursive: true });
    const names = netNames(o.dir);
    const bridgeAddress = o.netns ? `${o.subnet}.1` : undefined;
    const natsHost = bridgeAddress ?? '127.0.0.1';
    // the bridge does not exist yet: a port free on every address is free on it too
    const natsPort = await pickPort(o.netns ? '0.0.0.0' : natsHost, o.natsPort);
    const monitorPort = await freePort('127.0.0.1');
    const apiPort = await pickPort('127.0.0.1', o.apiPort);
    // --ha: three clustered nats-servers and three coordinators; the first of each takes the ports above
    const haPorts: HaPorts | undefined = o.ha
      ? {
          nats: await Promise.all(
            Array.from({ length: HA_SIZE }, async (_, i) => ({
              client: i === 0 ? natsPort : await freePort(o.netns ? '0.0.0.0' : natsHost),
              monitor: i === 0 ? monitorPort : await freePort('127.0.0.1'),
              route: await freePort(o.netns ? '0.0.0.0' : natsHost),
            })),
          ),
          api: await Promise.all(
            Array.from({ length: HA_SIZE }, async (_, i) => (i === 0 ? apiPort : freePort('127.0.0.1'))),
          ),
        }
      : undefined;
    const ha = haPorts ? haLayout(o.dir, natsHost, haPorts) : undefined;
    // with --ha, clients get every coordinator's API (they find the leader) and agents every server
    const apiUrl = ha ? ha.coordinators.map((c) => c.apiUrl).join(',') : `http://127.0.0.1:${apiPort}`;
    const natsUrl = `tls://${natsHost}:${natsPort}`;
    const busDir = join(p.coordinatorData, 'bus');
    const state: LabState = {
      version: 1,
      k8s: linkK8sBinaries(o.dir, k8s.state),
      dir: o.dir,
      createdAt: new Date().toISOString(),
      mode: o.netns ? 'netns' : 'loopback',
      subnet: o.subnet,
      ...(o.netns ? { bridge: names.bridge, bridgeAddress } : {}),
      distDir: o.distDir,
      nodeBinary: o.nodeBinary,
      topologyFile: o.topology,
      timings: { ...o.timings },
      hostnames: canSetHostnames(),
      bus: { dir: busDir, caFile: join(busDir, 'ca.crt') },
      nats: {
        url: natsUrl,
        monitorUrl: `http://127.0.0.1:${monitorPort}`,
        config: p.natsConfig,
        log: p.log('nats-server'),
      },
      coordinator: {
        apiUrl,
        dataDir: p.coordinatorData,
        config: p.coordinatorConfig,
        log: p.log('coordinator'),
        adminTokenFile: join(p.coordinatorData, 'admin-token'),
        cliConfig: p.cliConfig,
      },
      ...(ha ? { ha } : {}),
      nodes: layout.map((n) => {
        const np = p.node(n.name);
        return {
          name: n.name,
          pool: n.pool,
          address: n.address,
          labels: n.labels,
          dir: np.dir,
          dataDir: np.dataDir,
          rootDir: np.rootDir,
          config: np.config,
          log: p.log(`agent-${n.name}`),
          state: 'running' as const,
          ...(n.pending ? { pending: true } : {}),
          ...(o.netns ? { netns: names.netns(n.name), hostVeth: names.hostVeth(n.index) } : {}),
        };
      }),
    };
    await writeState(state);
    try {
      return await startFleet(
        o,
        state,
        { natsHost, natsPort, monitorPort, apiPort, bridgeAddress, haPorts },
        topo,
        layout,
        progress,
      );
    } catch (err) {
      // a start that failed half-way leaves nothing running; a fleet that runs but did not
      // converge is left up for inspection (the error says so)
      if ((err as { code?: string }).code === 'DROVER_ERR_LAB_TIMEOUT' && state.nodes.every((n) => n.proc))
        throw err;
      progress('start-up failed: stopping what had started');
      const { teardown } = await import('./down.js');
      await teardown(state).catch(() => {});
      throw err;
    }
  });
  return awaitConvergence(o, started, progress, t0, topo.changes);
}

interface FleetNet {
  natsHost: string;
  natsPort: number;
  monitorPort: number;
  apiPort: number;
  bridgeAddress: string | undefined;
  haPorts?: HaPorts;
}

async function startFleet(
  o: CompiledLabUpOptions,
  state: LabState,
  net: FleetNet,
  topo: ReturnType<typeof loadLabTopology>,
  layout: NodeLayout[],
  progress: Progress,
): Promise<LabState> {
  const p = labPaths(o.dir);
  const names = netNames(o.dir);
  const { natsHost, natsPort, monitorPort, apiPort, bridgeAddress } = net;
  const apiUrl = state.coordinator.apiUrl;
  const natsUrl = state.nats.url;

  if (o.netns) {
    progress(`network: bridge ${names.bridge} ${bridgeAddress}/24 and ${layout.length} namespaces`);
    // the monitor port is on loopback, the bus on the bridge: both must exist before nats starts
    await createBridge(names.bridge, `${bridgeAddress}/24`);
    for (const n of layout)
      await createNodeNet(names.bridge, {
        netns: names.netns(n.name),
        hostVeth: names.hostVeth(n.index),
        peerVeth: names.peerVeth(n.index),
        cidr: `${n.address}/24`,
        gateway: bridgeAddress!,
      });
  }

  for (const line of k8sSummary(state.k8s!)) progress(line);
  if (state.ha && net.haPorts) {
    // ---- --ha: three clustered nats-servers, three coordinators on the replicated store
    await startHaControl(o, state, net.haPorts, natsHost, progress);
  } else {
    // ---- nats-server: Drover's auth (operator, account, a user per node) and TLS, always
    await prepareLabBus(p, natsHost, natsPort, monitorPort);
    await spawnNats(state);
    progress(
      `nats-server     ${natsUrl}  (pid ${state.nats.proc!.pid}; auth: a user per host, TLS from the bus CA)`,
    );
    // ---- coordinator
    await writeFileAtomic(
      p.coordinatorConfig,
      coordinatorConfig(o, natsUrl, `127.0.0.1:${apiPort}`, p),
      0o600,
    );
    await spawnCoordinator(state);
  }
  const natsUrls = state.ha ? state.ha.nats.map((n) => n.url) : [natsUrl];
  const api = new LabApi(apiUrl, state.coordinator.adminTokenFile);
  await writeFileAtomic(
    p.cliConfig,
    `# The drover CLI's settings for this lab: export DROVER_CONFIG=${p.cliConfig}\nserver: ${apiUrl}\ntokenFile: ${state.coordinator.adminTokenFile}\n`,
    0o600,
  );
  if (!state.ha) progress(`coordinator     ${apiUrl}  (pid ${state.coordinator.proc!.pid})`);

  // ---- agents: each host joins with its own single-use token and pins the coordinator key
  // (a --pending host's token requires approval: it waits Pending for `drover approve`)
  for (const n of state.nodes) {
    const l = layout.find((x) => x.name === n.name)!;
    mkdirSync(n.rootDir, { recursive: true });
    mkdirSync(n.dataDir, { recursive: true });
    const t = await api.createJoinToken({
      description: `lab host ${n.name}`,
      ...(n.pending ? { requireApproval: true } : {}),
    });
    state.bus = { ...state.bus!, coordinatorKeyFingerprint: t.coordinatorKeyFingerprint };
    await writeFileAtomic(
      n.config,
      agentConfig(o, l, natsUrls, { token: t.token, fingerprint: t.coordinatorKeyFingerprint }, p),
      0o600,
    );
    n.proc = await startAgent(state, n);
    await writeState(state);
  }
  const counts = layout.reduce<Record<string, number>>((m, n) => {
    const k = n.pending ? 'pending' : n.pool;
    m[k] = (m[k] ?? 0) + 1;
    return m;
  }, {});
  const range = `${o.subnet}.2-${1 + layout.length}`;
  const pools = Object.entries(counts)
    .map(([k, v]) => `${v} ${k}`)
    .join(', ');
  progress(
    `agents          ${state.nodes.length} hosts (${pools}) on ${o.netns ? `namespaces ${range}` : range}${state.hostnames ? ', each with its own hostname' : ''}`,
  );
  const agentDead = () => {
    const dead = state.nodes.find((n) => !isAlive(n.proc));
    return dead
      ? exitedMessage(`the agent of ${dead.name}`, dead.log)
      : isAlive(state.coordinator.proc)
        ? undefined
        : exitedMessage('the coordinator', state.coordinator.log);
  };
  let lastReg = -1;
  const pendingCount = state.nodes.filter((n) => n.pending).length;
  const pendingNote = pendingCount
    ? `(Ready, or Pending for the ${pendingCount} whose token requires approval)`
    : 'Ready';
  await waitUntil(
    'every agent to register',
    async () => {
      const nodes = await api.nodes().catch(() => []);
      // a --pending host counts once the coordinator holds it Pending
      const ready = state.nodes.filter((x) =>
        nodes.some((n) => n.id === x.name && n.state === (x.pending ? 'Pending' : 'Ready')),
      ).length;
      if (ready !== lastReg) progress(`registered      ${ready}/${state.nodes.length} ${pendingNote}`);
      lastReg = ready;
      return ready === state.nodes.length;
    },
    { timeoutMs: Math.min(o.timeoutMs, 90_000), alive: agentDead, intervalMs: 500 },
  );

  // ---- topology
  for (const c of topo.changes) progress(`topology        ${c} (from the timing flags)`);
  await writeFileAtomic(p.topology, topo.text);
  // one PUT per cluster: a file of several documents holds several clusters
  for (const c of topo.clusters) await api.applyTopology(c.text);
  progress(
    `topology        applied ${o.topology}${topo.changes.length ? ` (as ${p.topology})` : ''}${topo.clusters.length > 1 ? `: clusters ${topo.clusters.map((c) => c.name).join(', ')}` : ''}`,
  );
  if (pendingCount)
    progress(
      `pending         ${state.nodes
        .filter((n) => n.pending)
        .map((n) => n.name)
        .join(', ')} joined with a token that requires approval: \`drover approve NODE\` admits them`,
    );
  return state;
}

/**
 * Waits for convergence without holding the lab lock, so `lab status`, `lab down` and the fault
 * commands work meanwhile. A host killed on purpose meanwhile (lab.json says so) is not an error.
 */
async function awaitConvergence(
  o: CompiledLabUpOptions,
  state: LabState,
  progress: Progress,
  t0: number,
  topologyChanges: string[],
): Promise<LabUpResult> {
  const p = labPaths(o.dir);
  const api = new LabApi(state.coordinator.apiUrl, state.coordinator.adminTokenFile);
  const apiUrl = state.coordinator.apiUrl;
  const agentDead = () => {
    let cur: LabState;
    try {
      cur = readState(o.dir);
    } catch {
      return 'lab.json disappeared (did `lab down` run?)';
    }
    const dead = cur.nodes.find((n) => n.state !== 'killed' && !isAlive(n.proc));
    if (dead) return exitedMessage(`the agent of ${dead.name}`, dead.log);
    return isAlive(cur.coordinator.proc) ? undefined : exitedMessage('the coordinator', cur.coordinator.log);
  };
  let converged = false;
  if (!o.noWait) {
    let last = '';
    await waitUntil(
      'the fleet to converge',
      async () => {
        const [st, roles] = await Promise.all([
          api.status().catch(() => undefined),
          api.roles().catch(() => []),
        ]);
        const line = roleLine(roles);
        if (line && line !== last) progress(`converging      ${line}`);
        last = line;
        converged = st?.converged === true;
        return converged;
      },
      { timeoutMs: Math.max(10_000, o.timeoutMs - (Date.now() - t0)), alive: agentDead, intervalMs: 1000 },
    ).catch(async (err) => {
      const st = await api.status().catch(() => undefined);
      const reasons = st?.clusters.flatMap((c) => c.reasons).slice(0, 8) ?? [];
      if ((err as { code?: string }).code === 'DROVER_ERR_LAB_TIMEOUT')
        throw labError(
          'DROVER_ERR_LAB_TIMEOUT',
          `the lab runs but did not converge within ${o.timeoutMs / 1000}s${reasons.length ? `:\n  ${reasons.join('\n  ')}` : ''}`,
          {
            hint: `it is left running: \`drover lab status --dir ${o.dir}\`, logs in ${p.logs}; \`drover lab down --dir ${o.dir}\` stops it`,
          },
        );
      if ((err as { code?: string }).code === 'DROVER_ERR_LAB_START')
        throw labError('DROVER_ERR_LAB_START', (err as Error).message, {
          hint: `the rest of the lab is left running: \`drover lab down --dir ${o.dir}\` stops it`,
        });
      throw err;
    });
  }
  const assigned = new Set((await api.assignments().catch(() => [])).map((a) => a.nodeId));
  const cp = state.nodes.filter((n) => n.pool === 'control-plane');
  return {
    state,
    spare: cp.find((n) => !assigned.has(n.name))?.name,
    victim: cp.find((n) => assigned.has(n.name))?.name,
    apiUrl,
    adminTokenFile: state.coordinator.adminTokenFile,
    cliConfig: p.cliConfig,
    converged,
    elapsedMs: Date.now() - t0,
    topologyChanges,
  };
}
