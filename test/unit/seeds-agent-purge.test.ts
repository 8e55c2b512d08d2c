import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type InstanceSpec, type PlanPurge, PROTOCOL_VERSION, sealPlan } from '../../protocol/index.js';
import { processApplier } from '../helpers/agent-harness.js';
import { tempDir } from '../helpers/proc.js';

type Spec = Omit<InstanceSpec, 'checksum'>;
const RESTART = {
  policy: 'always' as const,
  initialBackoffMs: 200,
  maxBackoffMs: 1000,
  resetAfterMs: 60_000,
  crashLoopThreshold: 5,
};

const inst = (id: string, extra: Partial<Spec> = {}): Spec => ({
  id,
  role: id.split('#')[0]!,
  epoch: 1,
  simulated: false,
  files: [],
  run: { command: '/bin/sleep', args: ['1000'], env: {} },
  restart: RESTART,
  ...extra,
});

const plan = (generation: number, instances: Spec[], purge?: PlanPurge[]) =>
  sealPlan({
    v: PROTOCOL_VERSION,
    type: 'plan',
    nodeId: 'n1',
    generation,
    coordinatorEpoch: 1,
    issuedAt: new Date().toISOString(),
    instances,
    ...(purge ? { purge } : {}),
  });

function setup() {
  const { rootDir, runtime, applier } = processApplier('purge');
  const mk = (p: string) => {
    mkdirSync(join(rootDir, p), { recursive: true });
    writeFileSync(join(rootDir, p, 'data'), 'x');
    return join(rootDir, p);
  };
  return { rootDir, runtime, mk, applier };
}

describe('agent purge (drover clean --purge)', () => {
  it('stops removed instances, then deletes the paths they owned; re-applying is a no-op', async () => {
    const { runtime, mk, applier } = setup();
    const etcd = mk('var/lib/etcd/etcd-0-e1');
    const cfg = mk('etc/drover/etcd-0');
    // as the renderer gives it: the config dir and the data dir (coordinator/catalog/render.ts ownedPaths)
    await applier.apply(
      plan(1, [inst('etcd#0', { dataPaths: ['/etc/drover/etcd-0', '/var/lib/etcd/etcd-0-e1'] })]),
    );
    expect(runtime.status('etcd#0')).toBeDefined();
    const purge = [{ instanceId: 'etcd#0', paths: ['/etc/drover/etcd-0', '/var/lib/etcd/etcd-0-e1'] }];
    const r = await applier.apply(plan(2, [], purge));
    expect(r.errors).toEqual([]);
    expect(r.changes.stopped).toEqual(['etcd#0']);
    expect(runtime.status('etcd#0')).toBeUndefined();
    expect(existsSync(etcd)).toBe(false);
    expect(existsSync(cfg)).toBe(false);
    // the parent stays: only what the instance owned goes
    expect(existsSync(join(etcd, '..'))).toBe(true);
    expect((await applier.apply(plan(3, [], purge))).errors).toEqual([]);
  });

  it('never deletes for an instance still in the plan, nor a path a live instance uses', async () => {
    const { mk, applier } = setup();
    const kubelet = mk('var/lib/kubelet');
    const shared = mk('etc/drover/shared');
    const live = inst('kubelet#0', {
      dataPaths: ['/var/lib/kubelet'],
      files: [{ path: '/etc/drover/shared/kubeconfig', mode: 0o600, content: 'x' }],
    });
    // old#0 ran here once, owning paths a live instance now uses
    await applier.apply(
      plan(1, [inst('old#0', { dataPaths: ['/etc/drover/shared', '/var/lib/kubelet/pods'] })]),
    );
    const r = await applier.apply(
      plan(
        2,
        [live],
        [
          { instanceId: 'kubelet#0', paths: ['/var/lib/kubelet'] },
          // another (removed) instance claims a dir holding a live instance's file
          { instanceId: 'old#0', paths: ['/etc/drover/shared', '/var/lib/kubelet/pods'] },
        ],
      ),
    );
    expect(r.errors).toEqual([]);
    expect(existsSync(kubelet)).toBe(true);
    expect(existsSync(join(kubelet, 'data'))).toBe(true);
    expect(existsSync(shared)).toBe(true);
  });

  it('refuses shallow paths and paths outside the root, reporting them and deleting nothing', async () => {
    const { rootDir, mk, applier } = setup();
    const lib = mk('var/lib/x');
    const outside = tempDir('purge-outside');
    writeFileSync(join(outside, 'keep'), 'x');
    const r = await applier.apply(
      plan(1, [], [{ instanceId: 'bad#0', paths: ['/var/lib', `/../../..${outside}/keep/x`, '/var'] }]),
    );
    expect(r.errors.map((e) => e.code)).toEqual([
      'DROVER_ERR_PLAN_INVALID',
      'DROVER_ERR_PLAN_INVALID',
      'DROVER_ERR_PLAN_INVALID',
    ]);
    expect(r.errors[0]!.message).toMatch(/too shallow/);
    expect(r.errors[1]!.message).toMatch(/holds a '\.\.' segment/);
    expect(existsSync(lib)).toBe(true);
    expect(existsSync(join(outside, 'keep'))).toBe(true);
    expect(existsSync(rootDir)).toBe(true);
  });
});
