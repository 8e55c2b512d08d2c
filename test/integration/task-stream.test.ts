import { describe, expect, it } from 'vitest';
import { openJetStreamStore } from '../../coordinator/store/jetstream.js';
import { openTaskStream } from '../../coordinator/store/task-stream.js';
import { TaskTracker } from '../../coordinator/tasks.js';
import { silentLogger } from '../../lib/logger.js';
import type { TaskRecord } from '../../protocol/rest/schemas.js';
import { waitFor } from '../helpers/proc.js';
import { startNats } from '../helpers/servers.js';

/**
 * Task records in a JetStream stream of their own (real nats-server): one subject per task with
 * its latest record, the newest N kept by the server, legacy tasks/ keys moved in once, and a
 * follower tracker that follows the leader's records and never rewrites a running one.
 */
describe('the task stream (real nats-server, JetStream)', () => {
  it('keeps the latest record per task and the newest N; a follower follows without touching them', async () => {
    const nats = await startNats({ jetstream: true });
    const nc = await nats.connectAs({ coordinator: true });
    const bucket = `tk-${process.pid}`;
    const store = await openJetStreamStore({ nc, bucket });
    const legacy: TaskRecord = {
      id: 'old-1',
      state: 'succeeded',
      request: { nodeId: 'n1', kind: 'diagnostics' },
      createdBy: 'admin',
      createdAt: '2026-01-01T00:00:00.000Z',
    } as TaskRecord;
    await store.put('tasks/old-1', legacy);
    const archive = await openTaskStream({ nc, bucket, replicas: 1, limit: 3, store, log: silentLogger });
    expect(await store.list('tasks/')).toEqual([]);
    expect((await archive.load(10)).map((r) => r.id)).toEqual(['old-1']);

    // a leader's tracker; its engine port answers tasks when told to (a narrow fake)
    const answers = new Map<string, (ok: boolean) => void>();
    const engine = {
      requireNode: () => {},
      runTask: (req: { nodeId: string }) =>
        new Promise<{ ok: boolean }>((resolve) => answers.set(req.nodeId, (ok) => resolve({ ok }))),
    } as never;
    const leader = new TaskTracker({ engine, logger: silentLogger, archive });
    await leader.load();
    const follower = new TaskTracker({
      engine,
      logger: silentLogger,
      archive: await openTaskStream({ nc, bucket, replicas: 1, limit: 3, store, log: silentLogger }),
      readOnly: true,
    });
    await follower.load();
    const start = (n: string) => leader.start({ nodeId: n, kind: 'diagnostics' } as never, 'admin').record;
    const [t1, t2] = [start('n1'), start('n2')];
    await waitFor(
      'the follower sees both running',
      () => follower.list().filter((r) => r.state === 'running').length === 2,
    );
    answers.get('n2')!(true);
    await waitFor(
      'the follower sees n2 succeed',
      () => follower.list().find((x) => x.id === t2.id)?.state === 'succeeded',
    );
    const [t3, t4] = [start('n3'), start('n4')];
    // the server keeps the newest 3 messages, one per task (its latest record): n1's is the oldest
    const jsm = await nc.jetstreamManager();
    await waitFor(
      'stream bounded at 3',
      async () => (await jsm.streams.info(`${bucket}-tasks`)).state.messages === 3,
    );
    const loaded = await archive.load(10);
    expect(loaded.map((r) => r.id)).toEqual([t2.id, t3.id, t4.id]);
    expect(loaded[0]!.state).toBe('succeeded');
    expect(t1.id).not.toBe(t2.id);
    // a second follower starting now leaves the running ones running (only a new leader fails them)
    const late = new TaskTracker({ engine, logger: silentLogger, archive, readOnly: true });
    await late.load();
    expect(late.list().filter((r) => r.state === 'running')).toHaveLength(2);
    expect((await archive.load(10)).filter((r) => r.state === 'running')).toHaveLength(2);
    // a new leader does fail them: the coordinator that ran them is gone
    const next = new TaskTracker({ engine, logger: silentLogger, archive });
    await next.load();
    expect(next.list().filter((r) => r.state === 'running')).toEqual([]);
    follower.stop();
    for (const f of answers.values()) f(true);
    await store.close();
  }, 60_000);
});
