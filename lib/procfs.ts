import { readFileSync } from 'node:fs';

/**
 * Reads `/proc/<pid>/stat`. The start time (field 22, clock ticks since boot) tells one process
 * from a later one that got the same pid, so a recorded pid never adopts a stranger.
 */
export interface ProcStat {
  pid: number;
  state: string;
  ppid: number;
  pgrp: number;
  /** field 22 of /proc/<pid>/stat: clock ticks since boot */
  startTime: string;
  utimeTicks: number;
  stimeTicks: number;
  rssPages: number;
}

export function readProcStat(pid: number, procRoot = '/proc'): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`${procRoot}/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // comm (field 2) may contain spaces and parentheses: split after the last ')'.
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const rest = text.slice(close + 2).split(' ');
  // rest[0] is field 3 (state); field N is rest[N - 3].
  return {
    pid,
    state: rest[0] ?? '?',
    ppid: Number(rest[1]),
    pgrp: Number(rest[2]),
    utimeTicks: Number(rest[11]),
    stimeTicks: Number(rest[12]),
    startTime: rest[19] ?? '',
    rssPages: Number(rest[21]),
  };
}

/** True for a process that still runs: not a zombie ('Z') nor dead ('X'). */
export function isLiveState(state: string): boolean {
  return state !== 'Z' && state !== 'X';
}
