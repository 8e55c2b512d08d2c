import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { copyFile, readdir, readFile, rm, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { writeFileAtomic } from '../../lib/atomic-file.js';
import { Backoff } from '../../lib/backoff.js';
import { type Clock, systemClock } from '../../lib/clock.js';
import { silentLogger } from '../../lib/logger.js';
import { RuntimeListeners } from './listeners.js';
import { isSameProcessAlive, processStartTime } from './procfs.js';
import { tailFile } from './tail.js';
import {
  type RunnableInstance,
  type Runtime,
  type RuntimeInstanceStatus,
  type RuntimeListener,
  type RuntimeState,
  safeInstanceName,
} from './types.js';

export interface ProcessRuntimeOptions {
  /** pidfiles go in `<dataDir>/run`, logs in `<dataDir>/logs` */
  dataDir: string;
  /** drives restart backoff, the stable-run reset and the poll loop; default the system clock */
  clock?: Clock;
  logger?: Logger;
  /** a log file past this size is copied to `.1` and truncated; default 10 MiB */
  logMaxBytes?: number;
  /** how often adopted processes are checked for exit and logs for size; default 1000 ms */
  pollIntervalMs?: number;
  /** environment every role gets under its plan env; default `{ PATH }` of the agent */
  baseEnv?: Record<string, string>;
  /**
   * Asked when a crashed instance's backoff is over: true holds the restart (asked again every
   * 250 ms) for at most `restartHoldMaxMs`, then it restarts anyway (static stability). The agent
   * passes `Session.planMayBeStale`.
   */
  restartHold?: () => boolean;
  /** default 10 s */
  restartHoldMaxMs?: number;
}

interface PidFile {
  id: string;
  pid: number;
  startTime: string;
  startedAt: number;
  restarts: number;
  inst: RunnableInstance;
}

interface Entry {
  inst: RunnableInstance;
  state: RuntimeState;
  wantRunning: boolean;
  pid?: number;
  startTime?: string;
  startedAt?: number;
  startedClock?: number;
  restarts: number;
  consecutiveFailures: number;
  lastError?: string;
  lastExitCode?: number;
  nextRestartDelayMs?: number;
  adopted: boolean;
  child?: ChildProcess;
  backoff: Backoff;
  restartTimer?: unknown;
  stableTimer?: unknown;
  /** bumped on every spawn so a late exit event of an earlier process is ignored */
  gen: number;
  exited: boolean;
}

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function backoffFor(inst: RunnableInstance): Backoff {
  const initialMs = inst.restart.initialBackoffMs;
  return new Backoff({ initialMs, maxMs: Math.max(initialMs, inst.restart.maxBackoffMs), factor: 2 });
}

/** A not-yet-spawned instance the runtime is to start. */
function newEntry(inst: RunnableInstance): Entry {
  return {
    inst,
    state: 'starting',
    wantRunning: true,
    restarts: 0,
    consecutiveFailures: 0,
    adopted: false,
    backoff: backoffFor(inst),
    gen: 0,
    exited: true,
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Supervises role processes itself. Children run detached in their own process group with their
 * output going straight to a log file, so they outlive the agent; a pidfile records each pid with
 * its start time, so the next agent re-adopts exactly the processes it left, never a recycled pid.
 */
export class ProcessRuntime implements Runtime {
  readonly kind = 'process' as const;
  private readonly entries = new Map<string, Entry>();
  private readonly listeners: RuntimeListeners;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly runDir: string;
  private readonly logDir: string;
  private readonly logMaxBytes: number;
  private readonly pollMs: number;
  private readonly baseEnv: Record<string, string>;
  private readonly restartHold?: () => boolean;
  private readonly restartHoldMaxMs: number;
  private pollTimer: unknown;
  private closed = false;

  constructor(opts: ProcessRuntimeOptions) {
    this.clock = opts.clock ?? systemClock;
    this.log = opts.logger ?? silentLogger;
    this.listeners = new RuntimeListeners(this.log);
    this.runDir = join(opts.dataDir, 'run');
    this.logDir = join(opts.dataDir, 'logs');
    this.logMaxBytes = opts.logMaxBytes ?? 10 * 1024 * 1024;
    this.pollMs = opts.pollIntervalMs ?? 1000;
    this.baseEnv = opts.baseEnv ?? { PATH: process.env.PATH || DEFAULT_PATH };
    this.restartHold = opts.restartHold;
    this.restartHoldMaxMs = opts.restartHoldMaxMs ?? 10_000;
    mkdirSync(this.runDir, { recursive: true });
    mkdirSync(this.logDir, { recursive: true });
    this.schedulePoll();
  }

  onChange(fn: RuntimeListener): () => void {
    return this.listeners.add(fn);
  }

  logPath(id: string): string {
    return join(this.logDir, `${safeInstanceName(id)}.log`);
  }

  private pidPath(id: string): string {
    return join(this.runDir, `${safeInstanceName(id)}.json`);
  }

  async recover(): Promise<string[]> {
    const adopted: string[] = [];
    let names: string[] = [];
    try {
      names = await readdir(this.runDir);
    } catch {
      return adopted;
    }
    for (const name of names.filter((n) => n.endsWith('.json'))) {
      const path = join(this.runDir, name);
      let pf: PidFile;
      try {
        pf = JSON.parse(await readFile(path, 'utf8')) as PidFile;
        if (!pf.id || !Number.isInteger(pf.pid) || !pf.inst) throw new Error('incomplete pidfile');
      } catch (err) {
        this.log.warn({ err, path }, 'ignoring unreadable pidfile');
        await rm(path, { force: true });
        continue;
      }
      if (this.entries.has(pf.id)) continue;
      if (!isSameProcessAlive(pf.pid, pf.startTime)) {
        this.log.info({ instance: pf.id, pid: pf.pid }, 'pidfile names a process that is gone; not adopting');
        await rm(path, { force: true });
        continue;
      }
      const e: Entry = {
        inst: pf.inst,
        state: 'running',
        wantRunning: true,
        pid: pf.pid,
        startTime: pf.startTime,
        startedAt: pf.startedAt,
        // the pidfile's start is on the runtime's clock (a start ahead of now counts as now)
        startedClock: Math.min(this.clock.now(), pf.startedAt),
        restarts: pf.restarts ?? 0,
        consecutiveFailures: 0,
        adopted: true,
        backoff: backoffFor(pf.inst),
        gen: 1,
        exited: false,
      };
      this.entries.set(pf.id, e);
      this.armStableTimer(e, e.gen);
      adopted.push(pf.id);
      this.log.info({ instance: pf.id, pid: pf.pid }, 'adopted a running instance');
      this.listeners.emit(pf.id);
    }
    return adopted;
  }

  async start(inst: RunnableInstance): Promise<void> {
    const e = this.entries.get(inst.id);
    if (e) {
      if (e.inst.checksum !== inst.checksum) return this.restart(inst);
      e.inst = inst;
      if (e.wantRunning && e.state !== 'stopped' && e.state !== 'failed') return;
      e.wantRunning = true;
      e.backoff.reset();
      e.consecutiveFailures = 0;
      await this.spawnEntry(e);
      return;
    }
    const fresh = newEntry(inst);
    this.entries.set(inst.id, fresh);
    await this.spawnEntry(fresh);
  }

  async restart(inst: RunnableInstance): Promise<void> {
    const e = this.entries.get(inst.id);
    if (e) await this.stopEntry(e);
    const next = e ?? newEntry(inst);
    next.inst = inst;
    next.backoff = backoffFor(inst);
    next.consecutiveFailures = 0;
    next.wantRunning = true;
    this.entries.set(inst.id, next);
    await this.spawnEntry(next);
  }

  async reload(inst: RunnableInstance, signal: NodeJS.Signals): Promise<void> {
    const e = this.entries.get(inst.id);
    if (!e || e.pid === undefined || (e.state !== 'running' && e.state !== 'crashloop'))
      return this.restart(inst);
    try {
      process.kill(e.pid, signal);
    } catch (err) {
      this.log.warn({ err, instance: inst.id, signal }, 'reload signal failed; restarting instead');
      return this.restart(inst);
    }
    e.inst = inst;
    this.log.info({ instance: inst.id, pid: e.pid, signal }, 'reloaded');
    const pf: PidFile = {
      id: inst.id,
      pid: e.pid,
      startTime: e.startTime ?? '',
      startedAt: e.startedAt ?? this.clock.now(),
      restarts: e.restarts,
      inst,
    };
    await writeFileAtomic(this.pidPath(inst.id), JSON.stringify(pf), 0o644);
    this.listeners.emit(inst.id);
  }

  async stop(id: string): Promise<void> {
    const e = this.entries.get(id);
    if (e) await this.stopEntry(e);
  }

  async remove(id: string): Promise<void> {
    const e = this.entries.get(id);
    if (!e) {
      await rm(this.pidPath(id), { force: true });
      return;
    }
    await this.stopEntry(e);
    this.entries.delete(id);
    await rm(this.pidPath(id), { force: true });
    this.listeners.emit(id);
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.entries.values()].map((e) => this.stopEntry(e)));
  }

  status(id: string): RuntimeInstanceStatus | undefined {
    const e = this.entries.get(id);
    return e ? this.describe(id, e) : undefined;
  }

  list(): RuntimeInstanceStatus[] {
    return [...this.entries].map(([id, e]) => this.describe(id, e));
  }

  async logs(id: string, lines: number): Promise<string> {
    return tailFile(this.logPath(id), lines);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.clock.clearTimeout(this.pollTimer);
    for (const e of this.entries.values()) {
      this.clock.clearTimeout(e.restartTimer);
      this.clock.clearTimeout(e.stableTimer);
      e.child?.removeAllListeners('exit');
      e.child?.removeAllListeners('error');
    }
    this.listeners.clear();
  }

  private describe(id: string, e: Entry): RuntimeInstanceStatus {
    return {
      id,
      checksum: e.inst.checksum,
      state: e.state,
      ...(e.pid !== undefined ? { pid: e.pid } : {}),
      ...(e.startedAt !== undefined && e.pid !== undefined ? { startedAt: e.startedAt } : {}),
      restarts: e.restarts,
      consecutiveFailures: e.consecutiveFailures,
      ...(e.lastError !== undefined ? { lastError: e.lastError } : {}),
      ...(e.lastExitCode !== undefined ? { lastExitCode: e.lastExitCode } : {}),
      ...(e.nextRestartDelayMs !== undefined &&
      (e.state === 'backoff' || e.state === 'crashloop') &&
      e.pid === undefined
        ? { nextRestartDelayMs: e.nextRestartDelayMs }
        : {}),
      ...(e.adopted ? { adopted: true } : {}),
    };
  }

  private spawnEntry(e: Entry): Promise<void> {
    if (this.closed) return Promise.resolve();
    const inst = e.inst;
    this.clock.clearTimeout(e.restartTimer);
    e.restartTimer = undefined;
    const gen = ++e.gen;
    e.adopted = false;
    e.exited = false;
    let fd: number | undefined;
    let child: ChildProcess;
    try {
      fd = openSync(this.logPath(inst.id), 'a', 0o640);
      child = spawn(inst.command, inst.args, {
        detached: true,
        stdio: ['ignore', fd, fd],
        env: { ...this.baseEnv, ...inst.env },
        cwd: inst.cwd ?? '/',
        // least privilege: the role's system user (etcd, haproxy), as systemd's User=/Group=
        ...(inst.runAs ? { uid: inst.runAs.uid, gid: inst.runAs.gid } : {}),
      });
    } catch (err) {
      if (fd !== undefined) closeSync(fd);
      queueMicrotask(() => this.onExit(e, gen, null, null, err as Error));
      return Promise.resolve();
    }
    closeSync(fd);
    e.child = child;
    child.once('error', (err) => {
      if (child.pid === undefined) this.onExit(e, gen, null, null, err);
    });
    if (child.pid === undefined) return Promise.resolve(); // the 'error' event follows
    child.once('exit', (code, signal) => this.onExit(e, gen, code, signal));
    child.unref();
    e.pid = child.pid;
    e.startTime = processStartTime(child.pid) ?? '';
    e.startedAt = this.clock.now();
    e.startedClock = e.startedAt;
    e.state = e.consecutiveFailures >= inst.restart.crashLoopThreshold ? 'crashloop' : 'running';
    e.nextRestartDelayMs = undefined;
    this.log.info({ instance: inst.id, pid: e.pid, command: inst.command }, 'started');
    const pf: PidFile = {
      id: inst.id,
      pid: e.pid,
      startTime: e.startTime,
      startedAt: e.startedAt,
      restarts: e.restarts,
      inst,
    };
    this.armStableTimer(e, gen);
    this.listeners.emit(inst.id);
    return writeFileAtomic(this.pidPath(inst.id), JSON.stringify(pf), 0o644).then(
      async () => {
        // The process may have exited while the pidfile was written.
        if (e.gen !== gen || e.pid === undefined) await rm(this.pidPath(inst.id), { force: true });
      },
      (err) => this.log.error({ err, instance: inst.id }, 'cannot write pidfile'),
    );
  }

  /** A run of `resetAfterMs` resets the backoff and the failure streak. */
  private armStableTimer(e: Entry, gen: number): void {
    this.clock.clearTimeout(e.stableTimer);
    const after = Math.max(
      0,
      e.inst.restart.resetAfterMs - (this.clock.now() - (e.startedClock ?? this.clock.now())),
    );
    e.stableTimer = this.clock.setTimeout(() => {
      if (e.gen !== gen || e.pid === undefined) return;
      e.backoff.reset();
      const was = e.consecutiveFailures;
      e.consecutiveFailures = 0;
      if (e.state === 'crashloop') e.state = 'running';
      if (was > 0) this.listeners.emit(e.inst.id);
    }, after);
  }

  private onExit(
    e: Entry,
    gen: number,
    code: number | null,
    signal: NodeJS.Signals | null,
    err?: Error,
  ): void {
    if (gen !== e.gen || e.exited) return;
    e.exited = true;
    const id = e.inst.id;
    this.clock.clearTimeout(e.stableTimer);
    e.child = undefined;
    e.pid = undefined;
    rm(this.pidPath(id), { force: true }).catch(() => {});
    if (!e.wantRunning) {
      e.state = 'stopped';
      this.listeners.emit(id);
      return;
    }
    const ranMs = this.clock.now() - (e.startedClock ?? this.clock.now());
    if (!err && ranMs >= e.inst.restart.resetAfterMs) {
      e.backoff.reset();
      e.consecutiveFailures = 0;
    }
    const clean = !err && code === 0;
    const what = err
      ? `cannot start ${e.inst.command}: ${err.message}`
      : signal
        ? `killed by ${signal}`
        : code === null
          ? 'exited (adopted process; exit code unknown)'
          : `exited with code ${code}`;
    e.lastError = what;
    e.lastExitCode = !err && !signal && code !== null ? code : undefined;
    e.consecutiveFailures++;
    const policy = e.inst.restart.policy;
    if (policy === 'never' || (policy === 'on-failure' && clean)) {
      e.state = clean ? 'stopped' : 'failed';
      e.wantRunning = false;
      this.log.warn({ instance: id, reason: what, policy }, 'exited; policy says no restart');
      this.listeners.emit(id);
      return;
    }
    if (this.closed) return;
    const delay = e.backoff.next();
    e.nextRestartDelayMs = delay;
    e.state = e.consecutiveFailures >= e.inst.restart.crashLoopThreshold ? 'crashloop' : 'backoff';
    this.log.warn(
      { instance: id, reason: what, delayMs: delay, failures: e.consecutiveFailures },
      'instance exited; restarting after backoff',
    );
    let heldSince: number | undefined;
    const restart = () => {
      e.restartTimer = undefined;
      if (!e.wantRunning || this.closed) return;
      if (this.restartHold?.()) {
        const now = this.clock.now();
        if (heldSince === undefined) {
          heldSince = now;
          this.log.warn(
            { instance: id },
            'restart held: the plan may be stale after a long disconnect; waiting for a fresh one',
          );
        }
        if (now - heldSince < this.restartHoldMaxMs) {
          e.restartTimer = this.clock.setTimeout(restart, 250);
          return;
        }
        this.log.warn({ instance: id }, 'no fresh plan in time; restarting on the last plan applied');
      }
      e.restarts++;
      void this.spawnEntry(e);
    };
    e.restartTimer = this.clock.setTimeout(restart, delay);
    this.listeners.emit(id);
  }

  private async stopEntry(e: Entry): Promise<void> {
    e.wantRunning = false;
    this.clock.clearTimeout(e.restartTimer);
    e.restartTimer = undefined;
    this.clock.clearTimeout(e.stableTimer);
    const pid = e.pid;
    const id = e.inst.id;
    if (pid === undefined) {
      if (e.state !== 'stopped' && e.state !== 'failed') {
        e.state = 'stopped';
        this.listeners.emit(id);
      }
      await rm(this.pidPath(id), { force: true });
      return;
    }
    e.state = 'stopping';
    this.listeners.emit(id);
    const startTime = e.startTime;
    const gone = () => e.pid !== pid || !isSameProcessAlive(pid, startTime);
    killGroup(pid, 'SIGTERM');
    // Waiting for a real process to exit: wall time (the kernel's), not the injected clock, which a
    // test may hold still while the process is still going.
    const deadline = Date.now() + e.inst.stopTimeoutMs;
    while (!gone() && Date.now() < deadline) await sleep(25);
    if (!gone()) {
      this.log.warn({ instance: id, pid }, 'did not stop after SIGTERM; sending SIGKILL to its group');
      killGroup(pid, 'SIGKILL');
      const hard = Date.now() + 5000;
      while (!gone() && Date.now() < hard) await sleep(25);
    }
    // Stragglers in the group (children that ignored SIGTERM) go too.
    killGroup(pid, 'SIGKILL');
    if (e.pid === pid) {
      e.gen++;
      e.exited = true;
      e.child?.removeAllListeners('exit');
      e.child = undefined;
      e.pid = undefined;
    }
    e.state = 'stopped';
    await rm(this.pidPath(id), { force: true });
    this.log.info({ instance: id, pid }, 'stopped');
    this.listeners.emit(id);
  }

  private schedulePoll(): void {
    if (this.closed) return;
    this.pollTimer = this.clock.setTimeout(() => {
      this.poll()
        .catch((err) => this.log.error({ err }, 'runtime poll failed'))
        .finally(() => this.schedulePoll());
    }, this.pollMs);
  }

  /** Adopted processes are not our children, so no exit event comes: look at /proc. Also caps log sizes. */
  async poll(): Promise<void> {
    for (const e of this.entries.values()) {
      if (
        e.adopted &&
        e.pid !== undefined &&
        e.state !== 'stopping' &&
        !isSameProcessAlive(e.pid, e.startTime)
      ) {
        this.onExit(e, e.gen, null, null);
      }
      if (e.pid !== undefined) await this.capLog(e.inst.id);
    }
  }

  /** copy-truncate: the child keeps its O_APPEND descriptor, so its next write lands at the new start. */
  private async capLog(id: string): Promise<void> {
    const path = this.logPath(id);
    try {
      const s = await stat(path);
      if (s.size <= this.logMaxBytes) return;
      await copyFile(path, `${path}.1`);
      await truncate(path, 0);
    } catch {
      // the file may not exist yet
    }
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {}
  }
}
