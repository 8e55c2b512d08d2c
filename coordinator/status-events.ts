/**
 * Events derived from what an agent reports, without a message type of their own: the status
 * already carries each instance's `restarts` counter (local restarts by the agent's supervisor,
 * with backoff) and its last exit reason. Pure.
 */
import type { InstanceStatus, NodeStatus } from '../protocol/index.js';
import type { EventInput } from './events.js';

/**
 * One `instance.restarted` event per instance whose restart counter rose since the previous
 * status of the same incarnation (same id and epoch). Without a previous status (the coordinator
 * just started) there is nothing to compare with, so nothing is reported.
 */
export function restartEvents(before: NodeStatus | undefined, after: NodeStatus): EventInput[] {
  if (!before) return [];
  const prev = new Map<string, InstanceStatus>(before.instances.map((i) => [i.id, i]));
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
