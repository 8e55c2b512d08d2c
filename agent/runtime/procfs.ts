import { isLiveState, readProcStat } from '../../lib/procfs.js';

/**
 * Process identity for the agent: a pid and its start time (field 22 of `/proc/<pid>/stat`,
 * clock ticks since boot), so a pidfile never adopts a stranger. Parsing lives in lib/procfs.ts.
 */
export { type ProcStat, readProcStat } from '../../lib/procfs.js';

/** True when the pid is a live (not zombie) process with the given start time. */
export function isSameProcessAlive(pid: number, startTime: string | undefined): boolean {
  const st = readProcStat(pid);
  if (!st || !isLiveState(st.state)) return false;
  return startTime === undefined || st.startTime === startTime;
}

export function processStartTime(pid: number): string | undefined {
  return readProcStat(pid)?.startTime;
}
