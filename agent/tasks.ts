import { execa } from 'execa';
import type { Logger } from 'pino';
import { type Clock, isoNow, systemClock } from '../lib/clock.js';
import {
  type Facts,
  type InstanceSpec,
  type InstanceStatus,
  PROTOCOL_VERSION,
  type Task,
  type TaskResult,
} from '../protocol/index.js';
import type { Applier } from './applier.js';
import { AgentError, errorBody } from './errors.js';
import type { Runtime } from './runtime/types.js';

const MAX_OUTPUT = 64 * 1024;

export interface TaskContext {
  nodeId: string;
  applier: Applier;
  runtime: Runtime;
  facts(): Facts | undefined;
  instanceStatus(id: string): InstanceStatus | undefined;
  counters(): Record<string, unknown>;
  logger: Logger;
  /** stamps `finishedAt`; default the system clock */
  clock?: Clock;
}

function specFor(ctx: TaskContext, task: Task): InstanceSpec {
  if (!task.instanceId) {
    throw new AgentError('DROVER_ERR_TASK_BAD_REQUEST', `task ${task.kind} needs an instanceId`);
  }
  const spec = ctx.applier.spec(task.instanceId);
  if (!spec) {
    throw new AgentError(
      'DROVER_ERR_INSTANCE_NOT_FOUND',
      `instance ${task.instanceId} is not in the applied plan`,
    );
  }
  return spec;
}

function cap(s: string): string {
  return s.length > MAX_OUTPUT ? `…(truncated)\n${s.slice(-MAX_OUTPUT)}` : s;
}

async function execute(
  task: Task,
  ctx: TaskContext,
): Promise<{ output?: string; data?: Record<string, unknown> }> {
  switch (task.kind) {
    case 'restart': {
      const spec = specFor(ctx, task);
      await ctx.applier.release(spec.id);
      await ctx.runtime.restart(ctx.applier.runnable(spec));
      return { output: `restarted ${spec.id}`, data: { pid: ctx.runtime.status(spec.id)?.pid } };
    }
    case 'stop': {
      const spec = specFor(ctx, task);
      await ctx.applier.hold(spec.id);
      return { output: `stopped ${spec.id}; it stays stopped until a start task or a changed plan` };
    }
    case 'start': {
      const spec = specFor(ctx, task);
      await ctx.applier.release(spec.id);
      await ctx.runtime.start(ctx.applier.runnable(spec));
      return { output: `started ${spec.id}`, data: { pid: ctx.runtime.status(spec.id)?.pid } };
    }
    case 'reprovision': {
      const spec = specFor(ctx, task);
      await ctx.applier.writeFiles(spec);
      await ctx.applier.release(spec.id);
      await ctx.runtime.restart(ctx.applier.runnable(spec));
      return {
        output: `rewrote ${spec.files.length} file(s) and restarted ${spec.id}`,
        data: { pid: ctx.runtime.status(spec.id)?.pid, files: spec.files.map((f) => f.path) },
      };
    }
    case 'diagnostics': {
      const lines = task.tailLines ?? 100;
      const ids = task.instanceId ? [specFor(ctx, task).id] : [...ctx.applier.instances().keys()];
      const logs: Record<string, string> = {};
      for (const id of ids) logs[id] = cap(await ctx.runtime.logs(id, lines));
      return {
        output: ids.map((id) => `== ${id} ==\n${logs[id]}`).join('\n'),
        data: {
          runtime: ctx.runtime.kind,
          instances: ids.map((id) => ({ status: ctx.instanceStatus(id), runtime: ctx.runtime.status(id) })),
          logs,
          facts: ctx.facts(),
          counters: ctx.counters(),
        },
      };
    }
    case 'run-command': {
      const spec = specFor(ctx, task);
      if (!task.command)
        throw new AgentError('DROVER_ERR_TASK_BAD_REQUEST', 'run-command needs a command name');
      const cmd = spec.commands?.[task.command];
      if (!cmd) {
        throw new AgentError(
          'DROVER_ERR_COMMAND_NOT_DECLARED',
          `role ${spec.role} declares no command ${JSON.stringify(task.command)} (it declares: ${Object.keys(spec.commands ?? {}).join(', ') || 'none'})`,
        );
      }
      const expand = ctx.applier.expand;
      const run = ctx.applier.runnable(spec);
      const timeout = Math.min(task.timeoutMs, cmd.timeoutMs);
      // argv only, never a shell: the coordinator can run what the role declares and nothing else.
      const r = await execa(expand(cmd.command), cmd.args.map(expand), {
        timeout,
        reject: false,
        all: true,
        stdin: 'ignore',
        env: run.env,
        ...(run.cwd ? { cwd: run.cwd } : {}),
      });
      const output = cap(r.all ?? '');
      if (r.timedOut)
        throw new AgentError('DROVER_ERR_TASK_TIMEOUT', `${task.command} timed out after ${timeout} ms`, {
          details: { output },
        });
      if (r.exitCode !== 0) {
        throw new AgentError(
          'DROVER_ERR_TASK_FAILED',
          `${task.command} exited with ${r.exitCode ?? r.signal}`,
          {
            details: { output },
          },
        );
      }
      return { output, data: { exitCode: 0 } };
    }
  }
}

/** Runs one task within its timeout and turns every outcome into a TaskResult; it never throws. */
export async function runTask(task: Task, ctx: TaskContext): Promise<TaskResult> {
  const log = ctx.logger.child({ taskId: task.id, kind: task.kind, instance: task.instanceId });
  log.info('task started');
  const base = { v: PROTOCOL_VERSION, type: 'task-result' as const, id: task.id, nodeId: ctx.nodeId };
  const clock = ctx.clock ?? systemClock;
  let timer: NodeJS.Timeout | undefined;
  try {
    const r = await Promise.race([
      execute(task, ctx),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new AgentError(
                'DROVER_ERR_TASK_TIMEOUT',
                `task ${task.kind} timed out after ${task.timeoutMs} ms`,
              ),
            ),
          task.timeoutMs,
        );
      }),
    ]);
    log.info('task done');
    return { ...base, ok: true, ...r, finishedAt: isoNow(clock) };
  } catch (err) {
    const body = errorBody(err);
    log.warn({ err: body }, 'task failed');
    const output = (err as AgentError).details?.output;
    return {
      ...base,
      ok: false,
      error: body,
      ...(typeof output === 'string' ? { output } : {}),
      finishedAt: isoNow(clock),
    };
  } finally {
    clearTimeout(timer);
  }
}
