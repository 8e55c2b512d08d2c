import type { Logger } from '../../lib/logger.js';
import type { EventInput } from '../events.js';
import type { RepairMemory } from './memory.js';

/** The memory sets an effect may add to or delete from. */
export type MarkSet = 'held' | 'decided' | 'immediate' | 'refusedEtcd';

/**
 * What a repair decision asks to be done. The reconcile applies them (`applyRepairEffects`); a
 * preview applies none, so it acts on nothing.
 */
export type RepairEffect =
  /** announce: an event for the log */
  | { type: 'event'; event: EventInput }
  /** a repair outcome for the metrics (`reassign`, `reprovision`, …) */
  | { type: 'count'; result: string }
  /** send the agent a re-provision task (rewrite files, restart) */
  | { type: 'reprovision'; nodeId: string; instanceId: string }
  /** one automatic reassignment of `role` spent from its rate budget at `at` */
  | { type: 'rate'; role: string; at: number }
  /** add an id to, or delete it from, one of the memory's sets */
  | { type: 'mark'; set: MarkSet; op: 'add' | 'delete'; id: string }
  /** an instance in trouble was re-provisioned at `reprovisionedAt`, or (`clear`) is out of trouble */
  | { type: 'trouble'; instanceId: string; reprovisionedAt?: number; clear?: true }
  /** the drain-wait message announced for an instance (undefined: it may leave now) */
  | { type: 'drain-wait'; instanceId: string; message?: string }
  /** an operator move is finished with (done, gone, or refused) */
  | { type: 'move-done'; instanceId: string }
  /** the storm guard paused or resumed automatic reassignment in a cluster */
  | { type: 'storm'; cluster: string; paused: boolean }
  /** queue the cluster's reconcile (an operator request it carries out) */
  | { type: 'reconcile'; cluster: string };

export interface RepairEffectPorts {
  emit(event: EventInput): void;
  runTask(task: { nodeId: string; kind: 'reprovision'; instanceId: string }): Promise<unknown>;
  onRepair?: (result: string) => void;
  /** queues a work-queue key (`cluster:<name>`) */
  enqueue(key: string): void;
  log: Logger;
}

const HOUR = 3_600_000;

/** Applies a decision's effects, in order: events, tasks, metrics and the memory updates. */
export function applyRepairEffects(
  effects: readonly RepairEffect[],
  memory: RepairMemory,
  ports: RepairEffectPorts,
): void {
  for (const e of effects) {
    switch (e.type) {
      case 'event':
        ports.emit(e.event);
        break;
      case 'count':
        ports.onRepair?.(e.result);
        break;
      case 'reprovision':
        void ports
          .runTask({ nodeId: e.nodeId, kind: 'reprovision', instanceId: e.instanceId })
          .catch((err) => ports.log.warn({ err, instanceId: e.instanceId }, 'reprovision task failed'));
        break;
      case 'rate': {
        const list = (memory.recentMoves.get(e.role) ?? []).filter((t) => e.at - t < HOUR);
        list.push(e.at);
        memory.recentMoves.set(e.role, list);
        break;
      }
      case 'mark':
        if (e.op === 'add') memory[e.set].add(e.id);
        else memory[e.set].delete(e.id);
        break;
      case 'trouble': {
        if (e.clear) memory.trouble.delete(e.instanceId);
        else {
          const t = memory.trouble.get(e.instanceId);
          if (t) t.reprovisionedAt = e.reprovisionedAt;
        }
        break;
      }
      case 'drain-wait':
        if (e.message === undefined) memory.drainWaits.delete(e.instanceId);
        else memory.drainWaits.set(e.instanceId, e.message);
        break;
      case 'move-done':
        memory.moveTo.delete(e.instanceId);
        break;
      case 'storm':
        memory.paused.set(e.cluster, e.paused);
        break;
      case 'reconcile':
        ports.enqueue(`cluster:${e.cluster}`);
        break;
    }
  }
}
