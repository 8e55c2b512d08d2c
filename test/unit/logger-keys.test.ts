// Both daemons bind the same child-logger key (`component`), and the work queue binds each
// reconcile's id and key, so one run's lines can be found together.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { WorkQueue } from '../../coordinator/workqueue.js';
import { COMPONENT_KEY, componentLogger } from '../../lib/logger.js';
import { TerminalError } from '../../protocol/index.js';

function memoryLogger(): { log: pino.Logger; lines: () => Array<Record<string, unknown>> } {
  const out: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      out.push(...String(chunk).split('\n').filter(Boolean));
      cb();
    },
  });
  const log = pino({ level: 'debug' }, stream);
  return { log, lines: () => out.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

const ROOT = new URL('../..', import.meta.url).pathname;
function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(ROOT, dir))) {
    const rel = join(dir, e);
    if (statSync(join(ROOT, rel)).isDirectory()) out.push(...sources(rel));
    else if (e.endsWith('.ts')) out.push(rel);
  }
  return out;
}

describe('child-logger keys', () => {
  it('componentLogger binds the one component key, beside other bindings', () => {
    const m = memoryLogger();
    componentLogger(m.log, 'engine').info('a');
    componentLogger(m.log, 'probe', { instance: 'etcd-0' }).info('b');
    expect(m.lines()).toEqual([
      expect.objectContaining({ [COMPONENT_KEY]: 'engine', msg: 'a' }),
      expect.objectContaining({ [COMPONENT_KEY]: 'probe', instance: 'etcd-0', msg: 'b' }),
    ]);
    expect(COMPONENT_KEY).toBe('component');
  });

  it('no daemon names its parts with another key (part, module, …)', () => {
    const offenders: string[] = [];
    for (const f of [...sources('coordinator'), ...sources('agent'), ...sources('lib')]) {
      const text = readFileSync(join(ROOT, f), 'utf8');
      for (const m of text.matchAll(/\.child\(\{\s*(part|module|subsystem|comp|name)\s*:/g))
        offenders.push(`${f}: ${m[0]}`);
    }
    expect(offenders).toEqual([]);
  });

  it('each reconcile gets its own id, bound with its key on the queue lines and the run logger', async () => {
    const m = memoryLogger();
    let fail = true;
    const seen: Array<{ id: number; key: string }> = [];
    const q = new WorkQueue(
      async (key, run) => {
        seen.push({ id: run.id, key: run.key });
        run.log.info('working');
        if (key === 'cluster:t') throw new TerminalError('DROVER_ERR_INTERNAL', 'no');
        if (fail) {
          fail = false;
          throw new Error('transient');
        }
        return undefined;
      },
      { logger: componentLogger(m.log, 'engine'), backoff: { initialMs: 1, maxMs: 1 } },
    );
    q.add('cluster:a');
    q.add('cluster:t');
    await new Promise((r) => setTimeout(r, 50));
    await q.idle();
    await q.close();
    expect(seen.map((s) => s.key).sort()).toEqual(['cluster:a', 'cluster:a', 'cluster:t']);
    const ids = seen.map((s) => s.id);
    expect(new Set(ids).size).toBe(ids.length);
    const lines = m.lines();
    for (const s of seen)
      expect(lines, `run ${s.id}`).toContainEqual(
        expect.objectContaining({ component: 'engine', reconcile: s.id, key: s.key, msg: 'working' }),
      );
    const retry = lines.find((l) => l.msg === 'reconcile failed; will retry');
    const terminal = lines.find((l) => l.msg === 'reconcile failed terminally; not retrying');
    expect(retry).toMatchObject({ component: 'engine', key: 'cluster:a', reconcile: seen[0]!.id });
    expect(terminal).toMatchObject({ component: 'engine', key: 'cluster:t' });
    expect(seen.find((s) => s.key === 'cluster:t')!.id).toBe(terminal!.reconcile);
  });
});
