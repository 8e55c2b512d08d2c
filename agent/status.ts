import {
  type InstancePhase,
  type InstanceSpec,
  type InstanceStatus,
  type NodeStatus,
  type StatusDigest,
  sha256Hex,
} from '../protocol/index.js';
import { isFailing } from './last-output.js';
import type { Health } from './probes.js';
import type { RuntimeInstanceStatus } from './runtime/types.js';

export interface PlanInfo {
  generation: number;
  checksum: string;
  coordinatorEpoch: number;
  state: NodeStatus['plan']['state'];
  error?: string;
}

/** The phase an operator sees: the runtime's state, refined by the probe. */
export function instancePhase(
  rs: RuntimeInstanceStatus | undefined,
  health: Health,
  hasProbe: boolean,
  held: boolean,
): InstancePhase {
  if (!rs) return held ? 'Stopped' : 'Pending';
  switch (rs.state) {
    case 'starting':
    case 'backoff':
      return 'Starting';
    case 'crashloop':
      return 'CrashLoop';
    case 'stopping':
    case 'stopped':
      return 'Stopped';
    case 'failed':
      return 'Failed';
    case 'running':
      if (!hasProbe) return 'Running';
      return health === 'healthy' ? 'Healthy' : health === 'unhealthy' ? 'Unhealthy' : 'Starting';
  }
}

export function buildInstanceStatus(
  spec: InstanceSpec,
  rs: RuntimeInstanceStatus | undefined,
  probe: { health: Health; lastError?: string } | undefined,
  held: boolean,
  /** the cleaned last output (agent/last-output.ts), present only while the instance is failing */
  lastOutput?: string,
  /** why it could not be started at all (a certificate, its role user): CrashLoop with that reason */
  startFailure?: { message: string },
): InstanceStatus {
  const health = probe?.health ?? 'unknown';
  const neverStarted = !rs && !held && startFailure !== undefined;
  const phase = neverStarted ? 'CrashLoop' : instancePhase(rs, health, !!spec.health, held);
  // The probe's error explains Unhealthy; the runtime's explains exits and restarts.
  const lastError = neverStarted
    ? startFailure.message
    : phase === 'Unhealthy'
      ? (probe?.lastError ?? rs?.lastError)
      : (rs?.lastError ?? probe?.lastError);
  const usesChecksum = rs?.checksum ?? '';
  return {
    id: spec.id,
    role: spec.role,
    epoch: spec.epoch,
    checksum: usesChecksum,
    phase,
    health: rs?.state === 'running' || rs?.state === 'crashloop' ? health : 'unknown',
    restarts: rs?.restarts ?? 0,
    ...(lastError ? { lastError: lastError.slice(0, 1000) } : {}),
    ...(lastOutput ? { lastOutput } : {}),
    ...(isFailing(rs) && rs?.lastExitCode !== undefined ? { lastExitCode: rs.lastExitCode } : {}),
    ...(rs?.pid ? { pid: rs.pid } : {}),
    ...(rs?.pid && rs.startedAt ? { startedAt: new Date(rs.startedAt).toISOString() } : {}),
    simulated: spec.simulated,
    ...(spec.simulator ? { simulator: spec.simulator } : {}),
  };
}

const UNHEALTHY: ReadonlySet<InstancePhase> = new Set(['Unhealthy', 'CrashLoop', 'Failed']);

/**
 * `health` is the first 16 hex chars of sha256 over the sorted `id:phase:restarts:checksum` lines,
 * joined by `\n`: it changes exactly when something the coordinator cares about changed.
 */
export function healthDigest(instances: readonly InstanceStatus[]): string {
  const lines = instances.map((i) => `${i.id}:${i.phase}:${i.restarts}:${i.checksum}`).sort();
  return sha256Hex(lines.join('\n')).slice(0, 16);
}

export function statusDigest(plan: PlanInfo, instances: readonly InstanceStatus[]): StatusDigest {
  return {
    generation: plan.generation,
    checksum: plan.checksum,
    coordinatorEpoch: plan.coordinatorEpoch,
    health: healthDigest(instances),
    instances: instances.length,
    unhealthy: instances.filter((i) => UNHEALTHY.has(i.phase)).length,
  };
}
