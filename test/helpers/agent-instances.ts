import { isSameProcessAlive } from '../../agent/runtime/procfs.js';
import type { RunnableInstance } from '../../agent/runtime/types.js';
import type { RestartPolicy } from '../../protocol/index.js';

export const FAST_RESTART: RestartPolicy = {
  policy: 'always',
  initialBackoffMs: 1000,
  maxBackoffMs: 60_000,
  resetAfterMs: 60_000,
  crashLoopThreshold: 5,
};

/** A long-running instance that prints a greeting first: `sh -c 'echo hello-$NAME; exec sleep 1000'`. */
export function sleeper(id: string, over: Partial<RunnableInstance> = {}): RunnableInstance {
  return {
    id,
    role: id.split('#')[0]!,
    checksum: 'a'.repeat(64),
    command: '/bin/sh',
    args: ['-c', 'echo "hello-$NAME 100%"; exec sleep 1000'],
    env: { NAME: id.split('#')[0]! },
    stopTimeoutMs: 5000,
    restart: FAST_RESTART,
    ...over,
  };
}

/** Kills whatever process group a test left behind (roles are detached, so they outlive the test). */
export function killGroups(pids: Iterable<number | undefined>): void {
  for (const pid of pids) {
    if (!pid) continue;
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {}
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
}

export function alive(pid: number | undefined): boolean {
  return pid !== undefined && isSameProcessAlive(pid, undefined);
}
