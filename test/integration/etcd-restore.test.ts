import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { Fleet } from '../helpers/fleet.js';
import { waitFor } from '../helpers/proc.js';

/**
 * `drover etcd restore` with real etcd ×3 over mutual TLS, one real `drover-agent` per host
 * (127.0.79.2-4): the refusals change nothing (quorum holds, a damaged snapshot); then two of the
 * three hosts lose power and their etcd data, and the restore brings the keys back on the survivor
 * as a new cluster and rejoins the other two, one at a time, once their hosts are back: 3/3
 * healthy, the keys written before the snapshot there, the one written after it gone.
 *
 * Short timings: heartbeat 500ms, Unreachable after 2s; etcd reassignment is held off (60s) so the
 * dead members stay put, as on a cluster with no spare host.
 */

const TOPOLOGY = `apiVersion: drover.dev/v1
kind: Topology
metadata: { name: rs }
cluster: { name: rs }
roles:
  etcd: { replicas: 3, nodeSelector: { pool: control-plane } }
`;
const KEYS = 20;

interface Member {
  ID: string | number;
  name: string;
  peerURLs: string[];
}
interface RestoreView {
  id: string;
  phase: string;
  target: { instanceId: string; nodeId: string; epoch: number };
  parked: Array<{ instanceId: string; epoch: number }>;
  rejoined: string[];
  clusterIdAfter?: string;
}

describe('etcd restore after a lost quorum (real etcd ×3 over mTLS, real agents; heartbeat 500ms, unreachable 2s)', () => {
  let fleet: Fleet;
  const figures: string[] = [];
  const etcdNodes = async () =>
    (await fleet.assignments()).filter((a) => a.role === 'etcd').sort((a, b) => a.ordinal - b.ordinal);
  const restoreApi = (body: Record<string, unknown>) =>
    fleet.api<{ ok: boolean; steps: string[]; dryRun: boolean; data: RestoreView }>(
      'POST',
      '/v1/etcd/restore?cluster=rs',
      body,
    );
  const refusal = (body: Record<string, unknown>) =>
    restoreApi(body).then(
      () => {
        throw new Error('the restore was not refused');
      },
      (err: Error) => err.message,
    );

  beforeAll(async () => {
    fleet = await Fleet.start({
      subnet: '127.0.79',
      cluster: 'rs',
      nodes: ['cp-1', 'cp-2', 'cp-3'].map((id) => ({ id, pool: 'control-plane' })),
      timings: { etcdReassignAfter: '60s' },
    });
    await fleet.applyTopology(TOPOLOGY);
    await fleet.converged(60_000);
  }, 120_000);

  afterAll(() => {
    process.stdout.write(
      `\nFIGURES (etcd-restore, 2-core CI, shortened timings):\n  ${figures.join('\n  ')}\n`,
    );
  });

  it('refuses while quorum holds and for a damaged snapshot, changing nothing; restores 2-of-3 lost to 3/3 with the keys back', async () => {
    onTestFailed(() => {
      process.stderr.write(`\n${fleet.logs()}\n`);
    });
    const before = await etcdNodes();
    expect(before).toHaveLength(3);
    const urls = before.map((a) => fleet.etcdUrl(a.nodeId));
    for (let i = 0; i < KEYS; i++) await fleet.etcdctl(urls, ['put', `/drover/restore/k${i}`, `value-${i}`]);
    const snap = (
      await fleet.api<{ data: { id: string; revision: number; etcdClusterId: string } }>(
        'POST',
        '/v1/etcd/snapshots?cluster=rs',
      )
    ).data;
    await fleet.etcdctl(urls, ['put', '/drover/restore/after', 'written-after-the-snapshot']);

    // 0. bad requests: named, nothing changed
    expect(await refusal({ snapshot: snap.id, extra: true })).toMatch(/HTTP 400/);
    expect(await refusal({ snapshot: '../../etc/passwd' })).toMatch(/HTTP 400.*snapshot/);
    expect(await refusal({})).toMatch(/HTTP 400.*snapshot/);
    await expect(fleet.api('POST', '/v1/etcd/restore?cluster=nope', { snapshot: snap.id })).rejects.toThrow(
      /HTTP 404/,
    );
    const unconfirmed = await fleet.cli(['etcd', 'restore', '--snapshot', snap.id, '--cluster', 'rs']);
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.stderr).toMatch(/without confirmation; nothing was changed/);
    expect((await fleet.cli(['etcd', 'restore', '--cluster', 'rs', '--yes'])).stderr).toMatch(
      /needs --snapshot ID/,
    );
    // 1. quorum holds: refused (API and CLI), nothing changed
    expect(await refusal({ snapshot: snap.id })).toMatch(/DROVER_ERR_RESTORE_REFUSED.*has quorum \(3 of 3/);
    const cli = await fleet.cli(['etcd', 'restore', '--snapshot', snap.id, '--yes', '--cluster', 'rs']);
    expect(cli.code).not.toBe(0);
    expect(cli.stderr).toMatch(/has quorum/);
    // a forced dry run lists the steps and acts on nothing
    const dry = await restoreApi({ snapshot: snap.id, force: true, dryRun: true });
    expect(dry.dryRun).toBe(true);
    expect(dry.steps.join('\n')).toMatch(/restore the snapshot onto etcd#\d on node cp-\d/);
    // 2. a damaged snapshot: refused before anything is touched, even forced
    const bad = (await fleet.api<{ data: { id: string } }>('POST', '/v1/etcd/snapshots?cluster=rs')).data;
    const file = join(fleet.coordinatorDataDir, 'etcd-snapshots', `${bad.id}.db`);
    const bytes = readFileSync(file);
    bytes[Math.floor(bytes.length / 2)] ^= 0xff;
    writeFileSync(file, bytes);
    expect(await refusal({ snapshot: bad.id, force: true })).toMatch(
      /DROVER_ERR_SNAPSHOT_DAMAGED.*nothing was touched/,
    );
    expect(await refusal({ snapshot: 'rs-nope' })).toMatch(/DROVER_ERR_SNAPSHOT_NOT_FOUND/);
    expect((await etcdNodes()).map((a) => a.epoch)).toEqual(before.map((a) => a.epoch));
    expect(fleet.events.some((e) => e.kind === 'etcd.restore-started')).toBe(false);

    // 3. two of three hosts lose power and their etcd data
    const [survivor, ...lost] = [before[0]!, before[1]!, before[2]!];
    const t0 = Date.now();
    for (const a of lost) {
      await fleet.kill(a.nodeId);
      rmSync(join(fleet.node(a.nodeId).rootDir, 'var/lib/etcd'), { recursive: true, force: true });
    }
    await waitFor(
      'both dead hosts Unreachable',
      async () => {
        const nodes = (await fleet.api<{ items: Array<{ id: string; state: string }> }>('GET', '/v1/nodes'))
          .items;
        return lost.every((a) => nodes.find((n) => n.id === a.nodeId)?.state === 'Unreachable');
      },
      { timeoutMs: 20_000, intervalMs: 200 },
    );
    const mark = fleet.mark();
    const started = await restoreApi({ snapshot: snap.id });
    const tRestore = Date.now();
    expect(started.data.target).toMatchObject({ instanceId: survivor.instanceId, nodeId: survivor.nodeId });
    expect(started.data.target.epoch).toBe(survivor.epoch + 1);
    expect(started.data.parked.map((p) => p.instanceId).sort()).toEqual(lost.map((a) => a.instanceId).sort());
    // a second one while it runs is refused (unless forced, which would replace it)
    expect(await refusal({ snapshot: snap.id })).toMatch(/already running.*--force to replace it/);

    // the survivor comes back alone, from the snapshot, as a new etcd cluster
    const seeded = await fleet.waitEvent(
      'the restored member',
      (e) => e.kind === 'etcd.restore-seeded',
      60_000,
      mark,
    );
    const tSeeded = Date.now();
    const alone = [fleet.etcdUrl(survivor.nodeId)];
    expect((await fleet.etcdctl(alone, ['get', '/drover/restore/k7', '--print-value-only'])).trim()).toBe(
      'value-7',
    );
    expect((await fleet.etcdctl(alone, ['get', '/drover/restore/after', '--print-value-only'])).trim()).toBe(
      '',
    );
    const m1 = JSON.parse(await fleet.etcdctl(alone, ['member', 'list', '-w', 'json'])) as {
      members: Member[];
    };
    expect(m1.members).toHaveLength(1);
    expect(String(seeded.data?.clusterId)).not.toBe(snap.etcdClusterId);

    // the hosts come back; their members rejoin one at a time, with fresh data dirs
    for (const a of lost) fleet.revive(a.nodeId);
    const done = await fleet.waitEvent(
      'the restore to finish',
      (e) => e.kind === 'etcd.restore-complete',
      150_000,
      mark,
    );
    const t1 = Date.now();
    const story = fleet
      .since(mark)
      .map((e) => e.kind)
      .filter((k) => k.startsWith('etcd.restore-') || k === 'etcd.member-added');
    // each member is added (by the restore, through the members so far) before its plan goes out
    expect(story).toEqual([
      'etcd.restore-started',
      'etcd.restore-refused',
      'etcd.restore-stopped',
      'etcd.restore-seeded',
      'etcd.restore-member-rejoining',
      'etcd.restore-member-rejoined',
      'etcd.restore-member-rejoining',
      'etcd.restore-member-rejoined',
      'etcd.restore-complete',
    ]);
    // and so it never starts into a cluster that does not know it yet
    const rejoinedAt = fleet.since(mark).filter((e) => e.kind === 'etcd.restore-member-rejoining');
    expect(
      fleet
        .since(mark)
        .filter(
          (e) => e.kind === 'instance.restarted' && rejoinedAt.some((r) => r.instanceId === e.instanceId),
        ),
    ).toEqual([]);
    const after = await etcdNodes();
    const all = after.map((a) => fleet.etcdUrl(a.nodeId));
    const m3 = JSON.parse(await fleet.etcdctl(all, ['member', 'list', '-w', 'json'])) as {
      members: Member[];
    };
    expect(m3.members.map((m) => m.name).sort()).toEqual(['etcd-0', 'etcd-1', 'etcd-2']);
    const health = JSON.parse(await fleet.etcdctl(all, ['endpoint', 'health', '-w', 'json'])) as Array<{
      endpoint: string;
      health: boolean;
    }>;
    expect(health.map((h) => [h.endpoint, h.health]).sort()).toEqual(all.map((u) => [u, true]).sort());
    // every key from each member on its own (serializable reads), the later write gone
    for (const u of all) {
      const out = await fleet.etcdctl(
        [u],
        ['get', '/drover/restore/k', '--prefix', '--keys-only', '--consistency=s'],
      );
      expect(out.split('\n').filter(Boolean)).toHaveLength(KEYS);
      expect((await fleet.etcdctl([u], ['get', '/drover/restore/after', '--consistency=s'])).trim()).toBe('');
    }
    // every member at a new epoch (a fresh data dir); the record says complete
    for (const a of after)
      expect(a.epoch).toBeGreaterThan(before.find((b) => b.instanceId === a.instanceId)!.epoch);
    const { items } = await fleet.api<{ items: RestoreView[] }>('GET', '/v1/etcd/restore?cluster=rs');
    expect(items[0]).toMatchObject({ id: started.data.id, phase: 'complete' });
    expect(items[0]!.rejoined.sort()).toEqual(lost.map((a) => a.instanceId).sort());
    await fleet.converged(60_000);
    const status = await fleet.cli(['etcd', 'restore', 'status', '--cluster', 'rs']);
    expect(status.stdout).toMatch(/complete: 3 of 3 members back/);
    figures.push(
      `restore: quorum lost (2 of 3 hosts killed) → restore accepted ${((tRestore - t0) / 1000).toFixed(1)} s (Unreachable detection); restore → seeded member serving ${((tSeeded - tRestore) / 1000).toFixed(1)} s; → 3/3 healthy ${((t1 - tRestore) / 1000).toFixed(1)} s (hosts revived at seeding); coordinator's count ${(Number(done.data?.durationMs) / 1000).toFixed(1)} s; ${KEYS} keys, snapshot revision ${snap.revision}`,
    );
  }, 300_000);
});
