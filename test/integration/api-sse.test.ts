import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../helpers/api.js';
import { waitFor } from '../helpers/servers.js';

interface Frame {
  id?: string;
  event?: string;
  data?: string;
  comment?: string;
}

/** Reads an SSE response over a real socket, frame by frame. */
class SseReader {
  readonly frames: Frame[] = [];
  ended = false;
  private constructor(readonly res: Response) {}

  static async open(url: string, headers: Record<string, string>, signal: AbortSignal): Promise<SseReader> {
    const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal });
    const r = new SseReader(res);
    if (res.ok) void r.pump();
    return r;
  }

  private async pump(): Promise<void> {
    const dec = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of this.res.body as unknown as AsyncIterable<Uint8Array>) {
        buf += dec.decode(chunk, { stream: true });
        for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
          const f: Frame = {};
          for (const line of buf.slice(0, i).split('\n')) {
            if (line.startsWith(':')) f.comment = line.slice(1).trim();
            else if (line.startsWith('id: ')) f.id = line.slice(4);
            else if (line.startsWith('event: ')) f.event = line.slice(7);
            else if (line.startsWith('data: ')) f.data = line.slice(6);
          }
          this.frames.push(f);
          buf = buf.slice(i + 2);
        }
      }
    } catch {
      // aborted by the test
    }
    this.ended = true;
  }

  events(): Array<{ seq: number; kind: string; id: string }> {
    return this.frames.filter((f) => f.data).map((f) => JSON.parse(f.data!));
  }
}

let t: TestApi;
let base: string;
let abort: AbortController;

beforeEach(async () => {
  t = await startTestApi({ sseHeartbeatMs: 150 });
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  const addr = t.app.server.address() as { port: number };
  base = `http://127.0.0.1:${addr.port}`;
  abort = new AbortController();
});

afterEach(async () => {
  abort.abort();
  await t.close();
});

describe('GET /v1/events as Server-Sent Events (real socket)', () => {
  it('needs a token', async () => {
    const r = await fetch(`${base}/v1/events`, { headers: { accept: 'text/event-stream' } });
    expect(r.status).toBe(401);
    expect((await r.json()).code).toBe('DROVER_ERR_UNAUTHORIZED');
  });

  it('replays history after `since`, streams live events with id = seq, and sends heartbeat comments', async () => {
    await t.register('n1');
    const history = t.engine.events.list();
    expect(history.length).toBeGreaterThan(1);
    const s = await SseReader.open(`${base}/v1/events?since=0`, t.auth(t.viewer), abort.signal);
    expect(s.res.status).toBe(200);
    expect(s.res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    await waitFor('history replayed', () => s.events().length >= history.length, { timeoutMs: 5000 });
    expect(s.events().map((e) => e.seq)).toEqual(history.map((e) => e.seq));
    const live = t.engine.events.emit({ kind: 'test.live', severity: 'info', message: 'live one' });
    await waitFor('live event', () => s.events().some((e) => e.seq === live.seq), { timeoutMs: 5000 });
    const frame = s.frames.find((f) => f.data && JSON.parse(f.data).seq === live.seq)!;
    expect(frame.id).toBe(String(live.seq));
    expect(frame.event).toBe('test.live');
    await waitFor('keepalive comment', () => s.frames.some((f) => f.comment?.startsWith('keepalive')), {
      timeoutMs: 5000,
    });
  });

  it('without since or Last-Event-ID starts at the live edge', async () => {
    await t.register('n1');
    const s = await SseReader.open(`${base}/v1/events`, t.auth(t.viewer), abort.signal);
    await waitFor('stream open', () => s.frames.length > 0, { timeoutMs: 5000 });
    const e = t.engine.events.emit({ kind: 'test.after', severity: 'info', message: 'after' });
    await waitFor('live event', () => s.events().length > 0, { timeoutMs: 5000 });
    expect(s.events().map((x) => x.seq)).toEqual([e.seq]);
  });

  it('resumes after Last-Event-ID with nothing lost or repeated, and applies filters', async () => {
    for (const id of ['n1', 'n2', 'n3']) await t.register(id);
    const all = t.engine.events.list();
    const cut = all[1]!.seq;
    const s = await SseReader.open(
      `${base}/v1/events`,
      { ...t.auth(t.viewer), 'last-event-id': String(cut) },
      abort.signal,
    );
    const expected = all.filter((e) => e.seq > cut).map((e) => e.seq);
    await waitFor('resumed history', () => s.events().length >= expected.length, { timeoutMs: 5000 });
    expect(s.events().map((e) => e.seq)).toEqual(expected);

    const f = await SseReader.open(`${base}/v1/events?since=0&node=n2`, t.auth(t.viewer), abort.signal);
    t.engine.events.emit({ kind: 'test.other', severity: 'info', nodeId: 'n3', message: 'not for n2' });
    const mine = t.engine.events.emit({
      kind: 'test.mine',
      severity: 'warning',
      nodeId: 'n2',
      message: 'for n2',
    });
    await waitFor('filtered live event', () => f.events().some((e) => e.seq === mine.seq), {
      timeoutMs: 5000,
    });
    expect(f.events().every((e) => (e as unknown as { nodeId: string }).nodeId === 'n2')).toBe(true);
  });

  it('ends open streams when the server closes', async () => {
    const s = await SseReader.open(`${base}/v1/events`, t.auth(t.viewer), abort.signal);
    await waitFor('stream open', () => s.frames.length > 0, { timeoutMs: 5000 });
    const start = Date.now();
    await t.app.close();
    await waitFor('stream ended', () => s.ended, { timeoutMs: 5000 });
    expect(Date.now() - start).toBeLessThan(5000);
  });
});

describe('SSE limits per token (real socket)', () => {
  it('the 9th stream of a token gets 429 naming the cap and the token, while another token can still open one', async () => {
    const open: SseReader[] = [];
    for (let i = 0; i < 8; i++) {
      const s = await SseReader.open(`${base}/v1/events`, t.auth(t.viewer), abort.signal);
      expect(s.res.status, `stream ${i + 1}`).toBe(200);
      open.push(s);
    }
    const ninth = await fetch(`${base}/v1/events`, {
      headers: { accept: 'text/event-stream', ...t.auth(t.viewer) },
      signal: abort.signal,
    });
    expect(ninth.status).toBe(429);
    const body = await ninth.json();
    expect(body.code).toBe('DROVER_ERR_STREAM_LIMIT');
    expect(body.message).toMatch(/token "watcher" has 8 event streams open already/);
    expect(body.details).toMatchObject({ limit: 8, token: 'watcher' });
    // the list form of the same route is not a stream and is not capped
    const list = await fetch(`${base}/v1/events`, { headers: t.auth(t.viewer) });
    expect(list.status).toBe(200);
    const other = await SseReader.open(`${base}/v1/events`, t.auth(t.operator), abort.signal);
    expect(other.res.status).toBe(200);
    // the streams that were open still get events
    const e = t.engine.events.emit({ kind: 'test.capped', severity: 'info', message: 'still here' });
    await waitFor(
      'event on every open stream',
      () => [...open, other].every((s) => s.events().some((x) => x.seq === e.seq)),
      { timeoutMs: 5000 },
    );
  });

  it('a closed stream frees its place', async () => {
    const t2 = await startTestApi({ maxStreamsPerToken: 1 });
    await t2.app.listen({ host: '127.0.0.1', port: 0 });
    const url = `http://127.0.0.1:${(t2.app.server.address() as { port: number }).port}/v1/events`;
    try {
      const first = new AbortController();
      const a = await SseReader.open(url, t2.auth(t2.viewer), first.signal);
      expect(a.res.status).toBe(200);
      await waitFor('stream open', () => a.frames.length > 0, { timeoutMs: 5000 });
      expect((await SseReader.open(url, t2.auth(t2.viewer), abort.signal)).res.status).toBe(429);
      first.abort();
      await waitFor(
        'place freed',
        async () => (await SseReader.open(url, t2.auth(t2.viewer), abort.signal)).res.status === 200,
        { timeoutMs: 5000 },
      );
    } finally {
      abort.abort();
      await t2.close();
    }
  });

  it('deleting a token ends its open streams at once, and only its', async () => {
    const created = await t.tokens.create('temp', 'viewer');
    const mine = await SseReader.open(`${base}/v1/events`, t.auth(created.token), abort.signal);
    const theirs = await SseReader.open(`${base}/v1/events`, t.auth(t.viewer), abort.signal);
    await waitFor('streams open', () => mine.frames.length > 0 && theirs.frames.length > 0, {
      timeoutMs: 5000,
    });
    const del = await fetch(`${base}/v1/tokens/${created.id}`, {
      method: 'DELETE',
      headers: t.auth(t.admin),
    });
    expect(del.status).toBe(200);
    await waitFor('revoked stream ended', () => mine.ended, { timeoutMs: 2000 });
    expect(theirs.ended).toBe(false);
    // and the token cannot open a new one
    const again = await fetch(`${base}/v1/events`, {
      headers: { accept: 'text/event-stream', ...t.auth(created.token) },
    });
    expect(again.status).toBe(401);
    const e = t.engine.events.emit({ kind: 'test.after-delete', severity: 'info', message: 'x' });
    await waitFor('other stream still live', () => theirs.events().some((x) => x.seq === e.seq), {
      timeoutMs: 5000,
    });
  });
});
