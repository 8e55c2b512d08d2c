/**
 * Events derived from what an agent reports, without a message type of their own: the status
 * already carries each instance's `restarts` counter (local restarts by the agent's supervisor,
 * with backoff) and its last exit reason. Pure.
 */
import type { InstanceStatus, NodeStatus } from '../protocol/index.js';
import type { EventInput } from './events.js';

type Previous = ReadonlyMap<string, InstanceStatus>;

/**
 * Everything a status report says happened since the previous one: `instance.restarted` events
 * (below), then `instance.unhealthy` for each instance that entered CrashLoop, Failed or
 * Unhealthy. Without a previous status (the coordinator just started) nothing is reported.
 */
export function statusEvents(before: NodeStatus | undefined, after: NodeStatus): EventInput[] {
  if (!before) return [];
  const prev: Previous = new Map(before.instances.map((i) => [i.id, i]));
  return [...restartsSince(prev, after), ...unhealthySince(prev, after)];
}

/**
 * One `instance.restarted` event per instance whose restart counter rose since the previous
 * status of the same incarnation (same id and epoch).
 */
export function restartEvents(before: NodeStatus | undefined, after: NodeStatus): EventInput[] {
  return before ? restartsSince(new Map(before.instances.map((i) => [i.id, i])), after) : [];
}

function restartsSince(prev: Previous, after: NodeStatus): EventInput[] {
  const out: EventInput[] = [];
  for (const i of after.instances) {
    const p = prev.get(i.id);
    if (!p || p.epoch !== i.epoch || i.restarts <= p.restarts) continue;
    const n = i.restarts - p.restarts;
    out.push({
      kind: 'instance.restarted',
      severity: 'warning',
      nodeId: after.nodeId,
      instanceId: i.id,
      role: i.role,
      message: `${i.id} on ${after.nodeId} was restarted by the agent${n > 1 ? ` ${n} times` : ''} (${i.restarts} restart${i.restarts === 1 ? '' : 's'} so far)${i.lastError ? `: ${i.lastError}` : ''}`,
      data: {
        restarts: i.restarts,
        previous: p.restarts,
        ...(i.lastError ? { lastError: i.lastError } : {}),
        phase: i.phase,
      },
    });
  }
  return out;
}

const TROUBLE = new Set<InstanceStatus['phase']>(['CrashLoop', 'Failed', 'Unhealthy']);

function unhealthySince(prev: Previous, after: NodeStatus): EventInput[] {
  const out: EventInput[] = [];
  for (const i of after.instances) {
    const p = prev.get(i.id)?.phase;
    if (p === undefined || p === i.phase || !TROUBLE.has(i.phase)) continue;
    out.push({
      kind: 'instance.unhealthy',
      severity: 'warning',
      nodeId: after.nodeId,
      instanceId: i.id,
      role: i.role,
      message: `${i.id} on ${after.nodeId} is ${i.phase}${i.lastError ? `: ${i.lastError}` : ''}`,
    });
  }
  return out;
}
