import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import type { Event } from '../../protocol/index.js';
import { type AssignmentView, Fleet } from '../helpers/fleet.js';
import { waitFor } from '../helpers/proc.js';

/**
 * The coordinator dies in the middle of a repair and comes back: it runs as a child process
 * (`node dist/drover-coordinator.mjs`), SIGKILLed the moment the test sees a repair event on the
 * bus, then restarted on the same `--data-dir`. Real nats-server, real etcd (3 members) and the
 * API-server stand-in on five control-plane nodes (127.0.74.2-6), one `drover-agent` process each.
 *
 * Two crash points: right after `repair.reassign` of an etcd member (before or just after the new
 * assignment is written), and right after `etcd.member-removed` (the old member is gone, the new
 * one not yet added). Either way the restarted coordinator must finish the job with nothing
 * duplicated: three etcd members, each instance running on exactly one host.
 *
 * Short timings (the defaults are 2s / 10s / 5s / 60s): heartbeat 500ms, Unreachable after 2s,
 * reassign after 2s, etcd reassign after 3s.
 */

const TOPOLOGY = `apiVersion: drover.dev/v1
kind: Topology
metadata: { name: rc }
cluster: { name: rc }
roles:
  etcd: { replicas: 3, nodeSelector: { pool: control-plane } }
  kube-apiserver: { replicas: 3, nodeSelector: { pool: control-plane } }
`;

const NODES = ['cp-1', 'cp-2', 'cp-3', 'cp-4', 'cp-5'];

describe('repair: the coordinator is SIGKILLed mid-repair and restarted (child coordinator; real etcd ×3; heartbeat 500ms, unreachable 2s, reassign 2s, etcd reassign 3s)', () => {
  let fleet: Fleet;
  const figures: string[] = [];
  const dead = new Set<string>();

  beforeAll(async () => {
    fleet = await Fleet.start({
      subnet: '127.0.74',
      cluster: 'rc',
      nodes: NODES.map((id) => ({ id, pool: 'control-plane' })),
      coordinator: 'child',
    });
    await fleet.applyTopology(TOPOLOGY);
    await fleet.converged(60_000);
  }, 120_000);

  afterAll(() => {
    process.stdout.write(
      `\nFIGURES (repair-coordinator-crash, 2-core CI, shortened timings):\n  ${figures.join('\n  ')}\n`,
    );
  });

  const etcdMembers = async (urls: string[]) =>
    (
      JSON.parse(await fleet.etcdctl(urls, ['member', 'list', '-w', 'json'])) as {
        members: Array<{ ID: string; name: string; peerURLs: string[] }>;
      }
    ).members;

  /** Kills the host of `instance`, then the coordinator at the first event matching `crashAt`. */
  async function crashMidRepair(instance: string, crashAt: (e: Event) => boolean, what: string) {
    const before = await fleet.assignments();
    const a = before.find((x) => x.instanceId === instance)!;
    const victim = a.nodeId;
    const onVictim = before.filter((x) => x.nodeId === victim);
    const mark = fleet.mark();
    const t0 = Date.now();
    await fleet.kill(victim);
    dead.add(victim);
    const at = await fleet.waitEvent(what, crashAt, 30_000, mark);
    await fleet.killCoordinator();
    const tCrash = Date.now();
    const seen = fleet.since(mark).map((e) => `${e.kind}${e.instanceId ? `(${e.instanceId})` : ''}`);

    await fleet.startCoordinator();
    const restarted = fleet.mark();
    // The repair completes: every instance that was on the dead host runs healthy elsewhere.
    let last: AssignmentView[] = [];
    await waitFor(
      `the instances of ${victim} healthy on other hosts after the restart`,
      async () => {
        last = await fleet.assignments();
        return onVictim.every((o) => {
          const n = last.find((x) => x.instanceId === o.instanceId);
          return n && !dead.has(n.nodeId) && n.phase === 'Healthy';
        });
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    ).catch((err: Error) => {
      throw new Error(
        `${err.message}; assignments: ${JSON.stringify(last.map((x) => [x.instanceId, x.nodeId, x.phase]))}`,
      );
    });
    await fleet.converged(30_000);
    const tDone = Date.now();

    // Nothing duplicated: three etcd members, exactly the assigned ones; one host per instance.
    const etcd = last.filter((x) => x.role === 'etcd');
    const urls = etcd.map((x) => fleet.etcdUrl(x.nodeId));
    await waitFor('every etcd member started (named)', async () =>
      (await etcdMembers(urls)).every((m) => m.name !== ''),
    );
    const members = await etcdMembers(urls);
    expect(members.map((m) => m.peerURLs[0]).sort()).toEqual(
      etcd.map((x) => `https://${fleet.node(x.nodeId).address}:2380`).sort(),
    );
    expect(members.map((m) => m.name).sort()).toEqual(['etcd-0', 'etcd-1', 'etcd-2']);
    const health = JSON.parse(await fleet.etcdctl(urls, ['endpoint', 'health', '-w', 'json'])) as Array<{
      health: boolean;
    }>;
    expect(health.filter((h) => h.health)).toHaveLength(3);
    const running = fleet.running();
    for (const x of last) expect(running.get(x.instanceId), x.instanceId).toEqual([x.nodeId]);
    expect([...running.keys()].sort()).toEqual(last.map((x) => x.instanceId).sort());
    // one instance id per role ordinal, and no instance on a dead host
    expect(new Set(last.map((x) => x.instanceId)).size).toBe(last.length);
    for (const x of last) expect(dead.has(x.nodeId), x.instanceId).toBe(false);
    const after = fleet.since(restarted).map((e) => e.kind);
    figures.push(
      `crash after ${at.kind}: killed ${((tCrash - t0) / 1000).toFixed(1)}s after the host; repaired ${((tDone - tCrash) / 1000).toFixed(1)}s after the crash. Before the crash: ${seen.join(', ')}. After the restart: ${after.filter((k) => k.startsWith('repair') || k.startsWith('role') || k.startsWith('etcd')).join(', ') || '(no repair events: the new assignment was already durable)'}`,
    );
  }

  it('crash right after repair.reassign of an etcd member: the repair completes, nothing duplicated', async () => {
    onTestFailed(() => {
      process.stderr.write(`\n${fleet.logs()}\n`);
    });
    await crashMidRepair(
      'etcd#0',
      (e) => e.kind === 'repair.reassign' && e.instanceId === 'etcd#0',
      'repair.reassign of etcd#0',
    );
  }, 150_000);

  it('crash right after etcd.member-removed (the new member not yet added): the repair completes, nothing duplicated', async () => {
    onTestFailed(() => {
      process.stderr.write(`\n${fleet.logs()}\n`);
    });
    await crashMidRepair('etcd#2', (e) => e.kind === 'etcd.member-removed', 'etcd.member-removed');
  }, 150_000);
});
