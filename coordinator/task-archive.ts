/**
 * Where task records are kept (coordinator/tasks.ts holds the newest in memory):
 *
 * - the state store's `tasks/<id>` keys (the lowdb file), trimmed by the tracker;
 * - with the JetStream store, a stream of its own (coordinator/store/task-stream.ts): one subject
 *   per task holding its latest record, bounded retention by the server, followed live by a
 *   follower coordinator.
 */
import type { TaskRecord } from '../protocol/rest/schemas.js';
import type { Store } from './store/types.js';

export interface TaskArchive {
  /** the newest `limit` records (the latest of each task), oldest first */
  load(limit: number): Promise<TaskRecord[]>;
  put(r: TaskRecord): Promise<void>;
  /** the tracker dropped it from its window: an archive without its own retention forgets it */
  trimmed(id: string): void;
  /** a follower: every record written from now on by another coordinator */
  follow?(fn: (r: TaskRecord) => void): { stop(): void };
  readonly describe: string;
}

const KEY = (id: string) => `tasks/${id}`;

export function storeTaskArchive(store: Store): TaskArchive {
  return {
    describe: 'tasks/ keys of the state store',
    async load(limit) {
      const all = (await store.list<TaskRecord>('tasks/')).map((e) => e.value);
      all.sort((a, b) => (a.createdAt < b.createdAt ? -1 : 1));
      return all.slice(-limit);
    },
    async put(r) {
      await store.put(KEY(r.id), r);
    },
    trimmed(id) {
      void store.delete(KEY(id)).catch(() => {});
    },
  };
}
