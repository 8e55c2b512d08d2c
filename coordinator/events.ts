import { randomUUID } from 'node:crypto';
import { type Clock, isoNow, systemClock } from '../lib/clock.js';
import { withDeadline } from '../lib/deadline.js';
import type { Logger } from '../lib/logger.js';
import { type Event, PROTOCOL_VERSION } from '../protocol/index.js';
import { type EventArchive, storeEventArchive } from './event-archive.js';
import type { Store } from './store/types.js';

export type EventInput = Omit<Event, 'v' | 'type' | 'id' | 'seq' | 'time'> & { time?: string };

export interface EventFilter {
  kind?: string;
  nodeId?: string;
  role?: string;
  severity?: Event['severity'];
  sinceSeq?: number;
  limit?: number;
}

/** the highest seq this coordinator may have handed out; survives a crash that lost the events */
const RESERVED_KEY = 'events-meta/reserved';
const HISTORY_WAIT_MS = 5000;
const HISTORY_RETRY_MS = 5000;
const RESERVE = 1000;

/**
 * The bounded event history. Events are kept in the store (so the story survives a restart), the
 * newest `limit` of them, and fanned out to live listeners (SSE, the NATS bus).
 */
export class EventLog {
  private seq = 0;
  private reserved = 0;
  private readonly recent: Event[] = [];
  private readonly listeners = new Set<(e: Event) => void>();

  private readonly archive: EventArchive;

  constructor(
    private readonly store: Store,
    private readonly logger: Logger,
    private readonly limit = 5000,
    private readonly clock: Clock = systemClock,
    /** where the history is kept (coordinator/event-archive.ts); default the store's `events/` keys */
    archive?: EventArchive,
  ) {
    this.archive = archive ?? storeEventArchive(store);
  }

  /**
   * Loads the history. Sequence numbers are reserved in blocks ahead of use (persisted with the
   * store's batched writes), and a restart continues above the reservation: events lost in the
   * last moments before a crash leave a gap in `seq`, never a reused number, so an SSE client that
   * resumes with `Last-Event-ID` cannot skip a new event that took an old number.
   */
  async load(): Promise<void> {
    for (const e of await this.history()) this.recent.push(e);
    const reserved = (await this.store.get<{ seq: number }>(RESERVED_KEY))?.value.seq ?? 0;
    this.seq = Math.max(this.recent.at(-1)?.seq ?? 0, reserved);
    await this.reserve();
  }

  /** Loads the history without reserving numbers: a follower coordinator only reads. */
  async loadReadOnly(): Promise<void> {
    for (const e of await this.history()) this.recent.push(e);
    this.seq = this.recent.at(-1)?.seq ?? 0;
  }

  /**
   * The archived history, within a few seconds. An archive that cannot answer now (a JetStream
   * stream whose peer just died may not let a consumer be made for a while) must not hold up the
   * coordinator's start: it starts with none, and the history is filled in once it answers.
   */
  private async history(): Promise<Event[]> {
    try {
      return await withDeadline(
        this.archive.load(this.limit),
        HISTORY_WAIT_MS,
        `the event history (${this.archive.describe})`,
      );
    } catch (err) {
      this.logger.warn(
        { err: (err as Error).message },
        'starting without the event history; it is read again in the background',
      );
      this.backfill();
      return [];
    }
  }

  private backfill(): void {
    const t = this.clock.setTimeout(() => {
      void this.archive.load(this.limit).then(
        (older) => {
          const first = this.recent[0]?.seq ?? Number.POSITIVE_INFINITY;
          const before = older.filter((e) => e.seq < first);
          this.recent.unshift(...before);
          if (this.recent.length > this.limit) this.recent.splice(0, this.recent.length - this.limit);
          this.logger.info({ events: before.length }, 'the event history is back');
        },
        () => this.backfill(),
      );
    }, HISTORY_RETRY_MS);
    void t;
  }

  /** A follower: the events the leader appends to an archive that can be followed (a stream). */
  followArchive(): { stop(): void } | undefined {
    return this.archive.follow?.((e) => this.observe(e));
  }

  /**
   * An event another coordinator (the leader) wrote, as the store's watch delivers it: kept and
   * fanned out to this process's listeners (a follower's SSE streams), never written again.
   */
  observe(e: Event): void {
    if (e.seq <= this.seq) return;
    this.seq = e.seq;
    this.recent.push(e);
    if (this.recent.length > this.limit) this.recent.splice(0, this.recent.length - this.limit);
    for (const l of this.listeners) {
      try {
        l(e);
      } catch (err) {
        this.logger.warn({ err }, 'event listener failed');
      }
    }
  }

  private reserve(): Promise<unknown> {
    this.reserved = this.seq + RESERVE;
    return this.store.put(RESERVED_KEY, { seq: this.reserved });
  }

  emit(input: EventInput): Event {
    const e: Event = {
      v: PROTOCOL_VERSION,
      type: 'event',
      id: randomUUID(),
      seq: ++this.seq,
      time: input.time ?? isoNow(this.clock),
      ...input,
    } as Event;
    // the next block is reserved half a block early, long before this one runs out
    if (this.seq > this.reserved - RESERVE / 2)
      void this.reserve().catch((err) => this.logger.error({ err }, 'cannot reserve event numbers'));
    this.recent.push(e);
    const log =
      e.severity === 'error'
        ? this.logger.error
        : e.severity === 'warning'
          ? this.logger.warn
          : this.logger.info;
    log.call(
      this.logger,
      { event: e.kind, nodeId: e.nodeId, instanceId: e.instanceId, role: e.role },
      e.message,
    );
    void this.archive.append(e).catch((err) => this.logger.error({ err }, 'cannot persist event'));
    if (this.recent.length > this.limit)
      this.archive.trimmed(this.recent.splice(0, this.recent.length - this.limit));
    for (const l of this.listeners) {
      try {
        l(e);
      } catch (err) {
        this.logger.warn({ err }, 'event listener failed');
      }
    }
    return e;
  }

  list(f: EventFilter = {}): Event[] {
    let out = this.recent.filter(
      (e) =>
        (f.kind === undefined || e.kind === f.kind || e.kind.startsWith(`${f.kind}.`)) &&
        (f.nodeId === undefined || e.nodeId === f.nodeId) &&
        (f.role === undefined || e.role === f.role) &&
        (f.severity === undefined || e.severity === f.severity) &&
        (f.sinceSeq === undefined || e.seq > f.sinceSeq),
    );
    if (f.limit !== undefined) out = out.slice(-f.limit);
    return out;
  }

  subscribe(fn: (e: Event) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  get lastSeq(): number {
    return this.seq;
  }
}
