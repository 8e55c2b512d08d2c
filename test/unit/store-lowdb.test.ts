import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type LowdbStore, openLowdbStore, StoreError } from '../../coordinator/store/index.js';
import { ManualClock } from '../../lib/clock.js';
import { until } from '../helpers/store-conformance.js';

const dirs: string[] = [];
const stores: LowdbStore[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'drover-lowdb-'));
  dirs.push(d);
  return d;
}
async function open(path: string, more: Parameters<typeof openLowdbStore>[0] | object = {}) {
  const s = await openLowdbStore({ path, ...more });
  stores.push(s);
  return s;
}
afterEach(async () => {
  await Promise.allSettled(stores.splice(0).map((s) => s.close()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function openError(path: string, more: object = {}): Promise<StoreError> {
  try {
    const s = await openLowdbStore({ path, ...more });
    await s.close();
  } catch (err) {
    expect(err).toBeInstanceOf(StoreError);
    return err as StoreError;
  }
  throw new Error('openLowdbStore did not fail');
}

const fileOf = (path: string) => JSON.parse(readFileSync(path, 'utf8'));

describe('LowdbStore: file', () => {
  it('creates the file and its directory, and persists across reopen', async () => {
    const path = join(tmp(), 'a', 'b', 'state.json');
    const s = await open(path);
    expect(fileOf(path)).toEqual({ schemaVersion: 1, revision: 0, entries: {} });
    await s.create('nodes/n1', { hostname: 'n1' });
    const r = await s.put('assignments/etcd#0', { nodeId: 'n1', epoch: 2 });
    await s.delete('nodes/n1');
    const last = s.revision();
    await s.close();
    const again = await open(path);
    expect(again.revision()).toBe(last);
    expect(await again.list('')).toEqual([
      { key: 'assignments/etcd#0', value: { nodeId: 'n1', epoch: 2 }, revision: r },
    ]);
    // revisions keep growing after a restart, deletes included
    expect(await again.put('x', 1)).toBe(last + 1);
  });

  it('flush makes accepted changes durable; awaitDurable makes each call wait for it', async () => {
    const path = join(tmp(), 'state.json');
    const s = await open(path, { flushDelayMs: 60_000 });
    await s.put('k', 'v');
    expect(fileOf(path).entries).toEqual({}); // still batching
    await s.flush();
    expect(fileOf(path).entries.k).toEqual({ revision: 1, value: 'v' });
    expect(s.stats().durableRevision).toBe(1);

    const path2 = join(tmp(), 'durable.json');
    const d = await open(path2, { flushDelayMs: 5, awaitDurable: true });
    await d.put('k', 'v');
    expect(fileOf(path2).entries.k.value).toBe('v');
  });

  it('batches a burst of changes into one file write', async () => {
    const clock = new ManualClock(0);
    const s = await open(join(tmp(), 'state.json'), { clock, flushDelayMs: 5 });
    const base = s.stats().writes; // the initial file
    await Promise.all(Array.from({ length: 100 }, (_, i) => s.put(`k/${i}`, i)));
    for (let i = 0; i < 100; i++) await s.put(`seq/${i}`, i);
    expect(s.stats().writes).toBe(base);
    clock.advance(5);
    await s.flush();
    expect(s.stats().writes).toBe(base + 1);
    expect(s.stats().durableRevision).toBe(200);
    // nothing new: flush writes nothing
    await s.flush();
    expect(s.stats().writes).toBe(base + 1);
  });

  it('with the real clock, a burst costs a handful of writes, not one per change', async () => {
    const s = await open(join(tmp(), 'state.json'), { flushDelayMs: 5 });
    const base = s.stats().writes;
    for (let i = 0; i < 300; i++) await s.put(`k/${i % 20}`, { i });
    await s.flush();
    expect(s.stats().writes - base).toBeLessThan(10);
    expect(s.stats().writes - base).toBeGreaterThanOrEqual(1);
  });

  it('keeps changes in memory and retries when a write fails, then catches up', async () => {
    const dir = tmp();
    const path = join(dir, 'sub', 'state.json');
    const s = await open(path, { flushDelayMs: 1 });
    await s.put('a', 1);
    await s.flush();
    // Replace the directory with a file: every write now fails (root ignores permission bits).
    rmSync(join(dir, 'sub'), { recursive: true });
    writeFileSync(join(dir, 'sub'), 'not a dir');
    await s.put('b', 2);
    const err = await s.flush().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).code).toBe('DROVER_ERR_STORE_WRITE');
    expect((err as StoreError).message).toContain(path);
    expect(s.stats().failures).toBeGreaterThan(0);
    expect((await s.get('b'))?.value).toBe(2); // still served from memory
    rmSync(join(dir, 'sub'));
    mkdirSync(join(dir, 'sub'));
    await until('retry succeeds', () => s.stats().failures === 0, 10_000);
    await s.flush();
    expect(fileOf(path).entries.b.value).toBe(2);
  });

  it('refuses to start on a path that cannot be read or created', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'file'), 'x');
    const err = await openError(join(dir, 'file', 'state.json'));
    expect(err.code).toBe('DROVER_ERR_STORE_CORRUPT'); // ENOTDIR: unreadable
    expect(err.message).toContain(join(dir, 'file', 'state.json'));
    expect(readFileSync(join(dir, 'file'), 'utf8')).toBe('x');
  });

  it('forgets watch history across a restart: older revisions report compaction', async () => {
    const path = join(tmp(), 'state.json');
    const s = await open(path);
    for (let i = 0; i < 5; i++) await s.put(`k/${i}`, i);
    await s.close();
    const again = await open(path);
    const errors: Error[] = [];
    again.watch(
      '',
      2,
      () => {},
      (e) => errors.push(e),
    );
    await until('compacted', () => errors.length === 1);
    expect((errors[0] as StoreError).code).toBe('DROVER_ERR_STORE_COMPACTED');
    const seen: number[] = [];
    again.watch('', again.revision(), (e) => seen.push(e.revision));
    await again.put('z', 1);
    await until('live', () => seen.length === 1);
    expect(seen).toEqual([6]);
  });

  it('rejects unknown or invalid options by name', async () => {
    const path = join(tmp(), 'state.json');
    expect((await openError(path, { flushDelay: 5 })).message).toContain('flushDelay: unknown option');
    expect((await openError(path, { historyLimit: 0 })).message).toContain('historyLimit');
    expect((await openError(path, { flushDelayMs: -1 })).code).toBe('DROVER_ERR_STORE_OPTIONS');
  });
});

describe('LowdbStore: a corrupt or unreadable file stops start-up and is never replaced', () => {
  const cases: Array<[string, string]> = [
    ['not JSON', '{"schemaVersion": 1, "revision": 3, "entr'],
    ['empty', ''],
    ['null', 'null'],
    ['an array', '[]'],
    ['no schemaVersion', '{"revision": 0, "entries": {}}'],
    ['no entries', '{"schemaVersion": 1, "revision": 0}'],
    [
      'an entry newer than the file',
      '{"schemaVersion": 1, "revision": 1, "entries": {"k": {"revision": 5, "value": 1}}}',
    ],
    ['an entry without a value', '{"schemaVersion": 1, "revision": 1, "entries": {"k": {"revision": 1}}}'],
  ];
  it.each(cases)('%s', async (_what, content) => {
    const path = join(tmp(), 'state.json');
    writeFileSync(path, content);
    const err = await openError(path);
    expect(err.code).toBe('DROVER_ERR_STORE_CORRUPT');
    expect(err.message).toContain(path);
    expect(err.message).toContain('refusing to start');
    expect(readFileSync(path, 'utf8')).toBe(content);
    expect(readdirSync(join(path, '..'))).toEqual(['state.json']);
  });

  it('a path that is a directory', async () => {
    const path = join(tmp(), 'state.json');
    mkdirSync(path);
    const err = await openError(path);
    expect(err.code).toBe('DROVER_ERR_STORE_CORRUPT');
    expect(err.message).toContain('cannot be read');
  });
});

describe('LowdbStore: schema versions and migrations', () => {
  const v1 = {
    schemaVersion: 1,
    revision: 2,
    entries: { a: { revision: 1, value: 1 }, b: { revision: 2, value: 2 } },
  };

  it('refuses a file from a newer build', async () => {
    const path = join(tmp(), 'state.json');
    const text = JSON.stringify({ ...v1, schemaVersion: 9 });
    writeFileSync(path, text);
    const err = await openError(path);
    expect(err.code).toBe('DROVER_ERR_STORE_VERSION');
    expect(err.message).toContain('schema version 9');
    expect(readFileSync(path, 'utf8')).toBe(text);
  });

  it('runs the migration hook, keeps a backup and writes the new version', async () => {
    const path = join(tmp(), 'state.json');
    writeFileSync(path, JSON.stringify(v1));
    const s = await open(path, {
      schemaVersion: 2,
      migrations: [
        {
          from: 1,
          migrate: (f: Record<string, unknown>) => {
            const entries = f.entries as Record<string, { revision: number; value: unknown }>;
            for (const e of Object.values(entries)) e.value = { wrapped: e.value };
            return f;
          },
        },
      ],
    });
    expect((await s.get('a'))?.value).toEqual({ wrapped: 1 });
    expect(fileOf(path).schemaVersion).toBe(2);
    expect(fileOf(`${path}.v1.bak`)).toEqual(v1);
    await s.put('c', 3);
    await s.close();
    expect(fileOf(path).schemaVersion).toBe(2);
  });

  it('fails without a migration path, or when a migration throws, leaving the file as it was', async () => {
    const path = join(tmp(), 'state.json');
    const text = JSON.stringify(v1);
    writeFileSync(path, text);
    expect((await openError(path, { schemaVersion: 2 })).code).toBe('DROVER_ERR_STORE_VERSION');
    const err = await openError(path, {
      schemaVersion: 2,
      migrations: [
        {
          from: 1,
          migrate: () => {
            throw new Error('nope');
          },
        },
      ],
    });
    expect(err.code).toBe('DROVER_ERR_STORE_VERSION');
    expect(err.message).toContain('nope');
    expect(readFileSync(path, 'utf8')).toBe(text);
  });
});

describe('LowdbStore: crash safety', () => {
  it('ignores stray temp files left by an interrupted write', async () => {
    const dir = tmp();
    const path = join(dir, 'state.json');
    const s = await open(path);
    await s.put('k', 'good');
    await s.close();
    writeFileSync(join(dir, '.0123456789ab.tmp'), '{"schemaVersion":1,"revision":99,"entr');
    const again = await open(path);
    expect((await again.get('k'))?.value).toBe('good');
    expect(again.revision()).toBe(1);
  });

  it('a process SIGKILLed while writing leaves a valid store with every flushed change', async () => {
    const path = join(tmp(), 'state.json');
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/store-crash-child.ts', path], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let errOut = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
    });
    child.stderr.on('data', (b: Buffer) => {
      errOut += b.toString();
    });
    const exited = new Promise((r) => child.once('exit', r));
    await until(`child to flush 40 times (stderr: ${errOut})`, () => out.split('\n').length > 40, 30_000);
    child.kill('SIGKILL');
    await exited;
    const flushed = out
      .trim()
      .split('\n')
      .map(Number)
      .filter((n) => Number.isInteger(n));
    const lastDurable = flushed.at(-1)!;
    const s = await open(path);
    expect(s.revision()).toBeGreaterThanOrEqual(lastDurable);
    const entries = await s.list<{ i: number }>('k/');
    expect(entries.length).toBe(Math.min(50, s.revision()));
    // Every entry's revision is its write number + 1 (one put per revision), so the file is one
    // consistent snapshot, not a torn mix of two writes.
    for (const e of entries) expect(e.revision).toBe(e.value.i + 1);
  });
});
