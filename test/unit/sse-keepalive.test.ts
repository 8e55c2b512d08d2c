// The SSE stream's keepalive comments go by the injected clock: paced by it and stamped with it.
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { SseHub, streamEvents } from '../../coordinator/api/sse.js';
import { EventLog } from '../../coordinator/events.js';
import { MemoryStore } from '../../coordinator/store/index.js';
import { ManualClock } from '../../lib/clock.js';
import { silentLogger } from '../../lib/logger.js';
import { waitFor } from '../helpers/servers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('SSE keepalive', () => {
  it('comes once per heartbeat of the injected clock, stamped with its time, and stops with the stream', async () => {
    const clock = new ManualClock(Date.parse('2030-01-02T03:04:05.000Z'));
    const log = new EventLog(new MemoryStore(), silentLogger, 100, clock);
    const hub = new SseHub();
    const app = Fastify();
    app.get('/events', (req, reply) =>
      streamEvents(req, reply, log, {}, hub, { heartbeatMs: 15_000, clock }),
    );
    await app.listen({ host: '127.0.0.1', port: 0 });
    cleanups.push(async () => {
      hub.closeAll();
      await app.close();
    });
    const { port } = app.server.address() as { port: number };
    const abort = new AbortController();
    cleanups.push(async () => abort.abort());
    const res = await fetch(`http://127.0.0.1:${port}/events`, { signal: abort.signal });
    let text = '';
    void (async () => {
      const dec = new TextDecoder();
      try {
        for await (const c of res.body as unknown as AsyncIterable<Uint8Array>)
          text += dec.decode(c, { stream: true });
      } catch {
        // aborted
      }
    })();
    const keepalives = () => [...text.matchAll(/^: keepalive (.*)$/gm)].map((m) => m[1]);
    await waitFor('the stream open', async () => text.includes('drover events from seq'));
    await waitFor('the stream registered', async () => hub.size === 1);
    expect(clock.pending()).toBe(1); // the keepalive, on the injected clock
    clock.advance(14_999);
    log.emit({ kind: 'node.joined', severity: 'info', message: 'x' }); // a frame after it: the socket is flushed
    await waitFor('the event', async () => text.includes('event: node.joined'));
    expect(keepalives()).toEqual([]);
    clock.advance(1);
    await waitFor('one keepalive', async () => keepalives().length === 1);
    clock.advance(30_000);
    await waitFor('three keepalives', async () => keepalives().length === 3);
    expect(keepalives()).toEqual([
      '2030-01-02T03:04:20.000Z',
      '2030-01-02T03:04:35.000Z',
      '2030-01-02T03:04:50.000Z',
    ]);
    hub.closeAll();
    expect(clock.pending()).toBe(0);
  });
});
