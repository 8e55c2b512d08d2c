/**
 * The store conformance suite: every Store implementation (lowdb file, memory, a later JetStream KV)
 * must pass it. Call `storeConformance('name', factory)` from a test file; the factory gets the
 * history size the suite needs and returns a fresh, empty store. The suite closes what it opens.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import type { Store, WatchEvent } from '../../coordinator/store/types.js';

export interface StoreFactoryOptions {
  /** how many changes the store must retain for watch replay (at least; it may keep more) */
  historyLimit: number;
}

export type StoreFactory = (opts: StoreFactoryOptions) => Promise<Store>;

/** Resolves once `cond()` holds, polling through macrotasks (watch delivery is asynchronous). */
export async function until(what: string, cond: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}

export function storeConformance(name: string, factory: StoreFactory): void {
  describe(`Store conformance: ${name}`, () => {
    const open: Store[] = [];
    const make = async (historyLimit = 1000) => {
      const s = await factory({ historyLimit });
      open.push(s);
      return s;
    };
    afterEach(async () => {
      await Promise.allSettled(open.splice(0).map((s) => s.close()));
    });

    it('starts empty at some revision and create returns a larger one', async () => {
      const s = await make();
      expect(await s.list('')).toEqual([]);
      const r0 = s.revision();
      const r = await s.create('nodes/a', { n: 1 });
      expect(r).toBeGreaterThan(r0);
      expect(s.revision()).toBe(r);
      expect(await s.get('nodes/a')).toEqual({ key: 'nodes/a', value: { n: 1 }, revision: r });
      expect(await s.get('nodes/missing')).toBeUndefined();
    });

    it('create fails on an existing key and changes nothing', async () => {
      const s = await make();
      const r = await s.create('k', 'one');
      expect(await codeOf(s.create('k', 'two'))).toBe('DROVER_ERR_STORE_EXISTS');
      expect(await s.get('k')).toEqual({ key: 'k', value: 'one', revision: r });
      expect(s.revision()).toBe(r);
    });

    it('update is compare-and-set on the key revision', async () => {
      const s = await make();
      const r1 = await s.create('k', { v: 1 });
      const r2 = await s.update('k', { v: 2 }, r1);
      expect(r2).toBeGreaterThan(r1);
      expect(await codeOf(s.update('k', { v: 3 }, r1))).toBe('DROVER_ERR_STORE_CONFLICT');
      expect((await s.get('k'))?.value).toEqual({ v: 2 });
      expect(await codeOf(s.update('absent', 1, 1))).toBe('DROVER_ERR_STORE_NOT_FOUND');
      expect(await s.get('absent')).toBeUndefined();
      expect(s.revision()).toBe(r2);
    });

    it('a key revision is the store revision of its last write, not a per-key counter', async () => {
      const s = await make();
      const ra = await s.create('a', 1);
      await s.put('b', 1);
      await s.put('b', 2);
      const ra2 = await s.update('a', 2, ra);
      expect(ra2).toBe(s.revision());
      expect((await s.get('a'))?.revision).toBe(ra2);
    });

    it('put writes unconditionally', async () => {
      const s = await make();
      const r1 = await s.put('k', 1);
      const r2 = await s.put('k', 2);
      expect(r2).toBeGreaterThan(r1);
      expect(await s.get('k')).toEqual({ key: 'k', value: 2, revision: r2 });
    });

    it('delete removes, with an optional expected revision', async () => {
      const s = await make();
      const r = await s.create('k', 1);
      expect(await codeOf(s.delete('k', r + 100))).toBe('DROVER_ERR_STORE_CONFLICT');
      expect((await s.get('k'))?.value).toBe(1);
      await s.delete('k', r);
      expect(await s.get('k')).toBeUndefined();
      expect(s.revision()).toBeGreaterThan(r);
      const after = s.revision();
      await s.delete('k'); // missing, no expectation: a no-op
      expect(s.revision()).toBe(after);
      expect(await codeOf(s.delete('k', 1))).toBe('DROVER_ERR_STORE_NOT_FOUND');
      // a deleted key can be created again
      expect(await s.create('k', 2)).toBeGreaterThan(after);
    });

    it('lists by prefix in key order', async () => {
      const s = await make();
      for (const k of ['nodes/c', 'assignments/x', 'nodes/a', 'nodes/b/2', 'nodes/b', 'nodesX', 'nodes/B'])
        await s.put(k, k);
      expect((await s.list('nodes/')).map((e) => e.key)).toEqual([
        'nodes/B',
        'nodes/a',
        'nodes/b',
        'nodes/b/2',
        'nodes/c',
      ]);
      expect((await s.list('')).length).toBe(7);
      expect(await s.list('zzz/')).toEqual([]);
      const e = (await s.list<string>('assignments/'))[0]!;
      expect(e).toEqual({
        key: 'assignments/x',
        value: 'assignments/x',
        revision: (await s.get('assignments/x'))!.revision,
      });
    });

    it('hands out copies, never aliases of what it holds', async () => {
      const s = await make();
      const v = { nested: { list: [1, 2] } };
      await s.put('k', v);
      v.nested.list.push(3);
      const got = await s.get<typeof v>('k');
      expect(got?.value.nested.list).toEqual([1, 2]);
      got!.value.nested.list.push(99);
      expect((await s.get<typeof v>('k'))?.value.nested.list).toEqual([1, 2]);
      const listed = await s.list<typeof v>('k');
      listed[0]!.value.nested.list.length = 0;
      expect((await s.get<typeof v>('k'))?.value.nested.list).toEqual([1, 2]);
      const seen: Array<WatchEvent<typeof v>> = [];
      const w1 = s.watch<typeof v>('k', 0, (e) => {
        e.value!.nested.list.push(7);
        seen.push(e);
      });
      const seen2: Array<WatchEvent<typeof v>> = [];
      const w2 = s.watch<typeof v>('k', 0, (e) => seen2.push(e));
      await until('events', () => seen.length === 1 && seen2.length === 1);
      expect(seen2[0]!.value!.nested.list).toEqual([1, 2]);
      expect((await s.get<typeof v>('k'))?.value.nested.list).toEqual([1, 2]);
      w1.stop();
      w2.stop();
    });

    it('stores JSON: refuses values JSON cannot hold, and bad keys, changing nothing', async () => {
      const s = await make();
      const r = s.revision();
      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      expect(await codeOf(s.put('k', undefined))).toBe('DROVER_ERR_STORE_BAD_VALUE');
      expect(await codeOf(s.put('k', 10n))).toBe('DROVER_ERR_STORE_BAD_VALUE');
      expect(await codeOf(s.put('k', cyclic))).toBe('DROVER_ERR_STORE_BAD_VALUE');
      expect(await codeOf(s.put('k', () => 1))).toBe('DROVER_ERR_STORE_BAD_VALUE');
      expect(await codeOf(s.put('', 1))).toBe('DROVER_ERR_STORE_BAD_KEY');
      expect(await codeOf(s.put('a\nb', 1))).toBe('DROVER_ERR_STORE_BAD_KEY');
      expect(await codeOf(s.get(''))).toBe('DROVER_ERR_STORE_BAD_KEY');
      expect(s.revision()).toBe(r);
      expect(await s.list('')).toEqual([]);
      // JSON semantics: a Date becomes its ISO string, undefined fields vanish
      await s.put('d', { at: new Date(0), gone: undefined });
      expect((await s.get('d'))?.value).toEqual({ at: '1970-01-01T00:00:00.000Z' });
      // keys that are special to JavaScript objects are ordinary keys
      await s.put('__proto__', { x: 1 });
      await s.put('constructor', 2);
      expect((await s.get('__proto__'))?.value).toEqual({ x: 1 });
      expect((await s.list('__')).map((e) => e.key)).toEqual(['__proto__']);
    });

    it('watch replays retained history after fromRevision, then goes live, filtered by prefix', async () => {
      const s = await make();
      const r1 = await s.put('nodes/a', 1);
      const r2 = await s.put('other/x', 1);
      const r3 = await s.put('nodes/b', 2);
      const events: Array<WatchEvent<number>> = [];
      let returned = false;
      const w = s.watch<number>('nodes/', 0, (e) => {
        expect(returned).toBe(true); // never called before watch() returns
        events.push(e);
      });
      returned = true;
      await until('replay', () => events.length === 2);
      expect(events).toEqual([
        { type: 'put', key: 'nodes/a', value: 1, revision: r1 },
        { type: 'put', key: 'nodes/b', value: 2, revision: r3 },
      ]);
      await s.delete('nodes/a');
      const r5 = await s.put('nodes/c', 3);
      await s.put('other/y', 1);
      await until('live', () => events.length === 4);
      expect(events[2]).toEqual({ type: 'delete', key: 'nodes/a', revision: r5 - 1 });
      expect(events[3]).toEqual({ type: 'put', key: 'nodes/c', value: 3, revision: r5 });
      w.stop();
      await s.put('nodes/d', 4);
      await new Promise((r) => setTimeout(r, 20));
      expect(events.length).toBe(4);
      // from the middle: only later changes
      const later: number[] = [];
      const w2 = s.watch('', r2, (e) => later.push(e.revision));
      await until('partial replay', () => later.length >= 1 && later.at(-1) === s.revision());
      expect(later[0]).toBe(r3);
      expect(later).toEqual([...later].sort((a, b) => a - b));
      w2.stop();
      // from the current revision: nothing until the next change
      const none: number[] = [];
      const w3 = s.watch('', s.revision(), (e) => none.push(e.revision));
      await new Promise((r) => setTimeout(r, 20));
      expect(none).toEqual([]);
      const r9 = await s.put('x', 1);
      await until('next change', () => none.length === 1);
      expect(none).toEqual([r9]);
      w3.stop();
    });

    it('delivers every change in revision order under concurrent writers', async () => {
      const s = await make();
      const seen: number[] = [];
      const w = s.watch('', s.revision(), (e) => seen.push(e.revision));
      const revs = await Promise.all(Array.from({ length: 50 }, (_, i) => s.put(`k/${i % 7}`, i)));
      await until('all events', () => seen.length === 50);
      expect(seen).toEqual([...revs].sort((a, b) => a - b));
      expect(new Set(revs).size).toBe(50);
      w.stop();
    });

    it('reports a watch older than retained history as DROVER_ERR_STORE_COMPACTED', async () => {
      const s = await make(5);
      const start = s.revision();
      for (let i = 0; i < 40; i++) await s.put(`k/${i % 3}`, i);
      const errors: Error[] = [];
      const events: unknown[] = [];
      s.watch(
        'k/',
        start,
        (e) => events.push(e),
        (err) => errors.push(err),
      );
      await until('compaction error', () => errors.length === 1);
      expect((errors[0] as { code?: string }).code).toBe('DROVER_ERR_STORE_COMPACTED');
      expect(events).toEqual([]);
      // a recent revision still replays
      const recent: number[] = [];
      const w = s.watch('k/', s.revision() - 2, (e) => recent.push(e.revision));
      await until('recent replay', () => recent.length === 2);
      w.stop();
    });

    it('a throwing watcher does not break the store or other watchers', async () => {
      const s = await make();
      const good: number[] = [];
      const w1 = s.watch('', s.revision(), () => {
        throw new Error('boom');
      });
      const w2 = s.watch('', s.revision(), (e) => good.push(e.revision));
      await s.put('a', 1);
      await s.put('b', 1);
      await until('good watcher', () => good.length === 2);
      w1.stop();
      w2.stop();
    });

    it('revisions only grow, and the store behaves like a simple model (fast-check)', async () => {
      type Op =
        | { op: 'create'; key: string; value: number }
        | { op: 'put'; key: string; value: number }
        | { op: 'update'; key: string; value: number; stale: boolean }
        | { op: 'delete'; key: string; cas: 'none' | 'right' | 'stale' };
      const key = fc.constantFrom('a', 'b', 'c/1', 'c/2');
      const op: fc.Arbitrary<Op> = fc.oneof(
        fc.record({ op: fc.constant('create' as const), key, value: fc.integer() }),
        fc.record({ op: fc.constant('put' as const), key, value: fc.integer() }),
        fc.record({ op: fc.constant('update' as const), key, value: fc.integer(), stale: fc.boolean() }),
        fc.record({
          op: fc.constant('delete' as const),
          key,
          cas: fc.constantFrom('none' as const, 'right' as const, 'stale' as const),
        }),
      );
      await fc.assert(
        fc.asyncProperty(fc.array(op, { maxLength: 40 }), async (ops) => {
          const s = await factory({ historyLimit: 1000 });
          try {
            const model = new Map<string, { value: number; revision: number }>();
            let last = s.revision();
            for (const o of ops) {
              const cur = model.get(o.key);
              let expected: string | undefined;
              let p: Promise<unknown>;
              if (o.op === 'create') {
                expected = cur ? 'DROVER_ERR_STORE_EXISTS' : undefined;
                p = s.create(o.key, o.value);
              } else if (o.op === 'put') {
                p = s.put(o.key, o.value);
              } else if (o.op === 'update') {
                const rev = cur ? (o.stale ? cur.revision - 1 : cur.revision) : 1;
                expected = !cur
                  ? 'DROVER_ERR_STORE_NOT_FOUND'
                  : o.stale
                    ? 'DROVER_ERR_STORE_CONFLICT'
                    : undefined;
                p = s.update(o.key, o.value, rev);
              } else {
                const rev =
                  o.cas === 'none'
                    ? undefined
                    : cur
                      ? o.cas === 'stale'
                        ? cur.revision + 1
                        : cur.revision
                      : 7;
                expected =
                  o.cas === 'none'
                    ? undefined
                    : !cur
                      ? 'DROVER_ERR_STORE_NOT_FOUND'
                      : o.cas === 'stale'
                        ? 'DROVER_ERR_STORE_CONFLICT'
                        : undefined;
                p = s.delete(o.key, rev);
              }
              let code: string | undefined;
              let result: unknown;
              try {
                result = await p;
              } catch (err) {
                code = (err as { code?: string }).code;
              }
              expect(code).toBe(expected);
              if (code === undefined) {
                if (o.op === 'delete') {
                  if (cur) {
                    expect(s.revision()).toBeGreaterThan(last);
                    model.delete(o.key);
                  } else expect(s.revision()).toBe(last);
                } else {
                  expect(result).toBeGreaterThan(last);
                  expect(result).toBe(s.revision());
                  model.set(o.key, { value: o.value, revision: result as number });
                }
              } else expect(s.revision()).toBe(last);
              last = s.revision();
            }
            const listed = await s.list<number>('');
            expect(listed.map((e) => [e.key, e.value, e.revision])).toEqual(
              [...model.entries()]
                .sort(([a], [b]) => (a < b ? -1 : 1))
                .map(([k, v]) => [k, v.value, v.revision]),
            );
          } finally {
            await s.close();
          }
        }),
        { numRuns: 40 },
      );
    });

    it('close is idempotent and refuses later calls', async () => {
      const s = await make();
      await s.put('k', 1);
      const errors: Error[] = [];
      s.watch(
        '',
        0,
        () => {},
        (e) => errors.push(e),
      );
      await Promise.all([s.close(), s.close()]);
      await s.close();
      expect(await codeOf(s.get('k'))).toBe('DROVER_ERR_STORE_CLOSED');
      expect(await codeOf(s.put('k', 2))).toBe('DROVER_ERR_STORE_CLOSED');
      await until('watch closed', () => errors.length === 1);
      expect((errors[0] as { code?: string }).code).toBe('DROVER_ERR_STORE_CLOSED');
    });
  });
}
