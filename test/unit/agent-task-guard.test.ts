import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AgentError } from '../../agent/errors.js';
import { checkTask } from '../../agent/task-guard.js';
import { TaskLedger } from '../../agent/task-ledger.js';
import { ManualClock } from '../../lib/clock.js';
import {
  type DroverError,
  generateSigningKey,
  PROTOCOL_VERSION,
  type SignedTask,
  signTask,
  TASK_CLOCK_SKEW_MS,
  type Task,
} from '../../protocol/index.js';
import { rmrf } from '../helpers/proc.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const key = generateSigningKey();

function task(over: Partial<Task> = {}): Task {
  return {
    v: PROTOCOL_VERSION,
    type: 'task',
    id: 'task-1',
    nodeId: 'node-a',
    kind: 'diagnostics',
    timeoutMs: 10_000,
    issuedAt: new Date(T0).toISOString(),
    expiresAt: new Date(T0 + 12_000).toISOString(),
    ...over,
  };
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as DroverError).code;
  }
  return undefined;
}

const ctx = (now = T0) => ({ nodeId: 'node-a', key: key.publicKey, now, skewMs: TASK_CLOCK_SKEW_MS });

describe('checkTask (the agent refuses a task before anything runs)', () => {
  it('accepts a task signed with the pinned key, for this node, within its window', () => {
    expect(checkTask(signTask(task(), key), ctx()).id).toBe('task-1');
    // the skew allowance: 29 s past expiry, and 29 s before issue, still pass
    expect(checkTask(signTask(task(), key), ctx(T0 + 12_000 + 29_000)).id).toBe('task-1');
    expect(checkTask(signTask(task(), key), ctx(T0 - 29_000)).id).toBe('task-1');
  });

  it('refuses an unsigned task', () => {
    const { signature: _s, ...unsigned } = signTask(task(), key);
    expect(codeOf(() => checkTask(unsigned as SignedTask, ctx()))).toBe('DROVER_ERR_TASK_UNSIGNED');
  });

  it('refuses a task signed by another key, and a task altered after signing', () => {
    expect(codeOf(() => checkTask(signTask(task(), generateSigningKey()), ctx()))).toBe(
      'DROVER_ERR_TASK_SIGNATURE',
    );
    const signed = signTask(task(), key);
    const tampered = { ...signed, task: { ...signed.task, kind: 'stop' as const, instanceId: 'web#0' } };
    expect(codeOf(() => checkTask(tampered, ctx()))).toBe('DROVER_ERR_TASK_SIGNATURE');
    const later = { ...signed, task: { ...signed.task, expiresAt: new Date(T0 + 3_000_000).toISOString() } };
    expect(codeOf(() => checkTask(later, ctx()))).toBe('DROVER_ERR_TASK_SIGNATURE');
  });

  it('refuses a task for another node, even correctly signed', () => {
    expect(codeOf(() => checkTask(signTask(task({ nodeId: 'node-b' }), key), ctx()))).toBe(
      'DROVER_ERR_TASK_WRONG_NODE',
    );
  });

  it('refuses a task from a coordinator epoch below the applied plan (a deposed leader), runs one at or above it', () => {
    const signed = (e: number) => signTask(task({ coordinatorEpoch: e }), key);
    expect(codeOf(() => checkTask(signed(4), { ...ctx(), appliedEpoch: 5 }))).toBe(
      'DROVER_ERR_TASK_STALE_EPOCH',
    );
    expect(checkTask(signed(5), { ...ctx(), appliedEpoch: 5 }).coordinatorEpoch).toBe(5);
    expect(checkTask(signed(6), { ...ctx(), appliedEpoch: 5 }).coordinatorEpoch).toBe(6);
    // no plan applied yet: nothing to compare with
    expect(checkTask(signed(1), ctx()).id).toBe('task-1');
  });

  it('refuses an expired task, and one issued beyond the skew in the future', () => {
    expect(codeOf(() => checkTask(signTask(task(), key), ctx(T0 + 12_000 + 30_001)))).toBe(
      'DROVER_ERR_TASK_EXPIRED',
    );
    expect(codeOf(() => checkTask(signTask(task(), key), ctx(T0 - 30_001)))).toBe(
      'DROVER_ERR_TASK_NOT_YET_VALID',
    );
  });

  it('refuses an inverted or over-long validity window', () => {
    const inverted = task({ expiresAt: new Date(T0 - 1).toISOString() });
    expect(codeOf(() => checkTask(signTask(inverted, key), ctx()))).toBe('DROVER_ERR_TASK_BAD_REQUEST');
    const forever = task({ expiresAt: new Date(T0 + 24 * 3_600_000).toISOString() });
    expect(codeOf(() => checkTask(signTask(forever, key), ctx()))).toBe('DROVER_ERR_TASK_BAD_REQUEST');
  });

  it('refuses every task before a coordinator key is pinned', () => {
    expect(codeOf(() => checkTask(signTask(task(), key), { ...ctx(), key: undefined }))).toBe(
      'DROVER_ERR_NO_PINNED_KEY',
    );
  });
});

describe('TaskLedger (replays)', () => {
  const withDir = async (fn: (dir: string) => Promise<void>) => {
    const dir = mkdtempSync(join(tmpdir(), 'drover-ledger-'));
    try {
      await fn(dir);
    } finally {
      rmrf(dir);
    }
  };
  const admitCode = async (l: TaskLedger, t: Task) => {
    try {
      await l.admit(t);
      return 'admitted';
    } catch (err) {
      expect(err).toBeInstanceOf(AgentError);
      return (err as AgentError).code;
    }
  };

  it('admits an id once; a second copy is a replay, also after a restart', () =>
    withDir(async (dir) => {
      const clock = new ManualClock(T0);
      const l = new TaskLedger({ dataDir: dir, skewMs: TASK_CLOCK_SKEW_MS, clock });
      await l.load();
      expect(await admitCode(l, task())).toBe('admitted');
      expect(await admitCode(l, task())).toBe('DROVER_ERR_TASK_REPLAYED');
      expect(await admitCode(l, task({ id: 'task-2' }))).toBe('admitted');
      const again = new TaskLedger({ dataDir: dir, skewMs: TASK_CLOCK_SKEW_MS, clock });
      await again.load();
      expect(again.size()).toBe(2);
      expect(await admitCode(again, task())).toBe('DROVER_ERR_TASK_REPLAYED');
    }));

  it('two copies arriving at once: exactly one is admitted', () =>
    withDir(async (dir) => {
      const l = new TaskLedger({ dataDir: dir, skewMs: TASK_CLOCK_SKEW_MS, clock: new ManualClock(T0) });
      await l.load();
      const codes = await Promise.all([admitCode(l, task()), admitCode(l, task())]);
      expect(codes.sort()).toEqual(['DROVER_ERR_TASK_REPLAYED', 'admitted']);
    }));

  it('forgets an id once its task could no longer pass the expiry check (bounded by expiry)', () =>
    withDir(async (dir) => {
      const clock = new ManualClock(T0);
      const l = new TaskLedger({ dataDir: dir, skewMs: TASK_CLOCK_SKEW_MS, clock });
      await l.load();
      await l.admit(task());
      clock.advance(12_000 + TASK_CLOCK_SKEW_MS + 1);
      await l.admit(
        task({
          id: 'task-2',
          issuedAt: new Date(clock.now()).toISOString(),
          expiresAt: new Date(clock.now() + 5000).toISOString(),
        }),
      );
      expect(l.size()).toBe(1);
      const onDisk = JSON.parse(readFileSync(l.path, 'utf8')) as { seen: Record<string, number> };
      expect(Object.keys(onDisk.seen)).toEqual(['task-2']);
    }));

  it('a corrupt ledger file: tasks issued before the load are refused, later ones run', () =>
    withDir(async (dir) => {
      writeFileSync(join(dir, 'tasks-seen.json'), '{not json');
      const clock = new ManualClock(T0 + 1000);
      const l = new TaskLedger({ dataDir: dir, skewMs: TASK_CLOCK_SKEW_MS, clock });
      await l.load();
      expect(await admitCode(l, task())).toBe('DROVER_ERR_TASK_REPLAYED');
      expect(await admitCode(l, task({ id: 'task-new', issuedAt: new Date(T0 + 1000).toISOString() }))).toBe(
        'admitted',
      );
    }));

  it('a ledger that cannot be written refuses the task (nothing runs unrecorded)', () =>
    withDir(async (dir) => {
      const file = join(dir, 'not-a-dir');
      writeFileSync(file, 'x');
      const l = new TaskLedger({ dataDir: file, skewMs: TASK_CLOCK_SKEW_MS, clock: new ManualClock(T0) });
      expect(await admitCode(l, task())).toBe('DROVER_ERR_TASK_LEDGER');
    }));

  it('caps the ids it holds', () =>
    withDir(async (dir) => {
      const l = new TaskLedger({ dataDir: dir, skewMs: 0, clock: new ManualClock(T0), maxEntries: 2 });
      expect(await admitCode(l, task({ id: 'a' }))).toBe('admitted');
      expect(await admitCode(l, task({ id: 'b' }))).toBe('admitted');
      expect(await admitCode(l, task({ id: 'c' }))).toBe('DROVER_ERR_TASK_LEDGER');
    }));
});
