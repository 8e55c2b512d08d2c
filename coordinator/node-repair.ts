/**
 * `drover repair NODE`: what it does, made visible. A live node re-provisions each of its
 * instances as a task (one task per instance, listed by `drover get tasks`, each with the agent's
 * result); an Unreachable node's instances are reassigned now. Either way a `repair.started` event
 * says what was done, and for re-provisions a `repair.succeeded` or `repair.failed` event sums up
 * the results. The engine wires the ports; this module decides and reports.
 */
import type { EventInput } from './events.js';

export interface NodeRepairTask {
  instanceId: string;
  taskId: string;
}

export interface NodeRepairOutcome {
  ok: boolean;
  reprovisioned: string[];
  failed: Array<{ instanceId: string; taskId: string; error: string }>;
}

export interface NodeRepairStarted {
  nodeId: string;
  /** `reprovision`: a live node; `reassign`: an Unreachable one; `none`: it runs no instance */
  mode: 'reprovision' | 'reassign' | 'none';
  instances: string[];
  tasks: NodeRepairTask[];
  message: string;
}

export interface NodeRepairPorts {
  nodeId: string;
  unreachable: boolean;
  instances: string[];
  reassign(instanceId: string): void;
  startTask(req: { nodeId: string; kind: 'reprovision'; instanceId: string }): {
    id: string;
    done: Promise<{ ok: boolean; error?: string }>;
  };
  emit(e: EventInput): void;
}

export function startNodeRepair(p: NodeRepairPorts): {
  started: NodeRepairStarted;
  done: Promise<NodeRepairOutcome>;
} {
  const { nodeId, instances } = p;
  const list = instances.join(', ');
  if (instances.length === 0) {
    const message = `repair of node ${nodeId}: it runs no instance, nothing to repair`;
    p.emit({ kind: 'repair.started', severity: 'info', nodeId, message, data: { mode: 'none' } });
    p.emit({ kind: 'repair.succeeded', severity: 'info', nodeId, message, data: { mode: 'none' } });
    return {
      started: { nodeId, mode: 'none', instances, tasks: [], message },
      done: Promise.resolve({ ok: true, reprovisioned: [], failed: [] }),
    };
  }
  if (p.unreachable) {
    for (const id of instances) p.reassign(id);
    const message = `repair of unreachable node ${nodeId}: reassigning ${instances.length} instance(s) now: ${list}`;
    p.emit({
      kind: 'repair.started',
      severity: 'warning',
      nodeId,
      message,
      data: { mode: 'reassign', instances },
    });
    return {
      started: { nodeId, mode: 'reassign', instances, tasks: [], message },
      done: Promise.resolve({ ok: true, reprovisioned: [], failed: [] }),
    };
  }
  const started = instances.map((instanceId) => ({
    instanceId,
    ...p.startTask({ nodeId, kind: 'reprovision', instanceId }),
  }));
  const tasks = started.map((t) => ({ instanceId: t.instanceId, taskId: t.id }));
  const message = `repair of node ${nodeId}: re-provisioning ${instances.length} instance(s): ${tasks.map((t) => `${t.instanceId} (task ${t.taskId})`).join(', ')}`;
  p.emit({ kind: 'repair.started', severity: 'info', nodeId, message, data: { mode: 'reprovision', tasks } });
  const done = Promise.all(
    started.map((t) =>
      t.done.then(
        (r) => ({ t, ok: r.ok, error: r.error }),
        (err: Error) => ({ t, ok: false, error: err?.message ?? String(err) }),
      ),
    ),
  ).then((results): NodeRepairOutcome => {
    const reprovisioned = results.filter((r) => r.ok).map((r) => r.t.instanceId);
    const failed = results
      .filter((r) => !r.ok)
      .map((r) => ({ instanceId: r.t.instanceId, taskId: r.t.id, error: r.error ?? 'unknown error' }));
    const out = { ok: failed.length === 0, reprovisioned, failed };
    p.emit(
      out.ok
        ? {
            kind: 'repair.succeeded',
            severity: 'info',
            nodeId,
            message: `repair of node ${nodeId} succeeded: re-provisioned ${reprovisioned.join(', ')}`,
            data: out,
          }
        : {
            kind: 'repair.failed',
            severity: 'error',
            nodeId,
            message: `repair of node ${nodeId} failed: ${failed.map((f) => `${f.instanceId}: ${f.error}`).join('; ')}${reprovisioned.length ? ` (re-provisioned ${reprovisioned.join(', ')})` : ''}`,
            data: out,
          },
    );
    return out;
  });
  return { started: { nodeId, mode: 'reprovision', instances, tasks, message }, done };
}
