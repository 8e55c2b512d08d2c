import { describe, expect, it } from 'vitest';
import type { EventInput } from '../../coordinator/events.js';
import { startNodeRepair } from '../../coordinator/node-repair.js';
import { restartEvents, statusEvents } from '../../coordinator/status-events.js';
import type { NodeStatus } from '../../protocol/index.js';

function ports(over: { unreachable?: boolean; instances?: string[]; fail?: string[] } = {}) {
  const events: EventInput[] = [];
  const reassigned: string[] = [];
  let n = 0;
  return {
    events,
    reassigned,
    p: {
      nodeId: 'n1',
      unreachable: over.unreachable ?? false,
      instances: over.instances ?? ['a#0', 'b#0'],
      reassign: (id: string) => reassigned.push(id),
      startTask: (req: { instanceId: string }) => ({
        id: `t${++n}`,
        done: over.fail?.includes(req.instanceId)
          ? Promise.resolve({ ok: false, error: 'files not writable' })
          : Promise.resolve({ ok: true }),
      }),
      emit: (e: EventInput) => events.push(e),
    },
  };
}

describe('startNodeRepair: a repair of a node has a visible result', () => {
  it('a live node: one re-provision task per instance, started and succeeded events', async () => {
    const f = ports();
    const r = startNodeRepair(f.p);
    expect(r.started).toMatchObject({
      mode: 'reprovision',
      tasks: [
        { instanceId: 'a#0', taskId: 't1' },
        { instanceId: 'b#0', taskId: 't2' },
      ],
    });
    expect(await r.done).toEqual({ ok: true, reprovisioned: ['a#0', 'b#0'], failed: [] });
    expect(f.events.map((e) => e.kind)).toEqual(['repair.started', 'repair.succeeded']);
  });

  it('a failed task makes the repair fail, naming the instance and the error', async () => {
    const f = ports({ fail: ['b#0'] });
    const out = await startNodeRepair(f.p).done;
    expect(out).toMatchObject({
      ok: false,
      reprovisioned: ['a#0'],
      failed: [{ instanceId: 'b#0', taskId: 't2' }],
    });
    expect(f.events.at(-1)).toMatchObject({
      kind: 'repair.failed',
      severity: 'error',
      message: 'repair of node n1 failed: b#0: files not writable (re-provisioned a#0)',
    });
  });

  it('an Unreachable node reassigns its instances; no tasks', async () => {
    const f = ports({ unreachable: true });
    const r = startNodeRepair(f.p);
    expect(r.started).toMatchObject({ mode: 'reassign', tasks: [], instances: ['a#0', 'b#0'] });
    expect(f.reassigned).toEqual(['a#0', 'b#0']);
    expect(f.events.map((e) => e.kind)).toEqual(['repair.started']);
  });
});

describe('restartEvents', () => {
  const st = (restarts: number, epoch = 1, lastError?: string): NodeStatus =>
    ({
      nodeId: 'n1',
      instances: [
        {
          id: 'x#0',
          role: 'x',
          epoch,
          checksum: 'c',
          phase: 'Running',
          health: 'unknown',
          restarts,
          simulated: false,
          ...(lastError ? { lastError } : {}),
        },
      ],
    }) as unknown as NodeStatus;

  it('reports a rising restart counter with the count and the last exit reason', () => {
    expect(restartEvents(st(1), st(3, 1, 'exited with code 3'))).toEqual([
      expect.objectContaining({
        kind: 'instance.restarted',
        instanceId: 'x#0',
        data: expect.objectContaining({ restarts: 3, previous: 1, lastError: 'exited with code 3' }),
        message: 'x#0 on n1 was restarted by the agent 2 times (3 restarts so far): exited with code 3',
      }),
    ]);
  });

  it('stays quiet without a previous status, on a new epoch, or when the counter does not rise', () => {
    expect(restartEvents(undefined, st(4))).toEqual([]);
    expect(restartEvents(st(4, 1), st(5, 2))).toEqual([]);
    expect(restartEvents(st(4), st(4))).toEqual([]);
  });

  it('statusEvents: the restart first, then instance.unhealthy once when the phase turns CrashLoop', () => {
    const crash = (restarts: number) => {
      const s = st(restarts, 1, 'exited with code 1');
      s.instances[0]!.phase = 'CrashLoop';
      return s;
    };
    expect(statusEvents(st(1), crash(2)).map((e) => e.kind)).toEqual([
      'instance.restarted',
      'instance.unhealthy',
    ]);
    expect(statusEvents(st(1), crash(2))[1]).toMatchObject({
      instanceId: 'x#0',
      message: 'x#0 on n1 is CrashLoop: exited with code 1',
    });
    expect(statusEvents(crash(2), crash(2))).toEqual([]);
    expect(statusEvents(undefined, crash(2))).toEqual([]);
  });
});
