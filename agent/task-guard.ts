import type { KeyObject } from 'node:crypto';
import { type SignedTask, TASK_MAX_WINDOW_MS, type Task, verifyTask } from '../protocol/index.js';
import { AgentError } from './errors.js';

export interface TaskGuardContext {
  nodeId: string;
  /** the pinned coordinator key; undefined before the agent has joined */
  key: KeyObject | undefined;
  /** the agent's clock, ms */
  now: number;
  /** tolerated clock skew, ms (TASK_CLOCK_SKEW_MS) */
  skewMs: number;
  /** the coordinator epoch of the applied plan: a task from a lower one comes from a deposed leader */
  appliedEpoch?: number;
}

/**
 * Decides whether a signed task may run, before anything else looks at it. Throws (SignatureError
 * or AgentError) when it must be refused: no pinned key, unsigned, badly signed, for another node,
 * issued in the future, expired, or with a validity window longer than any task needs. Replays are
 * the TaskLedger's (agent/task-ledger.ts), which remembers ids. Pure: the clock comes in `now`.
 */
export function checkTask(signed: SignedTask, ctx: TaskGuardContext): Task {
  if (!ctx.key) {
    throw new AgentError(
      'DROVER_ERR_NO_PINNED_KEY',
      'no coordinator key is pinned yet; a task cannot be verified',
    );
  }
  const task = verifyTask(signed, ctx.key);
  if (task.nodeId !== ctx.nodeId) {
    throw new AgentError(
      'DROVER_ERR_TASK_WRONG_NODE',
      `task ${task.id} is for node ${task.nodeId}, this is ${ctx.nodeId}`,
    );
  }
  const issued = Date.parse(task.issuedAt);
  const expires = Date.parse(task.expiresAt);
  if (!Number.isFinite(issued) || !Number.isFinite(expires) || expires < issued) {
    throw new AgentError(
      'DROVER_ERR_TASK_BAD_REQUEST',
      `task ${task.id}: expiresAt ${task.expiresAt} is not after issuedAt ${task.issuedAt}`,
    );
  }
  if (expires - issued > TASK_MAX_WINDOW_MS) {
    throw new AgentError(
      'DROVER_ERR_TASK_BAD_REQUEST',
      `task ${task.id}: valid for ${expires - issued} ms, longer than the ${TASK_MAX_WINDOW_MS} ms any task may be`,
    );
  }
  if (issued - ctx.skewMs > ctx.now) {
    throw new AgentError(
      'DROVER_ERR_TASK_NOT_YET_VALID',
      `task ${task.id} was issued at ${task.issuedAt}, more than ${ctx.skewMs} ms ahead of this agent's clock (${new Date(ctx.now).toISOString()}); check the clocks`,
    );
  }
  if (ctx.now > expires + ctx.skewMs) {
    throw new AgentError(
      'DROVER_ERR_TASK_EXPIRED',
      `task ${task.id} expired at ${task.expiresAt} (now ${new Date(ctx.now).toISOString()}, ${ctx.skewMs} ms skew allowed)`,
    );
  }
  if (
    ctx.appliedEpoch !== undefined &&
    task.coordinatorEpoch !== undefined &&
    task.coordinatorEpoch < ctx.appliedEpoch
  ) {
    throw new AgentError(
      'DROVER_ERR_TASK_STALE_EPOCH',
      `task ${task.id} is from coordinator epoch ${task.coordinatorEpoch}, below the applied plan's epoch ${ctx.appliedEpoch} (a deposed leader sent it)`,
    );
  }
  return task;
}
