import { chmodSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Applier, filePathUnderRoot, makeExpander, ROOT_VAR as R } from '../../agent/applier.js';
import { ProcessRuntime } from '../../agent/runtime/process.js';
import {
  generateSigningKey,
  type InstanceSpec,
  PROTOCOL_VERSION,
  sealPlan,
  signPlan,
} from '../../protocol/index.js';
import { processApplier } from '../helpers/agent-harness.js';
import { killGroups } from '../helpers/agent-instances.js';
import { autoCleanup, waitFor } from '../helpers/proc.js';

const RESTART = {
  policy: 'always' as const,
  initialBackoffMs: 200,
  maxBackoffMs: 1000,
  resetAfterMs: 60_000,
  crashLoopThreshold: 5,
};

function inst(
  id: string,
  extra: Partial<Omit<InstanceSpec, 'checksum'>> = {},
): Omit<InstanceSpec, 'checksum'> {
  const role = id.split('#')[0]!;
  return {
    id,
    role,
    epoch: 1,
    simulated: false,
    files: [{ path: `/etc/${role}/conf.txt`, mode: 0o640, content: `${id}\n` }],
    run: {
      command: '/bin/sh',
      args: ['-c', 'cat "$CONF"; exec sleep 1000'],
      env: { CONF: `\${DROVER_ROOT}/etc/${role}/conf.txt` },
    },
    restart: RESTART,
    ...extra,
  };
}

function plan(generation: number, instances: Array<Omit<InstanceSpec, 'checksum'>>) {
  return sealPlan({
    v: PROTOCOL_VERSION,
    type: 'plan',
    nodeId: 'n1',
    generation,
    coordinatorEpoch: 1,
    issuedAt: new Date().toISOString(),
    instances,
  });
}

const setup = () => processApplier('ap');

const pidOf = (r: ProcessRuntime, id: string) => waitFor(`${id} pid`, () => r.status(id)?.pid);

describe('plan applier', () => {
  it('starts new instances, restarts only changed ones, stops removed ones', async () => {
    const { rootDir, runtime, applier } = setup();
    const r1 = await applier.apply(plan(1, [inst('web#0'), inst('db#0')]));
    expect(r1).toEqual({
      changes: { started: ['db#0', 'web#0'], restarted: [], stopped: [], unchanged: [] },
      errors: [],
    });
    const conf = join(rootDir, 'etc/web/conf.txt');
    expect(readFileSync(conf, 'utf8')).toBe('web#0\n');
    expect(statSync(conf).mode & 0o7777).toBe(0o640);
    const web = await pidOf(runtime, 'web#0');
    const db = await pidOf(runtime, 'db#0');
    // ${DROVER_ROOT} in env was expanded: the role read its own file.
    await waitFor('role read its conf', async () => (await runtime.logs('web#0', 5)).includes('web#0'));

    const changed = inst('web#0', { files: [{ path: '/etc/web/conf.txt', mode: 0o600, content: 'v2\n' }] });
    const r2 = await applier.apply(plan(2, [changed, inst('db#0')]));
    expect(r2.changes).toEqual({ started: [], restarted: ['web#0'], stopped: [], unchanged: ['db#0'] });
    expect(readFileSync(conf, 'utf8')).toBe('v2\n');
    expect(statSync(conf).mode & 0o7777).toBe(0o600);
    const web2 = await pidOf(runtime, 'web#0');
    expect(web2).not.toBe(web);
    expect(runtime.status('db#0')?.pid).toBe(db);

    const r3 = await applier.apply(plan(3, [inst('db#0')]));
    expect(r3.changes).toEqual({ started: [], restarted: [], stopped: ['web#0'], unchanged: ['db#0'] });
    expect(runtime.status('web#0')).toBeUndefined();
    expect(runtime.status('db#0')?.pid).toBe(db);
    expect([...applier.instances().keys()]).toEqual(['db#0']);
  });

  it('refuses a plan whose file escapes the root dir, before changing anything', async () => {
    const { rootDir, runtime, applier } = setup();
    await applier.apply(plan(1, [inst('web#0')]));
    const pid = await pidOf(runtime, 'web#0');
    const evil = inst('web#0', { files: [{ path: '/../../etc/evil', mode: 0o644, content: 'x' }] });
    await expect(applier.apply(plan(2, [evil]))).rejects.toMatchObject({ code: 'DROVER_ERR_PLAN_INVALID' });
    expect(runtime.status('web#0')?.pid).toBe(pid);
    expect(existsSync(join(rootDir, '../etc/evil'))).toBe(false);
    expect(() => filePathUnderRoot('/srv/root', '/a/../../b')).toThrow(/escapes the root dir/);
    expect(filePathUnderRoot('/', '/etc/x')).toBe('/etc/x');
    expect(filePathUnderRoot('/srv/r', '/etc/x')).toBe('/srv/r/etc/x');
  });

  it('a held (stopped by task) instance stays stopped on re-apply until its checksum changes', async () => {
    const { runtime, applier, dataDir, rootDir } = setup();
    await applier.apply(plan(1, [inst('web#0')]));
    await pidOf(runtime, 'web#0');
    await applier.hold('web#0');
    expect(runtime.status('web#0')?.state).toBe('stopped');
    const again = await applier.apply(plan(1, [inst('web#0')]));
    expect(again.changes.unchanged).toEqual(['web#0']);
    expect(runtime.status('web#0')?.pid).toBeUndefined();
    // Survives an agent restart: a new applier reads held.json.
    const runtime2 = new ProcessRuntime({ dataDir, pollIntervalMs: 100 });
    autoCleanup(async () => {
      killGroups(runtime2.list().map((st) => st.pid));
      await runtime2.close();
    });
    const applier2 = new Applier({ runtime: runtime2, rootDir, dataDir });
    await applier2.loadPersisted();
    expect(applier2.isHeld('web#0')).toBe(true);
    const r = await applier2.apply(plan(1, [inst('web#0')]));
    expect(r.changes.unchanged).toEqual(['web#0']);
    expect(runtime2.status('web#0')).toBeUndefined();
    // A changed checksum releases it.
    const r2 = await applier2.apply(plan(2, [inst('web#0', { simulated: true })]));
    expect(r2.changes.started).toEqual(['web#0']);
    expect(applier2.isHeld('web#0')).toBe(false);
  });

  it('persists the signed plan and reads it back; a damaged file is ignored', async () => {
    const { applier, dataDir } = setup();
    expect(await applier.loadPersisted()).toBeUndefined();
    const signed = signPlan(plan(4, [inst('web#0')]), generateSigningKey());
    await applier.persist(signed);
    expect(await applier.loadPersisted()).toEqual(signed);
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(dataDir, 'plan.json'), '{"v":1,"type":"plan-push"');
    expect(await applier.loadPersisted()).toBeUndefined();
  });

  it('expands DROVER_ROOT to the root dir, or to nothing when root is /', () => {
    expect(makeExpander('/srv/lab/n1')(`${R}/etc/x ${R}`)).toBe('/srv/lab/n1/etc/x /srv/lab/n1');
    expect(makeExpander('/')(`${R}/etc/x`)).toBe('/etc/x');
    expect(makeExpander('/srv/lab/')(`${R}/x`)).toBe('/srv/lab/x');
  });

  it('repairs role files changed or deleted behind its back, restarting only that instance', async () => {
    const { rootDir, runtime, applier } = setup();
    await applier.apply(plan(1, [inst('web#0'), inst('db#0')]));
    const web = await pidOf(runtime, 'web#0');
    const db = await pidOf(runtime, 'db#0');
    expect(await applier.repairDrift()).toEqual([]);
    const conf = join(rootDir, 'etc/web/conf.txt');
    writeFileSync(conf, 'tampered\n');
    expect(await applier.repairDrift()).toEqual(['web#0']);
    expect(readFileSync(conf, 'utf8')).toBe('web#0\n');
    expect(await pidOf(runtime, 'web#0')).not.toBe(web);
    expect(runtime.status('db#0')?.pid).toBe(db);
    // a mode change and a deletion count as drift too
    chmodSync(conf, 0o666);
    rmSync(join(rootDir, 'etc/db/conf.txt'));
    expect((await applier.repairDrift()).sort()).toEqual(['db#0', 'web#0']);
    expect(statSync(conf).mode & 0o7777).toBe(0o640);
    expect(existsSync(join(rootDir, 'etc/db/conf.txt'))).toBe(true);
  });

  it('a files-only change to an instance with a reloadSignal signals it instead of restarting', async () => {
    const { rootDir, runtime, applier } = setup();
    const marker = join(rootDir, 'reloaded');
    const lb = (content: string, args?: string[]) =>
      inst('lb#0', {
        files: [{ path: '/etc/lb/conf.txt', mode: 0o644, content }],
        run: {
          command: '/bin/sh',
          args: args ?? ['-c', `trap 'echo reloaded >> ${marker}' HUP; while :; do sleep 0.1; done`],
          env: {},
          reloadSignal: 'SIGHUP',
        },
      });
    await applier.apply(plan(1, [lb('v1\n')]));
    const pid = await pidOf(runtime, 'lb#0');
    await new Promise((r) => setTimeout(r, 300)); // let the shell install its trap
    const r2 = await applier.apply(plan(2, [lb('v2\n')]));
    expect(r2.changes.restarted).toEqual([]);
    expect(readFileSync(join(rootDir, 'etc/lb/conf.txt'), 'utf8')).toBe('v2\n');
    await waitFor(
      'reload trap ran',
      () => existsSync(marker) && readFileSync(marker, 'utf8').includes('reloaded'),
    );
    expect(runtime.status('lb#0')?.pid).toBe(pid);
    expect(runtime.status('lb#0')?.checksum).toBe(applier.spec('lb#0')?.checksum);
    // a change to how it runs is a restart, reloadSignal or not
    const r3 = await applier.apply(plan(3, [lb('v2\n', ['-c', 'exec sleep 1000'])]));
    expect(r3.changes.restarted).toEqual(['lb#0']);
    expect(await pidOf(runtime, 'lb#0')).not.toBe(pid);
  });
});
