import type { FastifyReply, FastifyRequest } from 'fastify';
import { type Clock, isoNow, systemClock, type Ticker } from '../../lib/clock.js';
import type { Event } from '../../protocol/index.js';
import type { EventFilter, EventLog } from '../events.js';

export interface SseOptions {
  /** comment line sent this often so proxies and clients know the stream is alive; default 15 s */
  heartbeatMs?: number;
  /** a client this far behind (bytes buffered) is cut off; it resumes with Last-Event-ID; default 1 MiB */
  maxBufferedBytes?: number;
  /** paces and stamps the keepalive comments; default the system clock */
  clock?: Clock;
}

/** Live SSE streams, so shutdown can end them (a hijacked socket would otherwise hold close()). */
export class SseHub {
  private readonly streams = new Set<() => void>();

  get size(): number {
    return this.streams.size;
  }

  add(end: () => void): () => void {
    this.streams.add(end);
    return () => this.streams.delete(end);
  }

  closeAll(): void {
    for (const end of [...this.streams]) end();
  }
}

export function wantsEventStream(req: FastifyRequest): boolean {
  return (req.headers.accept ?? '').includes('text/event-stream');
}

function matches(e: Event, f: EventFilter): boolean {
  return (
    (f.kind === undefined || e.kind === f.kind || e.kind.startsWith(`${f.kind}.`)) &&
    (f.nodeId === undefined || e.nodeId === f.nodeId) &&
    (f.role === undefined || e.role === f.role) &&
    (f.severity === undefined || e.severity === f.severity)
  );
}

function frame(e: Event): string {
  return `id: ${e.seq}\nevent: ${e.kind}\ndata: ${JSON.stringify(e)}\n\n`;
}

/**
 * Streams events as Server-Sent Events: first the retained history after `Last-Event-ID` (or
 * `since`), then live ones. `id:` is the event's seq, so a reconnecting client resumes exactly
 * where it stopped, as long as the event is still in the in-memory history.
 */
export function streamEvents(
  req: FastifyRequest,
  reply: FastifyReply,
  log: EventLog,
  filter: EventFilter,
  hub: SseHub,
  opts: SseOptions = {},
): void {
  const heartbeatMs = opts.heartbeatMs ?? 15_000;
  const maxBuffered = opts.maxBufferedBytes ?? 1024 * 1024;
  const clock = opts.clock ?? systemClock;
  const lastId = Number(req.headers['last-event-id']);
  const since = Number.isInteger(lastId) && lastId >= 0 ? lastId : filter.sinceSeq;
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  let lastSent = since ?? log.lastSeq;
  let ended = false;
  let keepalive: Ticker | undefined;
  let unsubscribe = () => {};
  const end = () => {
    if (ended) return;
    ended = true;
    keepalive?.stop();
    unsubscribe();
    forget();
    res.end();
  };
  const forget = hub.add(end);
  const send = (e: Event) => {
    if (ended || e.seq <= lastSent || !matches(e, filter)) return;
    lastSent = e.seq;
    res.write(frame(e));
    if (res.writableLength > maxBuffered) end();
  };
  // History and subscription happen in the same tick, so no event can fall between them.
  res.write(`retry: 2000\n: drover events from seq ${lastSent}\n\n`);
  if (since !== undefined)
    for (const e of log.list({ ...filter, sinceSeq: since, limit: undefined })) send(e);
  if (ended) return;
  unsubscribe = log.subscribe(send);
  keepalive = clock.every(heartbeatMs, () => {
    if (!ended) res.write(`: keepalive ${isoNow(clock)}\n\n`);
  });
  req.raw.on('close', end);
  res.on('error', end);
}
