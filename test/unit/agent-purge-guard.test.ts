// The purge guard (issue 15, point 11): `drover clean --purge` deletes only normalised, deep
// paths inside the agent's root that the removed instance owned; each refusal is reported and
// deletes nothing, symlinks included.
import { existsSync, lstatSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Applier } from '../../agent/applier.js';
import { checkPurgePath } from '../../agent/purge-guard.js';
import { type InstanceSpec, type PlanPurge, PROTOCOL_VERSION, sealPlan } from '../../protocol/index.js';
import { processApplier } from '../helpers/agent-harness.js';
import { tempDir } from '../helpers/proc.js';

type Spec = Omit<InstanceSpec, 'checksum'>;
const inst = (id: string, dataPaths: string[]): Spec => ({
  id,
  role: id.split('#')[0]!,
  epoch: 1,
  simulated: false,
  files: [],
  run: { command: '/bin/sleep', args: ['1000'], env: {} },
  restart: {
    policy: 'always',
    initialBackoffMs: 200,
    maxBackoffMs: 1000,
    resetAfterMs: 60_000,
    crashLoopThreshold: 5,
  },
  dataPaths,
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

/** An applier whose etcd#0 ran once owning `owned`, then was removed (as `drover clean` does). */
async function ranThenRemoved(owned: string[]) {
  const h = processApplier('guard');
  const mk = (p: string) => {
    mkdirSync(join(h.rootDir, p), { recursive: true });
    writeFileSync(join(h.rootDir, p, 'data'), 'x');
    return join(h.rootDir, p);
  };
  await h.applier.apply(plan(1, [inst('etcd#0', owned)]));
  await h.applier.apply(plan(2, []));
  const purge = async (paths: string[], instances: Spec[] = []) =>
    h.applier.apply(plan(3, instances, [{ instanceId: 'etcd#0', paths }]));
  return { ...h, mk, purge };
}

describe('the purge guard: path checks', () => {
  const owned = ['/var/lib/etcd/e0'];
  it.each([
    ['var/lib/etcd/e0', /is not absolute/],
    ['/var/lib/etcd/e0/../../../..', /'\.\.' segment/],
    ['/var/lib/etcd/../etcd/e0', /'\.\.' segment/],
    ['/var/lib//etcd/e0', /not normalised \(it means \/var\/lib\/etcd\/e0\)/],
    ['/var/lib/./etcd/e0', /not normalised/],
    ['/var/lib', /too shallow/],
    ['/', /too shallow/],
    ['/var/lib/etcd/e1', /not a path instance etcd#0 owned \(it owned \/var\/lib\/etcd\/e0\)/],
    ['/var/lib/etcd', /not a path instance etcd#0 owned/],
    ['/var/lib/etcd/e0x', /not a path instance etcd#0 owned/],
  ])('refuses %j', (path, why) => {
    expect(() => checkPurgePath(path, 'etcd#0', owned)).toThrow(why);
  });

  it('accepts an owned path or one inside it, and refuses everything for an instance that never ran here', () => {
    expect(() => checkPurgePath('/var/lib/etcd/e0', 'etcd#0', owned)).not.toThrow();
    expect(() => checkPurgePath('/var/lib/etcd/e0/member', 'etcd#0', owned)).not.toThrow();
    expect(() => checkPurgePath('/var/lib/etcd/e0/', 'etcd#0', owned)).not.toThrow();
    expect(() => checkPurgePath('/var/lib/etcd/e0', 'etcd#0', undefined)).toThrow(
      /never ran under this agent/,
    );
  });
});

describe('the purge guard in the applier', () => {
  it('a path that would resolve to the root dir is refused, and the root keeps everything', async () => {
    const { rootDir, mk, purge } = await ranThenRemoved(['/var/lib/etcd/e0']);
    const data = mk('var/lib/etcd/e0');
    const r = await purge(['/var/lib/etcd/e0/../../../..', '/var/lib/etcd/../../..']);
    expect(r.errors.map((e) => e.message)).toEqual([
      expect.stringMatching(/'\.\.' segment/),
      expect.stringMatching(/'\.\.' segment/),
    ]);
    expect(existsSync(join(data, 'data'))).toBe(true);
    expect(existsSync(rootDir)).toBe(true);
  });

  it('deletes only what the removed instance owned', async () => {
    const { mk, purge } = await ranThenRemoved(['/var/lib/etcd/e0']);
    const mine = mk('var/lib/etcd/e0');
    const other = mk('var/lib/etcd/e1');
    const r = await purge(['/var/lib/etcd/e0', '/var/lib/etcd/e1']);
    expect(r.errors).toEqual([
      expect.objectContaining({
        id: 'etcd#0',
        code: 'DROVER_ERR_PLAN_INVALID',
        message: expect.stringMatching(/not a path instance etcd#0 owned/),
      }),
    ]);
    expect(existsSync(mine)).toBe(false);
    expect(existsSync(join(other, 'data'))).toBe(true);
  });

  it('a parent symlinked out of the root is refused; what it points at survives', async () => {
    const { rootDir, purge } = await ranThenRemoved(['/var/lib/link/data']);
    const outside = tempDir('guard-outside');
    mkdirSync(join(outside, 'data'));
    writeFileSync(join(outside, 'data', 'precious'), 'x');
    mkdirSync(join(rootDir, 'var/lib'), { recursive: true });
    symlinkSync(outside, join(rootDir, 'var/lib/link'));
    const r = await purge(['/var/lib/link/data']);
    expect(r.errors[0]?.message).toMatch(/leads outside the root dir through a symlink/);
    expect(existsSync(join(outside, 'data', 'precious'))).toBe(true);
  });

  it('a parent symlinked to a shallow dir inside the root is refused', async () => {
    const { rootDir, mk, purge } = await ranThenRemoved(['/var/lib/up/etc']);
    const etc = mk('etc');
    mkdirSync(join(rootDir, 'var/lib'), { recursive: true });
    symlinkSync(rootDir, join(rootDir, 'var/lib/up'));
    const r = await purge(['/var/lib/up/etc']);
    expect(r.errors[0]?.message).toMatch(/too shallow/);
    expect(existsSync(join(etc, 'data'))).toBe(true);
  });

  it('a symlink at the path itself is removed, not followed', async () => {
    const { rootDir, purge } = await ranThenRemoved(['/var/lib/etcd/e0']);
    const outside = tempDir('guard-target');
    writeFileSync(join(outside, 'precious'), 'x');
    mkdirSync(join(rootDir, 'var/lib/etcd'), { recursive: true });
    symlinkSync(outside, join(rootDir, 'var/lib/etcd/e0'));
    const r = await purge(['/var/lib/etcd/e0']);
    expect(r.errors).toEqual([]);
    expect(() => lstatSync(join(rootDir, 'var/lib/etcd/e0'))).toThrow();
    expect(existsSync(join(outside, 'precious'))).toBe(true);
  });

  it("a symlink that leads into a live instance's data is skipped", async () => {
    const { rootDir, mk, purge } = await ranThenRemoved(['/var/lib/old/x/data']);
    const live = mk('var/lib/kubelet/data');
    mkdirSync(join(rootDir, 'var/lib/old'), { recursive: true });
    symlinkSync(join(rootDir, 'var/lib/kubelet'), join(rootDir, 'var/lib/old/x'));
    const r = await purge(['/var/lib/old/x/data'], [inst('kubelet#0', ['/var/lib/kubelet'])]);
    expect(r.errors).toEqual([]);
    expect(existsSync(join(live, 'data'))).toBe(true);
  });

  it("never the agent's data dir, even when the instance claims it", async () => {
    const rootDir = tempDir('guard-root');
    const h = processApplier('guard-dd');
    // the data dir inside the root, three levels down
    const dd = join(rootDir, 'var/lib/drover');
    mkdirSync(dd, { recursive: true });
    writeFileSync(join(dd, 'plan.json'), '{}');
    const applier = new Applier({ runtime: h.runtime, rootDir, dataDir: dd });
    await applier.apply(plan(1, [inst('etcd#0', ['/var/lib/drover'])]));
    await applier.apply(plan(2, []));
    const r = await applier.apply(plan(3, [], [{ instanceId: 'etcd#0', paths: ['/var/lib/drover'] }]));
    expect(r.errors).toEqual([]);
    expect(existsSync(join(dd, 'plan.json'))).toBe(true);
  });

  it('the ownership ledger survives an agent restart (clean, restart, clean --purge)', async () => {
    const { dataDir, rootDir, runtime, mk } = await ranThenRemoved(['/var/lib/etcd/e0']);
    const data = mk('var/lib/etcd/e0');
    const again = new Applier({ runtime, rootDir, dataDir });
    await again.loadPersisted();
    const r = await again.apply(plan(3, [], [{ instanceId: 'etcd#0', paths: ['/var/lib/etcd/e0'] }]));
    expect(r.errors).toEqual([]);
    expect(existsSync(data)).toBe(false);
    // a fresh agent without the ledger refuses
    const fresh = new Applier({ runtime, rootDir, dataDir: tempDir('guard-fresh') });
    mk('var/lib/etcd/e0');
    const f = await fresh.apply(plan(4, [], [{ instanceId: 'etcd#0', paths: ['/var/lib/etcd/e0'] }]));
    expect(f.errors[0]?.message).toMatch(/never ran under this agent/);
    expect(existsSync(data)).toBe(true);
  });
});
