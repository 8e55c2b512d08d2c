import { resolve } from 'node:path';
import { parseDuration } from '../lib/duration.js';
import { labError } from './errors.js';
import { checkSubnet, DEFAULT_NODES, fleetLayout, MIN_NODES } from './layout.js';
import { defaultDistDir, defaultTopologyFile } from './paths.js';

/**
 * `lab up` options in three steps: `LabUpOptions` (every field optional, defaults below),
 * `DEFAULT_LAB_UP`, and `compileLabUpOptions()` which validates, resolves paths and freezes.
 */
export interface LabUpOptions {
  /** lab directory (default `./.lab`, resolved against the working directory) */
  dir?: string;
  /** number of hosts (default 7: 1 load balancer, 4 control-plane including the spare, 2 workers) */
  nodes?: number;
  /** topology to apply (default examples/ha.yaml next to the bundles) */
  topology?: string;
  /** one network namespace per host (root and `ip` only; default false: loopback addresses) */
  netns?: boolean;
  /** first three octets of host addresses (default 127.0.0 on loopback, 10.77.0 with --netns) */
  subnet?: string;
  /** REST API port on 127.0.0.1 (default 7480; 0 picks a free one; a busy default falls back to a free one) */
  apiPort?: number;
  /** nats-server client port (default 4222, same fallback) */
  natsPort?: number;
  /**
   * coordinator timings, as durations (`3s`); unset: the coordinator's defaults (heartbeat 2s,
   * unreachable 10s, reassign 5s, etcd as the topology says). `etcdReassignAfter` also replaces
   * the topology's `roles.etcd.repair.reassignAfter` (examples/ha.yaml says 60s), and
   * `reassignAfter` that of the other roles that set one: the lab applies that derived copy.
   */
  heartbeatInterval?: string;
  unreachableAfter?: string;
  reassignAfter?: string;
  etcdReassignAfter?: string;
  /** how long to wait for registration plus convergence (default 4 minutes) */
  timeoutMs?: number;
  /** return once the processes run and the topology is applied, without waiting for convergence */
  noWait?: boolean;
  /** where the bundles are (default: next to this module, else the repo's dist/) */
  distDir?: string;
  /** the node binary that runs the bundles (default: this process's) */
  nodeBinary?: string;
  /** daemon log level (default info) */
  logLevel?: string;
  /** extra hosts whose join token requires approval: Pending until `drover approve` (default 0) */
  pending?: number;
  /** where the real Kubernetes binaries are (default: the build cache of scripts/k8s-binaries.sh, else PATH) */
  k8sBinDir?: string;
  /** run every Kubernetes component as the stand-in, even where real binaries exist */
  simulated?: boolean;
  /** coordinator HA: three nats-servers as a JetStream cluster and three coordinators (lab/ha.ts) */
  ha?: boolean;
}

export const DEFAULT_LAB_DIR = '.lab';
export const DEFAULT_API_PORT = 7480;
export const DEFAULT_NATS_PORT = 4222;
export const DEFAULT_LAB_TIMEOUT_MS = 4 * 60_000;
export const DEFAULT_SUBNET = { loopback: '127.0.0', netns: '10.77.0' } as const;

export interface CompiledLabUpOptions {
  readonly dir: string;
  readonly nodes: number;
  readonly topology: string;
  readonly netns: boolean;
  readonly subnet: string;
  readonly apiPort: number;
  readonly natsPort: number;
  readonly timings: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  readonly noWait: boolean;
  readonly distDir: string;
  readonly nodeBinary: string;
  readonly logLevel: string;
  readonly pending: number;
  readonly k8sBinDir: string | undefined;
  readonly simulated: boolean;
  readonly ha: boolean;
}

const TIMING_KEYS = ['heartbeatInterval', 'unreachableAfter', 'reassignAfter', 'etcdReassignAfter'] as const;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'];

function port(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < 0 || v > 65535)
    throw labError(
      'DROVER_ERR_LAB_USAGE',
      `--${name} must be a port number 0-65535 (0: any free port); got ${v}`,
    );
  return v;
}

export function compileLabUpOptions(o: LabUpOptions = {}, cwd = process.cwd()): CompiledLabUpOptions {
  const netns = o.netns ?? false;
  const nodes = o.nodes ?? DEFAULT_NODES;
  const subnet = checkSubnet(o.subnet ?? (netns ? DEFAULT_SUBNET.netns : DEFAULT_SUBNET.loopback), netns);
  const pending = o.pending ?? 0;
  // the range; the minimum depends on the topology (one host per cluster in a file of several,
  // else the HA layout's 4), which labUp checks with the layout before anything starts
  fleetLayout(Number.isInteger(nodes) && nodes >= 1 ? Math.max(nodes, MIN_NODES) : nodes, subnet, {
    pending,
  });
  const timings: Record<string, string> = {};
  for (const k of TIMING_KEYS) {
    const v = o[k];
    if (v === undefined) continue;
    const ms = parseDuration(v);
    const flag = k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    if (ms === undefined || ms <= 0)
      throw labError(
        'DROVER_ERR_LAB_USAGE',
        `--${flag} takes a duration such as 3s or 1m; got ${JSON.stringify(v)}`,
      );
    timings[k] = v;
  }
  const hb = timings.heartbeatInterval ? parseDuration(timings.heartbeatInterval)! : 2000;
  if (hb < 200) throw labError('DROVER_ERR_LAB_USAGE', '--heartbeat-interval must be at least 200ms');
  if (timings.unreachableAfter && parseDuration(timings.unreachableAfter)! < 2 * hb)
    throw labError(
      'DROVER_ERR_LAB_USAGE',
      `--unreachable-after (${timings.unreachableAfter}) must be at least two heartbeat intervals (${hb}ms), or every node flaps`,
    );
  const timeoutMs = o.timeoutMs ?? DEFAULT_LAB_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
    throw labError('DROVER_ERR_LAB_USAGE', `--timeout must be a positive duration; got ${timeoutMs}`);
  const logLevel = o.logLevel ?? 'info';
  if (!LOG_LEVELS.includes(logLevel))
    throw labError(
      'DROVER_ERR_LAB_USAGE',
      `--log-level is one of ${LOG_LEVELS.join(', ')}; got ${JSON.stringify(logLevel)}`,
    );
  const distDir = resolve(cwd, o.distDir ?? defaultDistDir());
  return Object.freeze({
    dir: resolve(cwd, o.dir ?? DEFAULT_LAB_DIR),
    nodes,
    topology: resolve(cwd, o.topology ?? defaultTopologyFile(distDir)),
    netns,
    subnet,
    apiPort: port('api-port', o.apiPort, DEFAULT_API_PORT),
    natsPort: port('nats-port', o.natsPort, DEFAULT_NATS_PORT),
    timings: Object.freeze(timings),
    timeoutMs,
    noWait: o.noWait ?? false,
    distDir,
    nodeBinary: o.nodeBinary ?? process.execPath,
    logLevel,
    pending,
    k8sBinDir: o.k8sBinDir === undefined ? undefined : resolve(cwd, o.k8sBinDir),
    simulated: o.simulated ?? false,
    ha: o.ha ?? false,
  });
}
