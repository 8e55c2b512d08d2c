// Both daemons bind the same child-logger key (`component`), and the work queue binds each
// reconcile's id and key, so one run's lines can be found together.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { WorkQueue } from '../../coordinator/workqueue.js';
import { COMPONENT_KEY, componentLogger } from '../../lib/logger.js';
import { PROTOCOL_VERSION, TerminalError } from '../../protocol/index.js';
import { repairFleet, webTopology } from '../helpers/repair-fleet.js';

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

  it('within a run every part logs with its id: the cluster reconcile (engine), the repair policy and etcd membership (repair)', async () => {
    const m = memoryLogger();
    const f = await repairFleet({
      nodes: 3,
      address: (i) => `10.0.0.${i + 1}`,
      topology: webTopology(2),
      logger: m.log,
      // an etcd that never answers: the membership run logs its failure
      etcdAdmin: () => ({
        memberList: async () => {
          throw new Error('no etcd endpoint answered');
        },
        healthyEndpoints: async () => [],
        memberRemove: async () => {},
        memberAdd: async () => {
          throw new Error('unused');
        },
      }),
    });
    f.bus.failTasks = true;
    const sick = f.where('web#0')!;
    // every node reports; web#0 keeps crashing, so it is re-provisioned (a task that fails here)
    const report = () => {
      for (const id of f.ids) {
        const plan = f.engine.desiredPlan(id);
        const digest = {
          generation: plan?.generation ?? 0,
          checksum: plan?.checksum ?? '',
          coordinatorEpoch: f.engine.epoch,
          health: id === sick ? 'sick' : 'ok',
          instances: plan?.instances.length ?? 0,
          unhealthy: id === sick ? 1 : 0,
        };
        f.engine.handleStatus({
          v: PROTOCOL_VERSION,
          type: 'status',
          nodeId: id,
          seq: 0,
          sentAt: 'now',
          plan: { ...digest, state: 'applied' },
          digest,
          instances: (plan?.instances ?? []).map((i) => ({
            id: i.id,
            role: i.role,
            epoch: i.epoch,
            checksum: i.checksum,
            phase: i.id === 'web#0' ? ('CrashLoop' as const) : ('Healthy' as const),
            health: i.id === 'web#0' ? ('unhealthy' as const) : ('healthy' as const),
            restarts: 0,
            simulated: false,
          })),
        });
      }
    };
    report();
    // a crash report alone queues no cluster reconcile (the ladder advances on the next one, which
    // then wakes itself until the re-provision is due): queue one
    f.engine.queue.add('cluster:t');
    for (let t = 0; t < 40_000 && f.events('repair.reprovision').length === 0; t += 500) {
      report();
      f.clock.advance(500);
      await f.engine.queue.idle();
    }
    expect(f.events('repair.reprovision')).toHaveLength(1);
    f.engine.queue.add('etcd:t');
    await f.engine.queue.idle();
    await new Promise((r) => setImmediate(r)); // the failed task's rejection is logged
    await f.engine.close();
    const lines = m.lines();
    const reconciled = lines.filter((l) => l.msg === 'cluster reconciled');
    expect(reconciled.length).toBeGreaterThan(0);
    for (const l of reconciled)
      expect(l).toMatchObject({ component: 'engine', key: 'cluster:t', reconcile: expect.any(Number) });
    const failed = lines.find((l) => l.msg === 'reprovision task failed');
    expect(failed).toMatchObject({
      component: 'repair',
      key: 'cluster:t',
      reconcile: expect.any(Number),
      instanceId: 'web#0',
    });
    // the run it was bound to is a cluster reconcile the engine logged too
    expect(reconciled.map((l) => l.reconcile)).toContain(failed!.reconcile);
    expect(lines.find((l) => l.msg === 'etcd membership change failed; will retry')).toMatchObject({
      component: 'repair',
      key: 'etcd:t',
      reconcile: expect.any(Number),
      cluster: 't',
    });
  });
});
