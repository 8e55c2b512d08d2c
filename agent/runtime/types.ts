import type { InstanceSpec, RestartPolicy, SystemdUnitOptions } from '../../protocol/index.js';

/**
 * One instance as a runtime runs it: the plan's spec with `${DROVER_ROOT}` already expanded. The
 * runtime never sees files or probes; the applier and the prober own those.
 */
export interface RunnableInstance {
  id: string;
  role: string;
  checksum: string;
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string;
  stopTimeoutMs: number;
  restart: RestartPolicy;
  unit?: SystemdUnitOptions;
  /** the role's system user, resolved on this host (agent/run-as.ts): the process runs with this uid and gid */
  runAs?: { user: string; group: string; uid: number; gid: number };
}

/** What a runtime says about one instance. `state` is the runtime's view; the agent adds health to get a phase. */
export type RuntimeState =
  /** spawned / unit activating */
  | 'starting'
  | 'running'
  /** exited; waiting out the restart backoff */
  | 'backoff'
  /** exited repeatedly (`crashLoopThreshold` failed starts in a row); still retried with backoff */
  | 'crashloop'
  | 'stopping'
  /** stopped on purpose, or exited cleanly under a policy that does not restart */
  | 'stopped'
  /** exited with an error under a policy that does not restart, or the unit failed */
  | 'failed';

export interface RuntimeInstanceStatus {
  id: string;
  checksum: string;
  state: RuntimeState;
  pid?: number;
  /** wall-clock ms when the current process started */
  startedAt?: number;
  /** automatic restarts after exits (planned restarts are not counted) */
  restarts: number;
  /** failed starts in a row; reset after a run of `resetAfterMs` */
  consecutiveFailures: number;
  lastError?: string;
  /** the exit code of the last exit, when the process exited (not killed by a signal) */
  lastExitCode?: number;
  /** when state is backoff/crashloop: the delay chosen before the next start */
  nextRestartDelayMs?: number;
  /** true when this runtime adopted a process it found running at start-up */
  adopted?: boolean;
}

export type RuntimeListener = (id: string) => void;

/**
 * The interface both runtimes implement; `test/unit/agent-runtime-conformance.test.ts` runs one
 * suite against each. Every method is idempotent: starting a running instance with the same
 * checksum does nothing, stopping a stopped one does nothing.
 */
export interface Runtime {
  readonly kind: 'process' | 'systemd';
  /** Finds instances left running by an earlier agent and adopts them. Returns their ids. */
  recover(): Promise<string[]>;
  /** Starts the instance, or does nothing if it runs with this checksum; restarts it if the checksum differs. */
  start(inst: RunnableInstance): Promise<void>;
  /** Stops and starts it again (a planned restart: the backoff and crash counters are reset). */
  restart(inst: RunnableInstance): Promise<void>;
  /**
   * Applies a new spec whose command, args and env are unchanged (only files changed) by sending
   * `signal` to the running process instead of restarting it — e.g. haproxy's seamless SIGUSR2
   * reload, which keeps established connections. Falls back to `restart` when nothing runs.
   */
  reload(inst: RunnableInstance, signal: NodeJS.Signals): Promise<void>;
  /** Stops it and keeps it known (as `stopped`), so `start` can bring it back. */
  stop(id: string): Promise<void>;
  /** Stops it and forgets it: pidfile or unit file removed. */
  remove(id: string): Promise<void>;
  status(id: string): RuntimeInstanceStatus | undefined;
  list(): RuntimeInstanceStatus[];
  /** The last `lines` lines of the instance's output. */
  logs(id: string, lines: number): Promise<string>;
  /** Called with an instance id whenever its status changes. Returns an unsubscribe function. */
  onChange(fn: RuntimeListener): () => void;
  /** Stops supervising; instances keep running (`stopAll()` first to stop them). Idempotent. */
  close(): Promise<void>;
  stopAll(): Promise<void>;
}

export const DEFAULT_STOP_TIMEOUT_MS = 10_000;

export function runnableFrom(spec: InstanceSpec, expand: (s: string) => string): RunnableInstance {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(spec.run.env)) env[k] = expand(v);
  return {
    id: spec.id,
    role: spec.role,
    checksum: spec.checksum,
    command: expand(spec.run.command),
    args: spec.run.args.map(expand),
    env,
    ...(spec.run.cwd !== undefined ? { cwd: expand(spec.run.cwd) } : {}),
    stopTimeoutMs: spec.run.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS,
    restart: spec.restart,
    ...(spec.run.unit ? { unit: spec.run.unit } : {}),
  };
}

/** Instance ids are `<role>#<ordinal>`; file and unit names use `<role>-<ordinal>`. */
export function safeInstanceName(id: string): string {
  return id.replace(/#/g, '-').replace(/[^A-Za-z0-9_.-]/g, '_');
}
