import { randomUUID } from 'node:crypto';
import { type Clock, systemClock } from '../lib/clock.js';
import { withDeadline } from '../lib/deadline.js';
import type { Logger } from '../lib/logger.js';
import { DroverError, type TaskResult } from '../protocol/index.js';
import type { TaskCreate, TaskRecord } from '../protocol/rest/schemas.js';
import type { Engine } from './engine.js';
import { coordinatorError } from './errors.js';
import type { Store } from './store/types.js';
import { storeTaskArchive, type TaskArchive } from './task-archive.js';

export interface TaskTrackerOptions {
  engine: Pick<Engine, 'runTask' | 'requireNode'>;
  logger: Logger;
  /** persists records under `tasks/` so the history survives a restart; memory-only without */
  store?: Store;
  clock?: Clock;
  /** records kept (oldest dropped); default 500 */
  limit?: number;
  /** where records are kept (coordinator/task-archive.ts); default the store's `tasks/` keys */
  archive?: TaskArchive;
  /**
   * a follower coordinator: loads without touching what the leader runs (no "restarted before
   * it finished"), then follows the archive live; it starts no task itself
   */
  readOnly?: boolean;
}

/**
 * Tasks as the API sees them: a record per request that is `running` until the agent answers,
 * then `succeeded` or `failed` with the agent's TaskResult (or the error that stopped it).
 */
export class TaskTracker {
  private readonly records = new Map<string, TaskRecord>();
  private readonly running = new Map<string, Promise<TaskRecord>>();
  private readonly clock: Clock;
  private readonly limit: number;
  private readonly archive?: TaskArchive;
  private feed?: { stop(): void };

  constructor(private readonly opts: TaskTrackerOptions) {
    this.clock = opts.clock ?? systemClock;
    this.limit = opts.limit ?? 500;
    this.archive = opts.archive ?? (opts.store ? storeTaskArchive(opts.store) : undefined);
  }

  /** Loads history; tasks that were running when the coordinator stopped are marked failed. */
  async load(): Promise<void> {
    if (!this.archive) return;
    for (let r of await this.history(this.archive)) {
      if (r.state === 'running' && !this.opts.readOnly) {
        r = {
          ...r,
          state: 'failed',
          finishedAt: new Date(this.clock.now()).toISOString(),
          error: {
            code: 'DROVER_ERR_INTERNAL',
            message: 'the coordinator restarted before the task finished',
          },
        };
        this.save(r);
      }
      this.records.set(r.id, r);
    }
    // a follower: the leader's records as it writes them (an archive that can be followed)
    if (this.opts.readOnly)
      this.feed = this.archive.follow?.((r) => {
        this.records.delete(r.id);
        this.records.set(r.id, r);
        while (this.records.size > this.limit)
          this.records.delete(this.records.keys().next().value as string);
      });
  }

  /**
   * The archived records within a few seconds; an archive that cannot answer now must not hold
   * up the coordinator's start (see EventLog.history): none now, the rest once it answers.
   */
  private async history(archive: TaskArchive): Promise<TaskRecord[]> {
    try {
      return await withDeadline(archive.load(this.limit), 5000, `the task records (${archive.describe})`);
    } catch (err) {
      this.opts.logger.warn(
        { err: (err as Error).message },
        'starting without the task history; it is read again in the background',
      );
      const retry = () =>
        this.clock.setTimeout(() => {
          void archive.load(this.limit).then((older) => {
            for (const r of older) if (!this.records.has(r.id)) this.records.set(r.id, r);
          }, retry);
        }, 5000);
      retry();
      return [];
    }
  }

  /** Stops following the archive (a follower). */
  stop(): void {
    this.feed?.stop();
  }

  list(f: { node?: string; state?: TaskRecord['state']; limit?: number } = {}): TaskRecord[] {
    const out = [...this.records.values()].filter(
      (r) =>
        (f.node === undefined || r.request.nodeId === f.node) &&
        (f.state === undefined || r.state === f.state),
    );
    return out.slice(-(f.limit ?? 100));
  }

  get(id: string): TaskRecord {
    const r = this.records.get(id);
    if (!r)
      throw coordinatorError(
        'DROVER_ERR_TASK_NOT_FOUND',
        `no task ${JSON.stringify(id)}; see \`drover get tasks\``,
        { id },
      );
    return r;
  }

  /** Starts a task; the returned record is `running`. `done` resolves with the final record. */
  start(request: TaskCreate, createdBy: string): { record: TaskRecord; done: Promise<TaskRecord> } {
    this.opts.engine.requireNode(request.nodeId);
    const record: TaskRecord = {
      id: randomUUID(),
      state: 'running',
      request,
      createdBy,
      createdAt: new Date(this.clock.now()).toISOString(),
    };
    this.put(record);
    const done = this.opts.engine.runTask(request).then(
      (result: TaskResult) =>
        this.finish(record.id, result.ok ? 'succeeded' : 'failed', { result, error: result.error }),
      (err: unknown) => {
        const e =
          err instanceof DroverError
            ? err
            : coordinatorError('DROVER_ERR_INTERNAL', (err as Error)?.message ?? String(err));
        return this.finish(record.id, 'failed', { error: { code: e.code, message: e.message } });
      },
    );
    this.running.set(record.id, done);
    void done.finally(() => this.running.delete(record.id));
    return { record, done };
  }

  /** Resolves once every running task finished (tests, shutdown). */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.running.values()]);
  }

  private finish(
    id: string,
    state: TaskRecord['state'],
    extra: Pick<TaskRecord, 'result' | 'error'>,
  ): TaskRecord {
    const cur = this.records.get(id);
    const r: TaskRecord = {
      ...(cur as TaskRecord),
      state,
      finishedAt: new Date(this.clock.now()).toISOString(),
    };
    if (extra.result) r.result = extra.result;
    if (extra.error) r.error = extra.error;
    this.put(r);
    return r;
  }

  private put(r: TaskRecord): void {
    this.records.set(r.id, r);
    this.save(r);
    while (this.records.size > this.limit) {
      const oldest = this.records.keys().next().value as string;
      this.records.delete(oldest);
      this.archive?.trimmed(oldest);
    }
  }

  private save(r: TaskRecord): void {
    void this.archive
      ?.put(r)
      .catch((err) => this.opts.logger.error({ err, taskId: r.id }, 'cannot persist task'));
  }
}
