import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { Fleet } from '../helpers/fleet.js';
import { waitFor } from '../helpers/proc.js';

/**
 * Automated etcdfix with real etcd: three members on four control-plane nodes (127.0.73.2-5),
 * one `drover-agent` process each. Membership changes go through the surviving members'
 * client API (`member remove`, `member add`), checked here with etcdctl.
 *
 * Short timings (the defaults are 2s / 10s / 60s for etcd): heartbeat 500ms, Unreachable after
 * 2s, etcd reassign after 3s.
 */

const TOPOLOGY = `apiVersion: drover.dev/v1
kind: Topology
metadata: { name: re }
cluster: { name: re }
roles:
  etcd: { replicas: 3, nodeSelector: { pool: control-plane } }
`;

interface Member {
  ID: string | number;
  name: string;
  peerURLs: string[];
  clientURLs?: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('repair: etcd member replacement (real etcd ×3 on 4 nodes; heartbeat 500ms, unreachable 2s, etcd reassign 3s)', () => {
  let fleet: Fleet;
  const figures: string[] = [];
  const members = async (endpoints: string[]): Promise<Member[]> =>
    (
      JSON.parse(await fleet.etcdctl(endpoints, ['member', 'list', '-w', 'json'])) as {
        members: Member[];
      }
    ).members;
  const etcdNodes = async () =>
    (await fleet.assignments()).filter((a) => a.role === 'etcd').sort((a, b) => a.ordinal - b.ordinal);

  beforeAll(async () => {
    fleet = await Fleet.start({
      subnet: '127.0.73',
      cluster: 're',
      nodes: ['cp-1', 'cp-2', 'cp-3', 'cp-4'].map((id) => ({ id, pool: 'control-plane' })),
    });
    await fleet.applyTopology(TOPOLOGY);
    await fleet.converged(60_000);
  }, 120_000);

  afterAll(() => {
    process.stdout.write(
      `\nFIGURES (repair-etcd, 2-core CI, shortened timings):\n  ${figures.join('\n  ')}\n`,
    );
  });

  it('a dead member’s host: the member is replaced on the spare through member remove/add; data survives; all three healthy', async () => {
    onTestFailed(() => {
      process.stderr.write(`\n${fleet.logs()}\n`);
    });
    const before = await etcdNodes();
    expect(before).toHaveLength(3);
    const urls = before.map((a) => fleet.etcdUrl(a.nodeId));
    const m0 = await members(urls);
    expect(m0.map((m) => m.name).sort()).toEqual(['etcd-0', 'etcd-1', 'etcd-2']);
    await fleet.etcdctl(urls, ['put', '/drover/test/before', 'written-before-the-failure']);

    const victimA = before[1]!;
    const victim = victimA.nodeId;
    const spare = ['cp-1', 'cp-2', 'cp-3', 'cp-4'].find((n) => !before.some((a) => a.nodeId === n))!;
    const seq = fleet.lastSeq;
    const t0 = Date.now();
    await fleet.kill(victim);

    const moved = await fleet.waitEvent(
      'etcd#1 to move',
      (e) => e.kind === 'role.moved' && e.instanceId === 'etcd#1' && e.seq > seq,
      30_000,
    );
    expect(moved.nodeId).toBe(spare);
    await fleet.waitEvent('member add', (e) => e.kind === 'etcd.member-added' && e.seq > seq, 30_000);
    await waitFor(
      'the new member healthy on the spare',
      async () => {
        const a = (await etcdNodes())[1]!;
        return a.nodeId === spare && a.phase === 'Healthy';
      },
      { timeoutMs: 40_000, intervalMs: 200 },
    );
    const tHealthy = Date.now();

    const now = (await etcdNodes()).map((a) => fleet.etcdUrl(a.nodeId));
    expect(now).toContain(fleet.etcdUrl(spare));
    expect(now).not.toContain(fleet.etcdUrl(victim));
    // membership: exactly three, the dead one gone, the new one started under the old name
    await waitFor('the new member to have started (named)', async () =>
      (await members(now)).every((m) => m.name !== ''),
    );
    const m1 = await members(now);
    expect(m1).toHaveLength(3);
    expect(m1.map((m) => m.peerURLs[0]).sort()).toEqual(
      (await etcdNodes()).map((a) => `https://${fleet.node(a.nodeId).address}:2380`).sort(),
    );
    expect(m1.map((m) => m.name).sort()).toEqual(['etcd-0', 'etcd-1', 'etcd-2']);
    expect(m1.some((m) => m.ID === m0.find((x) => x.name === 'etcd-1')!.ID)).toBe(false);
    // a key written before is readable after, from the new member alone
    expect(
      (
        await fleet.etcdctl([fleet.etcdUrl(spare)], ['get', '/drover/test/before', '--print-value-only'])
      ).trim(),
    ).toBe('written-before-the-failure');
    const health = JSON.parse(await fleet.etcdctl(now, ['endpoint', 'health', '-w', 'json'])) as Array<{
      endpoint: string;
      health: boolean;
    }>;
    expect(health.map((h) => [h.endpoint, h.health]).sort()).toEqual(now.map((u) => [u, true]).sort());

    // the story: unreachable → reassign → moved → member removed → member added, in that order
    const story = fleet.events
      .filter((e) => e.seq > seq)
      .map((e) => e.kind)
      .filter((k) =>
        [
          'node.unreachable',
          'repair.reassign',
          'role.moved',
          'etcd.member-removed',
          'etcd.member-added',
        ].includes(k),
      );
    expect(story).toEqual([
      'node.unreachable',
      'repair.reassign',
      'role.moved',
      'etcd.member-removed',
      'etcd.member-added',
    ]);
    figures.push(
      `etcd member replaced: healthy on the spare ${((tHealthy - t0) / 1000).toFixed(1)}s after the kill (unreachable 2s + etcd reassign 3s + etcd probe initialDelay 5s)`,
    );
  }, 90_000);

  it('a change that would break quorum is refused (2 of 3 members dead), with an event saying why; membership unchanged', async () => {
    onTestFailed(() => {
      process.stderr.write(`\n${fleet.logs()}\n`);
    });
    const before = await etcdNodes();
    const dead = [before[0]!, before[2]!];
    const alive = before[1]!;
    const m0 = await members(before.map((a) => fleet.etcdUrl(a.nodeId)));
    const seq = fleet.lastSeq;
    await Promise.all(dead.map((a) => fleet.kill(a.nodeId)));
    await waitFor(
      'both Unreachable',
      async () => {
        const nodes = (await fleet.api<{ items: Array<{ id: string; state: string }> }>('GET', '/v1/nodes'))
          .items;
        return dead.every((a) => nodes.find((n) => n.id === a.nodeId)?.state === 'Unreachable');
      },
      { timeoutMs: 10_000, intervalMs: 100 },
    );

    // A dry run first: it says the reconcile would refuse, and why, and does nothing.
    const dry = await fleet.cli(['repair', 'etcd', '--member', 'etcd-0', '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(
      /^dry run: etcd member etcd#0 \(on \S+\) would not be replaced now: .*quorum.*; nothing was done$/m,
    );
    expect(fleet.events.filter((e) => e.seq > seq && e.kind === 'etcd.repair-requested')).toEqual([]);

    // The operator forces it: `drover repair etcd --member etcd-0`.
    const r = await fleet.cli(['repair', 'etcd', '--member', 'etcd-0']);
    expect(r.code, r.stderr).toBe(0);
    const refused = await fleet.waitEvent(
      'etcd.replace-refused',
      (e) => e.kind === 'etcd.replace-refused' && e.seq > seq,
      10_000,
    );
    expect(refused.severity).toBe('error');
    expect(refused.message).toMatch(/quorum/);
    // ... and overrides the storm guard for a dead node too: still refused by quorum
    const f = await fleet.cli(['repair', dead[1]!.nodeId, '--force']);
    expect(f.code, f.stderr).toBe(0);
    await sleep(5000); // past the etcd reassign deadline (3 s)

    expect(fleet.events.filter((e) => e.seq > seq && e.kind === 'role.moved')).toEqual([]);
    expect(fleet.events.filter((e) => e.seq > seq && e.kind.startsWith('etcd.member-'))).toEqual([]);
    expect((await etcdNodes()).map((a) => [a.instanceId, a.nodeId, a.epoch])).toEqual(
      before.map((a) => [a.instanceId, a.nodeId, a.epoch]),
    );
    // the survivor still lists the same three members (served locally, without quorum)
    const m1 = await members([fleet.etcdUrl(alive.nodeId)]);
    expect(m1.map((m) => String(m.ID)).sort()).toEqual(m0.map((m) => String(m.ID)).sort());
    figures.push(`quorum guard: ${refused.message}`);
  }, 60_000);
});
