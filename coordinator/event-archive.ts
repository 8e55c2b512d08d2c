/**
 * Where the event history is kept (coordinator/events.ts holds the newest ones in memory):
 *
 * - the state store's `events/<seq>` keys (the lowdb file), trimmed by the event log;
 * - with the JetStream store, a stream of its own with bounded retention
 *   (coordinator/store/event-stream.ts): the server drops the oldest beyond the limit, and a
 *   follower coordinator follows it live.
 */
import type { Event } from '../protocol/index.js';
import type { Store } from './store/types.js';

export interface EventArchive {
  /** the newest `limit` events, oldest first */
  load(limit: number): Promise<Event[]>;
  /** keeps one event (acknowledged when the promise resolves) */
  append(e: Event): Promise<void>;
  /** events the log dropped from its window: an archive without its own retention forgets them */
  trimmed(events: readonly Event[]): void;
  /** a follower: every event appended from now on by another coordinator */
  follow?(fn: (e: Event) => void): { stop(): void };
  readonly describe: string;
}

const KEY = (seq: number) => `events/${String(seq).padStart(12, '0')}`;

/** The event history as keys of the state store: what the lowdb file (and older buckets) hold. */
export function storeEventArchive(store: Store): EventArchive {
  return {
    describe: 'events/ keys of the state store',
    async load(limit) {
      return (await store.list<Event>('events/')).slice(-limit).map((e) => e.value);
    },
    async append(e) {
      await store.put(KEY(e.seq), e);
    },
    trimmed(events) {
      for (const d of events) void store.delete(KEY(d.seq)).catch(() => {});
    },
  };
}
