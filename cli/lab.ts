import { relative, resolve } from 'node:path';
import { killCoordinator, killNats, reviveCoordinator, reviveNats } from '../lab/ha.js';
import {
  CLUSTER_LABEL,
  DEFAULT_LAB_DIR,
  heal,
  k8sSummary,
  killHost,
  LabError,
  type LabState,
  type LabStatusReport,
  type LabUpOptions,
  labDown,
  labStatus,
  labUp,
  parseService,
  partition,
  revive,
  serviceLabel,
  startService,
  stopRole,
  stopService,
} from '../lab/index.js';
import { parseDuration } from '../lib/duration.js';

/**
 * `drover lab …`: the whole fleet on one machine (docs/lab.md). Parses the command line, calls
 * lab/, prints results. Exit codes follow the CLI's: 0 ok, 1 failed, 2 usage, 3 not
 * found, 5 timed out.
 */

export const LAB_HELP = `drover lab: run a whole Drover fleet on this machine (see docs/lab.md)

Usage: drover lab <command> [flags]

  up [--nodes 7] [--topology examples/ha.yaml] [--netns]   start nats-server, a coordinator and N agents,
                                                            apply the topology, wait until it converges
  status [-o json]                                          every lab process (running or not), hosts, roles,
                                                            convergence from the live API; exit 0 only when
                                                            all runs and the fleet is converged, else 1
  down                                                      stop everything, remove namespaces and veths
Fault injection:
  stop coordinator|nats [--kill]   stop the coordinator or nats-server (SIGTERM; --kill: SIGKILL)
  start coordinator|nats           start it again: same config, ports and data
  kill-host NODE          SIGKILL the host's agent and every process it runs
  revive NODE             start the host's agent again (same identity and directories)
  stop-role NODE ROLE     kill a role's process behind Drover's back (the agent restarts it)
  partition NODE          cut the host off the network (--netns); on loopback: freeze its agent (SIGSTOP)
  heal NODE               undo partition
  kill-coordinator ID|--leader   (--ha) kill -9 one coordinator; another takes the lease within ~2 s
  revive-coordinator ID          (--ha) start it again: it follows until it wins a lease
  kill-nats NAME                 (--ha) kill -9 one nats-server (nats-1…3); clients move to the others
  revive-nats NAME               (--ha) start it again

Flags:
  --dir DIR                 lab directory (default ./.lab, or $DROVER_LAB_DIR)
  up only:
  --nodes N                 hosts: 1 load balancer, up to 4 control-plane (3 + a spare), the rest workers (default 7)
  --topology FILE           topology to apply (default examples/ha.yaml); several documents: several
                            clusters, the hosts split between them (examples/superclusters.yaml)
  --pending N               N extra hosts pending-1… whose token requires approval (for \`drover approve\`)
  --netns                   one network namespace per host (root and iproute2 only)
  --subnet A.B.C            host addresses A.B.C.2… (default 127.0.0, or 10.77.0 with --netns)
  --api-port P              REST API port on 127.0.0.1 (default 7480, a free one if busy; 0: any)
  --nats-port P             nats-server port (default 4222, a free one if busy; 0: any)
  --heartbeat-interval D    agent heartbeat (default 2s)
  --unreachable-after D     silence before a host is Unreachable (default 10s)
  --reassign-after D        Unreachable time before stateless roles move (default 5s)
  --etcd-reassign-after D   Unreachable time before an etcd member is replaced (the topology says 60s; this flag wins)
  --timeout D               give up waiting for convergence after D (default 4m)
  --no-wait                 return once the topology is applied
  --log-level L             daemon log level (default info)
  --k8s-bin-dir DIR         real Kubernetes binaries (default: the build cache of scripts/k8s-binaries.sh,
                            else PATH); a component without a binary runs as the SIMULATED stand-in
  --simulated               run every Kubernetes component as the stand-in, even where binaries exist
  --ha                      coordinator HA: 3 nats-servers as a JetStream cluster, 3 coordinators on an
                            R3 store with a leader lease (\`drover get coordinators\` shows who leads)
`;

const VALUE = new Set([
  'dir',
  'nodes',
  'topology',
  'subnet',
  'api-port',
  'nats-port',
  'heartbeat-interval',
  'unreachable-after',
  'reassign-after',
  'etcd-reassign-after',
  'timeout',
  'log-level',
  'pending',
  'k8s-bin-dir',
  'output',
  'o',
]);
const BOOL = new Set(['netns', 'no-wait', 'kill', 'simulated', 'ha', 'leader', 'help', 'h']);
const UP_ONLY = [...VALUE, ...BOOL].filter(
  (f) => !['dir', 'output', 'o', 'help', 'h', 'kill', 'leader'].includes(f),
);

export interface LabIo {
  out: (text: string) => void;
  err: (text: string) => void;
  env: NodeJS.ProcessEnv;
}

const defaultIo: LabIo = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  env: process.env,
};

/** How the lab's bus is secured: a lab from before per-host tokens says it runs without auth. */
export function busLine(s: LabState): string {
  return s.bus
    ? `bus ${s.nats.url}   auth: a NATS user per host (JWT, ${s.bus.dir})   TLS: bus CA ${s.bus.caFile}`
    : `bus ${s.nats.url}   auth: NONE (a lab made before per-host join tokens: \`drover lab down\`, then \`lab up\` again)`;
}

function usageError(message: string): LabError {
  return new LabError('DROVER_ERR_LAB_USAGE', message, { hint: 'see `drover lab --help`' });
}

export function parseLabArgs(argv: string[]): {
  positionals: string[];
  flags: Record<string, string | true>;
} {
  const positionals: string[] = [];
  const flags: Record<string, string | true> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('-') || a === '-') {
      positionals.push(a);
      continue;
    }
    let name = a.replace(/^--?/, '');
    let value: string | undefined;
    const eq = name.indexOf('=');
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    if (VALUE.has(name)) {
      if (value === undefined) {
        value = argv[++i];
        if (value === undefined || value.startsWith('--')) throw usageError(`flag --${name} needs a value`);
      }
      flags[name === 'o' ? 'output' : name] = value;
    } else if (BOOL.has(name)) {
      if (value !== undefined && value !== 'true') throw usageError(`flag --${name} takes no value`);
      flags[name === 'h' ? 'help' : name] = true;
    } else throw usageError(`unknown flag ${a}`);
  }
  return { positionals, flags };
}

function intFlag(flags: Record<string, string | true>, name: string): number | undefined {
  const v = flags[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== 'string' || !/^\d+$/.test(v) || !Number.isSafeInteger(n))
    throw usageError(`--${name} takes a whole number; got ${JSON.stringify(v)}`);
  return n;
}

function strFlag(flags: Record<string, string | true>, name: string): string | undefined {
  const v = flags[name];
  return typeof v === 'string' ? v : undefined;
}

/** How to call this CLI again in the printed hints: `drover`, or `node dist/drover.mjs` from a checkout. */
function self(): string {
  const script = process.argv[1] ?? '';
  if (/dist\/drover\.mjs$/.test(script)) {
    const rel = relative(process.cwd(), script);
    return `node ${rel.startsWith('..') ? script : rel}`;
  }
  return 'drover';
}

function dirArg(dir: string): string {
  const rel = relative(process.cwd(), dir) || '.';
  return rel === DEFAULT_LAB_DIR ? '' : ` --dir ${rel.startsWith('..') ? dir : rel}`;
}

function pad(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 2)))
        .join('')
        .trimEnd(),
    )
    .join('\n');
}

export function formatStatus(r: LabStatusReport): string {
  const s = r.state;
  const lines: string[] = [];
  // from the live API only: never "converged" when the coordinator cannot be asked
  const conv =
    r.converged === true
      ? 'converged'
      : r.converged === false
        ? 'not converged'
        : `convergence unknown (${r.apiError ?? 'the API did not answer'})`;
  const svc = (name: string, st: string, pid: number | undefined) =>
    `${name} ${st}${pid !== undefined && st !== 'down' ? ` (pid ${pid})` : ''}`;
  lines.push(
    `lab ${s.dir} (${s.mode}${s.bridge ? `, bridge ${s.bridge} ${s.bridgeAddress}` : ''}): ${svc('nats-server', r.nats, r.natsPid)}, ${svc('coordinator', r.coordinator, r.coordinatorPid)}, ${conv}`,
  );
  if (r.ha) {
    lines.push(
      `HA: nats ${r.ha.servers.map((n) => `${n.name} ${n.status}${n.pid ? ` (pid ${n.pid})` : ''}`).join(', ')}`,
    );
    lines.push(
      `HA: coordinators ${r.ha.coordinators.map((c) => `${c.id} ${c.status === 'down' ? 'down' : (c.role ?? 'running')}${c.epoch !== undefined ? ` epoch ${c.epoch}` : ''}${c.pid ? ` (pid ${c.pid})` : ''}`).join(', ')}`,
    );
  }
  lines.push(`API ${s.coordinator.apiUrl}   admin token ${s.coordinator.adminTokenFile}`);
  lines.push(busLine(s));
  if (s.k8s) for (const l of k8sSummary(s.k8s)) lines.push(l.trim());
  lines.push('');
  const rows = [
    [
      'HOST',
      'POOL',
      'ADDRESS',
      'LAB',
      'AGENT',
      'DROVER',
      'PROCESSES (* simulated stand-in, ~ simulated kwok node)',
    ],
  ];
  for (const n of r.nodes) {
    const mark = new Map(
      (n.api?.instances ?? [])
        .filter((i) => i.simulated)
        .map((i) => [i.id, i.simulator === 'kwok' ? '~' : '*']),
    );
    rows.push([
      n.name,
      n.pool,
      n.address,
      n.labState,
      n.agent === 'down' ? 'down' : `${n.agent} ${n.pid}`,
      n.api?.state ?? '?',
      n.processes.map((p) => `${p.instanceId}${mark.get(p.instanceId) ?? ''}`).join(' ') || '-',
    ]);
  }
  lines.push(pad(rows));
  if (r.roles?.length) {
    lines.push('');
    const several = new Set(r.roles.map((x) => x.cluster)).size > 1;
    const rr = [['ROLE', 'STATUS', 'HEALTHY', 'SIMULATED', 'WHERE']];
    for (const role of r.roles)
      rr.push([
        several ? `${role.cluster}/${role.name}` : role.name,
        role.status,
        `${role.healthy}/${role.desired}`,
        role.simulated
          ? `${role.simulated} (${role.instances.some((i) => i.simulator === 'kwok') ? 'kwok' : 'stand-in'})`
          : '-',
        role.instances.map((i) => `${i.id}@${i.nodeId ?? '?'}`).join(' '),
      ]);
    lines.push(pad(rr));
    const reasons = r.roles.flatMap((x) => x.reasons.map((y) => `${x.name}: ${y}`));
    if (reasons.length) lines.push('', ...reasons.slice(0, 10).map((x) => `  ! ${x}`));
  }
  if (r.duplicates.length)
    lines.push(
      '',
      ...r.duplicates.map((d) =>
        d.stale
          ? `  ~ ${d.instanceId} also runs on a partitioned host (${d.nodes.join(' and ')}): the stale copy is fenced when it heals`
          : `  !! ${d.instanceId} has processes on ${d.nodes.join(' and ')} (runs twice)`,
      ),
    );
  if (r.notes.length) lines.push('', ...r.notes.map((x) => `  note: ${x}`));
  lines.push(
    '',
    r.problems.length
      ? `NOT READY (exit 1):\n${r.problems.map((x) => `  - ${x}`).join('\n')}`
      : 'OK: every lab process runs and the fleet is converged',
  );
  return `${lines.join('\n')}\n`;
}

async function up(flags: Record<string, string | true>, io: LabIo, dir: string): Promise<number> {
  const dur = (name: string): number | undefined => {
    const v = strFlag(flags, name);
    if (v === undefined) return undefined;
    const ms = parseDuration(v);
    if (ms === undefined || ms <= 0)
      throw usageError(`--${name} takes a duration such as 90s or 4m; got ${JSON.stringify(v)}`);
    return ms;
  };
  const opts: LabUpOptions = {
    dir,
    nodes: intFlag(flags, 'nodes'),
    topology: strFlag(flags, 'topology'),
    netns: flags.netns === true,
    subnet: strFlag(flags, 'subnet'),
    apiPort: intFlag(flags, 'api-port'),
    natsPort: intFlag(flags, 'nats-port'),
    heartbeatInterval: strFlag(flags, 'heartbeat-interval'),
    unreachableAfter: strFlag(flags, 'unreachable-after'),
    reassignAfter: strFlag(flags, 'reassign-after'),
    etcdReassignAfter: strFlag(flags, 'etcd-reassign-after'),
    timeoutMs: dur('timeout'),
    noWait: flags['no-wait'] === true,
    logLevel: strFlag(flags, 'log-level'),
    pending: intFlag(flags, 'pending'),
    k8sBinDir: strFlag(flags, 'k8s-bin-dir'),
    simulated: flags.simulated === true,
    ha: flags.ha === true,
  };
  io.out(`Starting a Drover lab in ${dir}${opts.netns ? ' (network namespaces)' : ''}\n`);
  // Ctrl-C stops waiting, not the lab: what started keeps running until `lab down`.
  const onInterrupt = () => {
    const d = dirArg(dir);
    io.err(
      `\ninterrupted: what started keeps running; \`drover lab status${d}\` shows it, \`drover lab down${d}\` stops it\n`,
    );
    process.exit(130);
  };
  process.once('SIGINT', onInterrupt);
  let r: Awaited<ReturnType<typeof labUp>>;
  try {
    r = await labUp(opts, (line) => io.out(`  ${line}\n`));
  } finally {
    process.off('SIGINT', onInterrupt);
  }
  const s = r.state;
  const d = dirArg(s.dir);
  const me = self();
  const lb = s.nodes.find((n) => n.pool === 'lb');
  const pending = s.nodes.filter((n) => n.pending);
  const clusters = [...new Set(s.nodes.map((n) => n.labels[CLUSTER_LABEL]).filter(Boolean))];
  io.out(
    [
      '',
      `Lab up in ${(r.elapsedMs / 1000).toFixed(0)}s: ${s.nodes.length} hosts, ${r.converged ? 'converged' : 'topology applied (not waiting for convergence)'}.`,
      `  API          ${r.apiUrl}   (open it in a browser for the dashboard)`,
      `  admin token  ${r.adminTokenFile}`,
      `  CLI config   ${r.cliConfig}`,
      `  logs         ${s.dir}/logs`,
      ...(lb
        ? [
            `  Kubernetes API through the load balancer: https://${lb.address}:6443 (components marked * are SIMULATED stand-ins)`,
          ]
        : []),
      '',
      'Next:',
      `  export DROVER_CONFIG=${r.cliConfig}`,
      `  ${me} get nodes`,
      `  ${me} get roles`,
      `  ${me} lab status${d}`,
      ...(r.victim
        ? [
            `  ${me} lab stop-role${d} ${r.victim} kube-apiserver    # the agent restarts it`,
            `  ${me} lab kill-host${d} ${r.victim}                   # its roles move to ${r.spare ? `the spare, ${r.spare}` : 'another host'}`,
          ]
        : []),
      `  ${me} lab stop${d} coordinator          # lab status says it is down; lab start${d} coordinator`,
      ...pending.map(
        (n) =>
          `  ${me} approve ${n.name}                  # its token requires approval: Pending until approved`,
      ),
      ...(clusters.length > 1
        ? [
            `  ${me} superclusters                       # clusters ${clusters.join(', ')}`,
            `  ${me} tenants set default --quota cpu=200m,memory=200Mi   # slices over the super clusters`,
          ]
        : []),
      `  ${me} events --watch`,
      `  ${me} lab down${d}`,
      '',
    ].join('\n'),
  );
  return 0;
}

/** Runs `drover lab ARGS`; returns the exit code. Never throws. */
export async function runLab(argv: string[], io: LabIo = defaultIo): Promise<number> {
  try {
    const { positionals, flags } = parseLabArgs(argv);
    const cmd = positionals[0];
    if (flags.help || !cmd || cmd === 'help') {
      io.out(LAB_HELP);
      return cmd || flags.help ? 0 : 2;
    }
    const dir = resolve(strFlag(flags, 'dir') ?? io.env.DROVER_LAB_DIR ?? DEFAULT_LAB_DIR);
    if (cmd !== 'up') {
      const misplaced = UP_ONLY.filter((f) => flags[f] !== undefined);
      if (misplaced.length) throw usageError(`--${misplaced[0]} is a flag of \`lab up\`, not \`lab ${cmd}\``);
    }
    if (flags.kill && cmd !== 'stop')
      throw usageError(`--kill is a flag of \`lab stop\`, not \`lab ${cmd}\``);
    const args = positionals.slice(1);
    const need = (n: number, what: string) => {
      if (args.length !== n) throw usageError(`usage: drover lab ${cmd} ${what}`);
    };
    switch (cmd) {
      case 'up':
        need(0, '[flags]');
        return await up(flags, io, dir);
      case 'down': {
        need(0, '[--dir DIR]');
        const r = await labDown({ dir });
        io.out(
          `Lab in ${dir} is down: ${r.stopped.length} processes stopped${r.network.length ? `, ${r.network.length - 1} network namespaces, their veths and the bridge removed` : ''}; logs kept in ${dir}/logs\n`,
        );
        return 0;
      }
      case 'status': {
        need(0, '[--dir DIR] [-o json]');
        const r = await labStatus({ dir });
        if (flags.output === 'json') {
          const { state, ...rest } = r;
          io.out(
            `${JSON.stringify({ dir: state.dir, mode: state.mode, apiUrl: state.coordinator.apiUrl, ok: !rest.problems.length, ...rest, converged: rest.converged ?? null }, null, 2)}\n`,
          );
        } else if (flags.output !== undefined) throw usageError('-o takes json (or nothing, for the table)');
        else io.out(formatStatus(r));
        // like `kubectl wait`: 0 only when every lab process runs (nats-server, the coordinator,
        // every agent), the live API says converged and nothing runs twice; 1 otherwise
        return r.problems.length ? 1 : 0;
      }
      case 'kill-host': {
        need(1, 'NODE');
        const r = await killHost(dir, args[0]!);
        io.out(
          `${r.node}: killed ${r.killed.length} processes (SIGKILL): ${r.killed.map((k) => `${k.what} [${k.pid}]`).join(', ')}\n`,
        );
        return 0;
      }
      case 'revive': {
        need(1, 'NODE');
        const r = await revive(dir, args[0]!);
        io.out(`${r.node}: agent started again (pid ${r.pid}); it re-registers with the same identity\n`);
        return 0;
      }
      case 'stop-role': {
        need(2, 'NODE ROLE');
        const r = await stopRole(dir, args[0]!, args[1]!);
        io.out(
          `${r.node}: killed ${r.instances.map((i) => `${i.instanceId} [${i.pid}]`).join(', ')} behind Drover's back\n`,
        );
        return 0;
      }
      case 'stop': {
        need(1, 'coordinator|nats [--kill]');
        const r = await stopService(dir, parseService(args[0]!), { kill: flags.kill === true });
        io.out(
          `${serviceLabel(r.service)} stopped (pid ${r.pid}, ${r.how}); the agents keep running and reconnect when \`drover lab start${dirArg(dir)} ${r.service}\` brings it back\n`,
        );
        return 0;
      }
      case 'start': {
        need(1, 'coordinator|nats');
        const r = await startService(dir, parseService(args[0]!));
        io.out(`${serviceLabel(r.service)} started (pid ${r.pid}): ${r.how}\n`);
        return 0;
      }
      case 'partition': {
        need(1, 'NODE');
        const r = await partition(dir, args[0]!);
        io.out(`${r.node} partitioned: ${r.how}\n`);
        return 0;
      }
      case 'kill-coordinator': {
        if (flags.leader === true) need(0, '--leader');
        else need(1, 'ID|--leader');
        const r = await killCoordinator(dir, flags.leader === true ? { leader: true } : { id: args[0]! });
        io.out(
          `coordinator ${r.id} killed (SIGKILL, pid ${r.pid})${r.wasLeader ? '; it led: a follower takes the lease once it runs out' : '; it was a follower'}; \`drover lab revive-coordinator${dirArg(dir)} ${r.id}\` brings it back\n`,
        );
        return 0;
      }
      case 'revive-coordinator': {
        need(1, 'ID');
        const r = await reviveCoordinator(dir, args[0]!);
        io.out(`coordinator ${r.id} started again (pid ${r.pid}); it follows until it wins a lease\n`);
        return 0;
      }
      case 'kill-nats': {
        need(1, 'NAME');
        const r = await killNats(dir, args[0]!);
        io.out(
          `${r.name} killed (SIGKILL, pid ${r.pid}); coordinators and agents move to the other servers\n`,
        );
        return 0;
      }
      case 'revive-nats': {
        need(1, 'NAME');
        const r = await reviveNats(dir, args[0]!);
        io.out(`${r.name} started again (pid ${r.pid})\n`);
        return 0;
      }
      case 'heal': {
        need(1, 'NODE');
        const r = await heal(dir, args[0]!);
        io.out(`${r.node} healed: ${r.how}\n`);
        return 0;
      }
      default:
        throw usageError(`unknown lab command ${JSON.stringify(cmd)}`);
    }
  } catch (err) {
    if (err instanceof LabError) {
      io.err(`drover lab: ${err.message}\n${err.hint ? `  hint: ${err.hint}\n` : ''}`);
      return err.exit;
    }
    io.err(`drover lab: unexpected error: ${(err as Error).stack ?? err}\n`);
    return 1;
  }
}
