import { randomUUID } from 'node:crypto';
import { type Clock, isoNow, systemClock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { type Event, PROTOCOL_VERSION } from '../protocol/index.js';
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

const KEY = (seq: number) => `events/${String(seq).padStart(12, '0')}`;
/** the highest seq this coordinator may have handed out; survives a crash that lost the events */
const RESERVED_KEY = 'events-meta/reserved';
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

  constructor(
    private readonly store: Store,
    private readonly logger: Logger,
    private readonly limit = 5000,
    private readonly clock: Clock = systemClock,
  ) {}

  /**
   * Loads the history. Sequence numbers are reserved in blocks ahead of use (persisted with the
   * store's batched writes), and a restart continues above the reservation: events lost in the
   * last moments before a crash leave a gap in `seq`, never a reused number, so an SSE client that
   * resumes with `Last-Event-ID` cannot skip a new event that took an old number.
   */
  async load(): Promise<void> {
    const all = await this.store.list<Event>('events/');
    for (const e of all.slice(-this.limit)) this.recent.push(e.value);
    const reserved = (await this.store.get<{ seq: number }>(RESERVED_KEY))?.value.seq ?? 0;
    this.seq = Math.max(this.recent.at(-1)?.seq ?? 0, reserved);
    await this.reserve();
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
    void this.store.put(KEY(e.seq), e).catch((err) => this.logger.error({ err }, 'cannot persist event'));
    if (this.recent.length > this.limit) {
      const drop = this.recent.splice(0, this.recent.length - this.limit);
      for (const d of drop) void this.store.delete(KEY(d.seq)).catch(() => {});
    }
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
