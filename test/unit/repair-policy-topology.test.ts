// The topology's per-role repair overrides (`repair.autoReassign`, `repair.maxReassignPerHour`,
// `repair.reassignAfter`) and the order of the etcd quorum gate and the rate limit, on an injected
// clock with a real Engine over a MemoryStore and a recording bus (a narrow port). Nodes sit on
// 127.0.76.x, where nothing listens: an etcd membership call fails at once.
import { describe, expect, it } from 'vitest';
import { roleViews } from '../../coordinator/api/index.js';
import { beatenRepairFleet } from '../helpers/repair-fleet.js';

const web = (replicas: number, repair = '') => `
apiVersion: drover.dev/v1
kind: Topology
metadata: { name: t }
cluster: { name: t }
customRoles:
  web: { command: /bin/sleep, args: ["1000"] }
roles:
  web: { replicas: ${replicas}${repair ? `, repair: ${repair}` : ''} }
`;

const etcd3 = (repair = '') => `
apiVersion: drover.dev/v1
kind: Topology
metadata: { name: t }
cluster: { name: t }
roles:
  etcd: { replicas: 3${repair ? `, repair: ${repair}` : ''} }
`;

const fleet = (n: number, topology: string) =>
  beatenRepairFleet({ nodes: n, address: (i) => `127.0.76.${i + 2}`, topology });

describe('repair policy: the topology’s per-role overrides (injected clock)', () => {
  it('repair.autoReassign: false keeps the instance on its dead node (with one held event) until an operator acts', async () => {
    const f = await fleet(3, web(1, '{ autoReassign: false }'));
    const victim = f.where('web#0')!;
    f.alive.delete(victim);
    await f.advance(120_000);
    expect(f.where('web#0')).toBe(victim);
    expect(f.events('role.moved')).toEqual([]);
    const held = f.events('repair.held');
    expect(held).toHaveLength(1);
    expect(held[0]!.message).toMatch(/repair\.autoReassign: false/);
    await f.engine.repairNode(victim);
    await f.advance(1000);
    expect(f.where('web#0')).not.toBe(victim);
    await f.engine.close();
  });

  it('repair.maxReassignPerHour caps automatic moves of the role per hour', async () => {
    const f = await fleet(10, web(4, '{ maxReassignPerHour: 1 }'));
    const first = ['web#0', 'web#1'].map((i) => f.where(i)!);
    for (const n of first) f.alive.delete(n); // 2 of 10: no storm
    await f.advance(27_000 + 61_000); // past Unreachable + reassignAfter, and past the per-minute window
    const moved = () => ['web#0', 'web#1'].filter((i, k) => f.where(i) !== first[k]);
    expect(moved()).toHaveLength(1);
    expect(f.events('repair.held').map((e) => e.message)).toEqual([
      expect.stringMatching(/rate-limited \(1\/hour for web, its repair\.maxReassignPerHour\)/),
    ]);
    await f.advance(3_600_000 + 30_000 - 88_000); // an hour after the first move
    expect(moved()).toHaveLength(2);
    await f.engine.close();
  });

  it('repair.reassignAfter overrides the coordinator default for the role', async () => {
    const f = await fleet(3, web(1, '{ reassignAfter: 3s }'));
    const victim = f.where('web#0')!;
    f.alive.delete(victim);
    await f.advance(10_000 + 2000); // Unreachable after 10 s; 2 s of the 3 s
    expect(f.where('web#0')).toBe(victim);
    await f.advance(2000);
    expect(f.where('web#0')).not.toBe(victim);
    await f.engine.close();
  });

  it('etcd changes refused for quorum do not use up the rate budget: once quorum returns, the member moves at once', async () => {
    const f = await fleet(4, etcd3('{ reassignAfter: 1s }'));
    const [a, b] = ['etcd#0', 'etcd#1'].map((i) => f.where(i)!);
    f.alive.delete(a!);
    f.alive.delete(b!); // 2 of 3 members down (2 of 4 nodes: storm too; an operator overrides it)
    await f.engine.repairNode(a!, { force: true });
    await f.advance(40_000); // refused again and again (quorum), within one minute
    expect(f.events('role.moved')).toEqual([]);
    expect(f.events('etcd.replace-refused').length).toBeGreaterThan(0);
    f.alive.add(b!); // quorum is back: 2 of 3 healthy
    await f.advance(3000);
    expect(f.where('etcd#0')).not.toBe(a);
    expect(f.events('repair.held').filter((e) => /rate-limited/.test(e.message))).toEqual([]);
    await f.engine.close();
  });

  it('`remove` of an etcd host is refused (even forced) while forgetting its member would break quorum; allowed once it would not', async () => {
    const f = await fleet(4, etcd3());
    const [a, b] = ['etcd#0', 'etcd#1'].map((i) => f.where(i)!);
    f.alive.delete(b!); // one of three members down: a (healthy) is needed for quorum
    await f.advance(12_000);
    await expect(f.engine.remove(a!)).rejects.toMatchObject({
      code: 'DROVER_ERR_ETCD_QUORUM',
      message: expect.stringMatching(/not removing node .*etcd#0 is an etcd member: .*quorum/),
    });
    expect(f.engine.nodes.get(a!)).toBeDefined(); // nothing changed
    expect(f.where('etcd#0')).toBe(a);
    expect(f.events('etcd.replace-refused').at(-1)?.message).toMatch(new RegExp(`not removing node ${a}`));
    // the dead member's host itself can be forgotten: two healthy of three keep quorum throughout
    await f.engine.remove(b!);
    expect(f.engine.nodes.get(b!)).toBeUndefined();
    await f.engine.close();
  });

  it('no spare: the role is Degraded with the reason, one reassign decision (no event spam, no rate budget used up), and it recovers when capacity returns', async () => {
    const f = await fleet(3, web(3));
    const victim = f.where('web#2')!;
    f.alive.delete(victim);
    await f.advance(26_000);
    expect(f.events('repair.reassign')).toHaveLength(1);
    expect(f.where('web#2')).toBe(victim); // nowhere to go: it keeps its (dead) node
    expect(f.events('role.unschedulable').map((e) => e.message)).toEqual([expect.stringMatching(/web#2/)]);
    const view = roleViews(f.engine, 't').find((r) => r.name === 'web')!;
    expect([view.status, view.desired, view.placed, view.healthy]).toEqual(['Degraded', 3, 3, 2]);
    expect(view.reasons.join('; ')).toMatch(new RegExp(`web#2 on ${victim}: node is Unreachable`));
    // every cluster reconcile (a node flapping, a registration, a facts change …) re-evaluates;
    // none re-announces the same decision
    for (let i = 0; i < 10; i++) {
      f.engine.queue.add('cluster:t');
      await f.advance(1000);
    }
    expect(f.events('repair.reassign')).toHaveLength(1);
    expect(f.events('repair.held')).toEqual([]);
    // capacity returns: a fourth node joins and the instance moves there by itself
    await f.register('n4', '127.0.76.5');
    f.alive.add('n4');
    await f.advance(2000);
    expect(f.where('web#2')).toBe('n4');
    expect(f.events('role.moved')).toHaveLength(1);
    await f.engine.close();
  });
});
