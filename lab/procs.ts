import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { isLiveState, readProcStat } from '../lib/procfs.js';

/**
 * Process plumbing for the lab: detached spawning with log files, and /proc reads so that a pid
 * recorded in lab.json is only ever signalled while it still names the process we started (the
 * start time in /proc/<pid>/stat tells a recycled pid from ours).
 */

export interface ProcRef {
  pid: number;
  /** field 22 of /proc/<pid>/stat: clock ticks since boot */
  startTime: string;
}

export interface ProcInfo {
  pid: number;
  ppid: number;
  pgrp: number;
  state: string;
  startTime: string;
}

export function readStat(pid: number): ProcInfo | undefined {
  const st = readProcStat(pid);
  if (!st) return undefined;
  return { pid, state: st.state, ppid: st.ppid, pgrp: st.pgrp, startTime: st.startTime };
}

/** True while `ref` names a live (not zombie) process with the recorded start time. */
export function isAlive(ref: ProcRef | undefined): boolean {
  if (!ref) return false;
  const st = readStat(ref.pid);
  return !!st && isLiveState(st.state) && st.startTime === ref.startTime;
}

/** 'T' (stopped) or 't' (traced): what SIGSTOP leaves behind. */
export function isStopped(ref: ProcRef | undefined): boolean {
  if (!ref || !isAlive(ref)) return false;
  const s = readStat(ref.pid)?.state;
  return s === 'T' || s === 't';
}

export function cmdline(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

function cwdOf(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return undefined;
  }
}

/** The network namespace inode (`net:[4026…]`), to tell a lab namespace's processes apart. */
export function netnsOf(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return undefined;
  }
}

export function listPids(): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) if (/^\d+$/.test(e)) out.push(Number(e));
  return out;
}

/** Every live process (not zombie) with its stat; our own process is left out. */
export function allProcs(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const pid of listPids()) {
    if (pid === process.pid) continue;
    const st = readStat(pid);
    if (st && isLiveState(st.state)) out.push(st);
  }
  return out;
}

/** Processes whose command line or working directory mentions `path` (a lab or node directory). */
export function procsUnder(path: string, procs: ProcInfo[] = allProcs()): ProcInfo[] {
  const prefix = path.endsWith('/') ? path : `${path}/`;
  return procs.filter((p) => {
    const cwd = cwdOf(p.pid);
    if (cwd && (cwd === path || cwd.startsWith(prefix))) return true;
    return cmdline(p.pid).some((a) => a.includes(prefix));
  });
}

/** `roots` plus every descendant (by ppid) and every member of their process groups. */
export function withDescendants(roots: number[], procs: ProcInfo[] = allProcs()): ProcInfo[] {
  const byPid = new Map(procs.map((p) => [p.pid, p]));
  const picked = new Set<number>(roots.filter((p) => byPid.has(p)));
  let grew = true;
  while (grew) {
    grew = false;
    for (const p of procs) {
      if (picked.has(p.pid)) continue;
      if (picked.has(p.ppid) || (picked.has(p.pgrp) && p.pgrp !== 0)) {
        picked.add(p.pid);
        grew = true;
      }
    }
  }
  return [...picked].map((pid) => byPid.get(pid)!);
}

/** Sends `signal` to each process group led by one of `procs` and to each process; ignores the gone. */
export function signalAll(procs: ProcInfo[], signal: NodeJS.Signals): void {
  for (const p of procs) {
    if (p.pgrp === p.pid) {
      try {
        process.kill(-p.pid, signal);
      } catch {
        // group already gone
      }
    }
    try {
      process.kill(p.pid, signal);
    } catch {
      // already gone
    }
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Waits until none of `procs` is alive (same start time) or `timeoutMs` passes; returns the survivors. */
export async function waitGone(procs: ProcInfo[], timeoutMs: number): Promise<ProcInfo[]> {
  const deadline = Date.now() + timeoutMs;
  let left = procs.filter((p) => isAlive(p));
  while (left.length && Date.now() < deadline) {
    await sleep(50);
    left = left.filter((p) => isAlive(p));
  }
  return left;
}

/**
 * SIGTERM (unless `hard`), a grace period, then SIGKILL for what is left. Returns what survived
 * even SIGKILL (nothing, normally: a process in uninterruptible sleep can linger briefly).
 */
export async function terminate(
  procs: ProcInfo[],
  opts: { hard?: boolean; graceMs?: number } = {},
): Promise<ProcInfo[]> {
  let left = procs.filter((p) => isAlive(p));
  if (!left.length) return [];
  if (!opts.hard) {
    // a SIGSTOPped process cannot act on SIGTERM until it is continued
    signalAll(left, 'SIGCONT');
    signalAll(left, 'SIGTERM');
    left = await waitGone(left, opts.graceMs ?? 5000);
  }
  if (left.length) {
    signalAll(left, 'SIGKILL');
    left = await waitGone(left, 5000);
  }
  return left;
}

export interface SpawnDetachedOptions {
  command: string;
  args: string[];
  log: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * Starts a process in its own session and process group with stdout and stderr appended to `log`,
 * and lets it outlive us. Resolves once it has a pid and a start time.
 */
export async function spawnDetached(o: SpawnDetachedOptions): Promise<ProcRef> {
  mkdirSync(dirname(o.log), { recursive: true });
  const fd = openSync(o.log, 'a', 0o640);
  try {
    const child = spawn(o.command, o.args, {
      detached: true,
      stdio: ['ignore', fd, fd],
      cwd: o.cwd ?? '/',
      env: o.env ?? process.env,
    });
    const pid = await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('spawn', () => resolve(child.pid!));
    });
    child.unref();
    const startTime = readStat(pid)?.startTime ?? '';
    return { pid, startTime };
  } finally {
    closeSync(fd);
  }
}

/** The environment for lab daemons: ours minus DROVER_* (which would override their config files). */
export function daemonEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('DROVER_')) env[k] = v;
  return { ...env, ...extra };
}

/**
 * A host "losing power": freezes (SIGSTOP) every process `list` names, lists again until no new
 * one shows up, then SIGKILLs them all. A process listed once and frozen cannot fork, so a child
 * its parent spawned between the first listing and the freeze (an agent restarting a role at that
 * moment) is caught by the next listing instead of surviving as an orphan. Returns what it killed.
 */
export function freezeAndKill(list: () => ProcInfo[]): ProcInfo[] {
  const frozen = new Map<number, ProcInfo>();
  for (let round = 0; round < 20; round++) {
    const fresh = list().filter((p) => !frozen.has(p.pid));
    if (fresh.length === 0) break;
    signalAll(fresh, 'SIGSTOP');
    for (const p of fresh) frozen.set(p.pid, p);
  }
  const all = [...frozen.values()];
  signalAll(all, 'SIGKILL');
  return all;
}
