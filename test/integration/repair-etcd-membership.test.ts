import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT_VAR } from '../../agent/applier.js';
import { EtcdGatewayAdmin as EtcdAdmin } from '../../coordinator/etcd/admin.js';
import { autoCleanup, killAndWait, requireBinary, spawnLogged, tempDir, waitFor } from '../helpers/proc.js';
import { repairFleet } from '../helpers/repair-fleet.js';

/**
 * The level-triggered etcd membership reconcile against real etcd, with a real Engine on a
 * MemoryStore and an injected clock; the test plays the agents (it starts the etcd processes the
 * plans describe). Members listen on 127.0.75.2-5 at the catalog's ports 2379/2380.
 *
 * The case: a coordinator crashed after removing a dead member and adding its replacement, but
 * before the moved assignment was durable. After the restart the store still places the member on
 * its old (dead) host. The reconcile must not re-add the old host's member — a bootstrap member
 * that was removed can never rejoin with its old data — and must drop the orphaned, never-started
 * replacement; the repair then moves the member properly.
 */

const TOPOLOGY = `apiVersion: drover.dev/v1
kind: Topology
metadata: { name: m }
cluster: { name: m }
roles:
  etcd: { replicas: 3 }
`;
const ADDR = (i: number) => `127.0.75.${i + 2}`;
const peer = (i: number) => `http://${ADDR(i)}:2380`;
const client = (i: number) => `http://${ADDR(i)}:2379`;

describe('etcd membership reconcile (real etcd on 127.0.75.x, engine on an injected clock)', () => {
  it('after a crash that lost a move: the old host’s removed member is not re-added, the orphan is removed, the repair then moves it', async () => {
    const { engine, repair, clock, ids, alive, beat, assignment } = await repairFleet({
      nodes: 4,
      address: ADDR,
      topology: TOPOLOGY,
      source: 'm.yaml',
    });
    const where = (inst: string) => assignment(inst)!;
    const idx = (node: string) => ids.indexOf(node);

    // Play the agents: run the etcd each plan describes (root dir per node), report it Healthy.
    const root = tempDir('etcd-membership');
    const procs = new Map<string, ReturnType<typeof spawnLogged>>();
    autoCleanup(async () => {
      for (const p of procs.values()) await killAndWait(p, 'SIGKILL');
    });
    const runPlanned = (node: string) => {
      const spec = engine.desiredPlan(node)!.instances.find((i) => i.role === 'etcd')!;
      const args = spec.run.args.map((a) => a.replaceAll(ROOT_VAR, join(root, node)));
      procs.set(node, spawnLogged(requireBinary('etcd'), [...args, '--log-level=error']));
    };
    const bootstrap = ['etcd#0', 'etcd#1', 'etcd#2'].map((i) => where(i).nodeId);
    expect(new Set(bootstrap).size).toBe(3);
    for (const n of bootstrap) runPlanned(n);
    const admin = new EtcdAdmin(bootstrap.map((n) => client(idx(n))));
    await waitFor(
      'the bootstrap cluster healthy',
      async () => (await admin.healthyEndpoints(bootstrap.map((n) => client(idx(n))))).length === 3,
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    beat();
    await engine.queue.idle();
    const old = where('etcd#2').nodeId;
    const spare = ids.find((n) => !bootstrap.includes(n))!;

    // What the crashed coordinator did before it died: the old member removed (through the
    // survivors), the replacement added; the old host is dead. The move itself was lost.
    await killAndWait(procs.get(old)!, 'SIGKILL');
    procs.delete(old);
    const survivors = bootstrap.filter((n) => n !== old).map((n) => client(idx(n)));
    const m0 = await admin.memberList(survivors);
    await admin.memberRemove(m0.find((m) => m.peerURLs.includes(peer(idx(old))))!.id, survivors);
    await admin.memberAdd([peer(idx(spare))], survivors);

    // The restarted coordinator reconciles the membership with its (older) assignments.
    await repair.etcd.request('m'); // the `etcd:m` queue key
    const m1 = await admin.memberList(survivors);
    expect(m1.flatMap((m) => m.peerURLs).sort()).toEqual(
      bootstrap.filter((n) => n !== old).map((n) => peer(idx(n))),
    );

    // The repair replaces the member on the spare as usual: remove nothing more, add, start.
    alive.delete(old);
    await engine.repairEtcdMember('etcd-2');
    beat();
    await engine.queue.idle();
    const want = [...bootstrap.filter((n) => n !== old), spare].map((n) => peer(idx(n))).sort();
    // requeued reconciles (a retry after etcd's "unhealthy cluster" answer) wait on the clock
    await waitFor(
      'etcd#2 moved to the spare and its member added',
      async () => {
        clock.advance(1000);
        beat();
        await engine.queue.idle();
        if (where('etcd#2').nodeId !== spare) return false;
        const m = await admin.memberList(survivors);
        return JSON.stringify(m.flatMap((x) => x.peerURLs).sort()) === JSON.stringify(want);
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    runPlanned(spare);
    await waitFor(
      'three healthy members',
      async () =>
        (await admin.healthyEndpoints([...survivors, client(idx(spare))])).length === 3 &&
        (await admin.memberList(survivors)).every((m) => m.name !== ''),
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    expect(engine.events.list().filter((e) => e.kind === 'etcd.member-added')).toHaveLength(1);
  }, 90_000);
});
