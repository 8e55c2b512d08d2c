import type { FastifyReply, FastifyRequest } from 'fastify';
import { type Clock, isoNow, systemClock, type Ticker } from '../../lib/clock.js';
import type { Event } from '../../protocol/index.js';
import { coordinatorError } from '../errors.js';
import type { EventFilter, EventLog } from '../events.js';

export interface SseOptions {
  /** comment line sent this often so proxies and clients know the stream is alive; default 15 s */
  heartbeatMs?: number;
  /** a client this far behind (bytes buffered) is cut off; it resumes with Last-Event-ID; default 1 MiB */
  maxBufferedBytes?: number;
  /** paces and stamps the keepalive comments; default the system clock */
  clock?: Clock;
  /** open streams one API token may hold (`api.maxStreamsPerToken`); default 8 */
  maxStreamsPerToken?: number;
}

export const DEFAULT_MAX_STREAMS_PER_TOKEN = 8;

/** Who opened a stream: the API token (its id names it in the hub, its name in messages). */
export interface StreamOwner {
  id: string;
  name: string;
}

/**
 * Live SSE streams by the token that opened them, so shutdown can end them all (a hijacked socket
 * would otherwise hold close()), deleting a token ends its streams, and a token's streams are
 * capped.
 */
export class SseHub {
  private readonly streams = new Map<() => void, string | undefined>();

  get size(): number {
    return this.streams.size;
  }

  /** Open streams of the token id. */
  count(tokenId: string): number {
    let n = 0;
    for (const id of this.streams.values()) if (id === tokenId) n++;
    return n;
  }

  add(end: () => void, tokenId?: string): () => void {
    this.streams.set(end, tokenId);
    return () => this.streams.delete(end);
  }

  /** Ends every stream the token opened (it was deleted); answers how many. */
  closeToken(tokenId: string): number {
    const ends = [...this.streams].filter(([, id]) => id === tokenId).map(([end]) => end);
    for (const end of ends) end();
    return ends.length;
  }

  closeAll(): void {
    for (const end of [...this.streams.keys()]) end();
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
 *
 * With an `owner` (the request's token) the stream counts against that token's cap: one more than
 * `maxStreamsPerToken` throws DROVER_ERR_STREAM_LIMIT (429) before anything is sent, and
 * `hub.closeToken(owner.id)` ends it.
 */
export function streamEvents(
  req: FastifyRequest,
  reply: FastifyReply,
  log: EventLog,
  filter: EventFilter,
  hub: SseHub,
  opts: SseOptions = {},
  owner?: StreamOwner,
): void {
  const cap = opts.maxStreamsPerToken ?? DEFAULT_MAX_STREAMS_PER_TOKEN;
  if (owner && hub.count(owner.id) >= cap)
    throw coordinatorError(
      'DROVER_ERR_STREAM_LIMIT',
      `token ${JSON.stringify(owner.name)} has ${cap} event streams open already, the most one token may (api.maxStreamsPerToken); close one, or use another token`,
      { limit: cap, token: owner.name, tokenId: owner.id },
    );
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
  const forget = hub.add(end, owner?.id);
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
