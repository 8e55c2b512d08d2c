import type { HealthProbe, RestartPolicy } from '../../protocol/index.js';
import type { RestartOverrides } from '../topology/index.js';

/** Local restart policy (DESIGN: backoff from 1 s doubling to 60 s; 5 fast failures = CrashLoop). */
export const DEFAULT_RESTART: RestartPolicy = Object.freeze({
  policy: 'always',
  initialBackoffMs: 1000,
  maxBackoffMs: 60_000,
  resetAfterMs: 60_000,
  crashLoopThreshold: 5,
}) as RestartPolicy;

export function withRestartOverrides(base: RestartPolicy, o: RestartOverrides | undefined): RestartPolicy {
  if (!o) return { ...base };
  return {
    policy: o.policy ?? base.policy,
    initialBackoffMs: o.initialBackoff ?? base.initialBackoffMs,
    maxBackoffMs: o.maxBackoff ?? Math.max(base.maxBackoffMs, o.initialBackoff ?? 0),
    resetAfterMs: o.resetAfter ?? base.resetAfterMs,
    crashLoopThreshold: o.crashLoopThreshold ?? base.crashLoopThreshold,
  };
}

/** A probe with the catalog's timing: every 2 s, 1 s timeout, unhealthy after 3 failures. */
export function probe(
  p: Pick<HealthProbe, 'kind'> & Partial<HealthProbe>,
  timing: Partial<Pick<HealthProbe, 'periodMs' | 'timeoutMs' | 'initialDelayMs' | 'failureThreshold'>> = {},
): HealthProbe {
  return {
    periodMs: 2000,
    timeoutMs: 1000,
    initialDelayMs: 0,
    failureThreshold: 3,
    successThreshold: 1,
    ...p,
    ...timing,
  };
}

/** `v1.28.4` → [1, 28]; unknown → [1, 99] (newest behaviour). */
export function kubeMinor(version: string): [number, number] {
  const m = /^v?(\d+)\.(\d+)/.exec(version);
  return m ? [Number(m[1]), Number(m[2])] : [1, 99];
}

export const atLeast = (version: string, major: number, minor: number): boolean => {
  const [a, b] = kubeMinor(version);
  return a > major || (a === major && b >= minor);
};
