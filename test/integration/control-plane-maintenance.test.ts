import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { type AssignmentView, Fleet } from '../helpers/fleet.js';

/**
 * Control-plane maintenance with real processes: a real nats-server, the coordinator, six
 * `drover-agent` processes (one load balancer, five control-plane hosts: three used, two spares),
 * real etcd (3 members) and haproxy; the API servers, schedulers and controller managers are the
 * lab stand-in. Short timings: heartbeat 500ms, Unreachable after 2s.
 *
 * The user's steps: drain two control-plane hosts (at once, as a maintenance script would) and
 * `drain --wait` them; remove a drained host; then try to remove a host that still runs its roles.
 */

const TOPOLOGY = `apiVersion: drover.dev/v1
kind: Topology
metadata: { name: cpm }
cluster:
  name: cpm
  apiEndpoint: { mode: haproxy, port: 6443 }
roles:
  load-balancer: { replicas: 1, nodeSelector: { pool: lb } }
  etcd: { replicas: 3, nodeSelector: { pool: control-plane } }
  kube-apiserver: { replicas: 3, nodeSelector: { pool: control-plane } }
  kube-scheduler: { replicas: 3, nodeSelector: { pool: control-plane } }
  kube-controller-manager: { replicas: 3, nodeSelector: { pool: control-plane } }
`;

const REPLICATED = ['etcd', 'kube-apiserver', 'kube-scheduler', 'kube-controller-manager'];
const healthy = (a: AssignmentView) =>
  (a.phase === 'Healthy' || a.phase === 'Running') && a.health !== 'unhealthy';

/** Samples the fleet every 150 ms in the background: healthy instances per role, and double runs. */
class Sampler {
  readonly minHealthy = new Map<string, number>();
  readonly timeline: string[] = [];
  readonly doubleRuns: string[] = [];
  private stopped = false;
  private loop?: Promise<void>;

  constructor(private readonly fleet: Fleet) {}

  start(): this {
    this.loop = (async () => {
      while (!this.stopped) {
        try {
          const items = await this.fleet.assignments();
          const line: string[] = [];
          for (const role of REPLICATED) {
            const n = items.filter((a) => a.role === role && healthy(a)).length;
            this.minHealthy.set(role, Math.min(this.minHealthy.get(role) ?? n, n));
            line.push(`${role} ${n}/3`);
          }
          const t = new Date().toISOString().slice(11, 23);
          if (this.timeline.at(-1)?.slice(13) !== line.join(' · '))
            this.timeline.push(`${t} ${line.join(' · ')}`);
        } catch {}
        for (const [id, nodes] of this.fleet.running())
          if (nodes.length > 1) this.doubleRuns.push(`${id} runs on ${nodes.join(' and ')}`);
        await new Promise((r) => setTimeout(r, 150));
      }
    })();
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }
}

describe('control-plane maintenance: drain respects a disruption budget, remove refuses a live host (real agents, etcd, haproxy)', () => {
  let fleet: Fleet;
  let used: string[] = [];
  let spares: string[] = [];
  const cps = ['cp-1', 'cp-2', 'cp-3', 'cp-4', 'cp-5'];

  beforeAll(async () => {
    fleet = await Fleet.start({
      cluster: 'cpm',
      subnet: '127.0.114',
      nodes: [{ id: 'lb', pool: 'lb' }, ...cps.map((id) => ({ id, pool: 'control-plane' }))],
    });
    await fleet.applyTopology(TOPOLOGY);
    await fleet.converged(90_000);
    const etcd = (await fleet.assignments()).filter((a) => a.role === 'etcd').map((a) => a.nodeId);
    used = cps.filter((c) => etcd.includes(c));
    spares = cps.filter((c) => !etcd.includes(c));
    expect(used).toHaveLength(3);
  }, 150_000);

  afterAll(() => fleet?.close());

  it('draining two control-plane hosts at once: one instance of each role at a time, never below replicas-1 healthy; drain --wait returns when the replacements are healthy', async () => {
    const sampler = new Sampler(fleet).start();
    onTestFailed(() => {
      process.stderr.write(`\n${sampler.timeline.join('\n')}\n${fleet.logs()}\n`);
    });
    const [a, b] = used as [string, string];
    const mark = fleet.mark();
    expect((await fleet.cli(['drain', a])).code).toBe(0);
    expect((await fleet.cli(['drain', b])).code).toBe(0);
    const t0 = Date.now();
    const wa = await fleet.cli(['drain', a, '--wait', '--timeout', '120s']);
    expect(wa.code, wa.stderr).toBe(0);
    expect(wa.stderr).toMatch(new RegExp(`node ${a} to drain: done`));
    const wb = await fleet.cli(['drain', b, '--wait', '--timeout', '120s']);
    expect(wb.code, wb.stderr).toBe(0);
    const took = Date.now() - t0;
    await sampler.stop();

    // both hosts are empty, their agents run nothing, and every replacement is healthy
    const after = await fleet.assignments();
    for (const n of [a, b]) {
      expect(after.filter((x) => x.nodeId === n)).toEqual([]);
      expect(fleet.roles(n)).toEqual([]);
    }
    for (const role of REPLICATED) {
      const list = after.filter((x) => x.role === role);
      expect(list, role).toHaveLength(3);
      expect(list.every(healthy), `${role}: ${JSON.stringify(list)}`).toBe(true);
      expect(new Set(list.map((x) => x.nodeId)).size).toBe(3);
    }
    // the budget: no replicated role ever dropped below replicas-1 = 2 healthy
    for (const role of REPLICATED)
      expect(sampler.minHealthy.get(role), `${role}\n${sampler.timeline.join('\n')}`).toBeGreaterThanOrEqual(
        2,
      );
    // and it did go one at a time: the second instance of a role waited for the first's replacement
    const held = fleet
      .since(mark)
      .filter((e) => e.kind === 'repair.held' && /one .* at a time/.test(e.message));
    expect(held.length).toBeGreaterThan(0);
    // a move off a live node starts the replacement while the old copy stops (make before break,
    // seconds at most); once the drain is done every instance runs on exactly one host
    for (const [id, nodes] of fleet.running()) expect(nodes, id).toHaveLength(1);
    process.stdout.write(
      `\nFIGURES (control-plane maintenance): two control-plane hosts drained in ${(took / 1000).toFixed(1)}s, min healthy ${JSON.stringify(Object.fromEntries(sampler.minHealthy))}\n`,
    );
  }, 240_000);

  it('remove: a drained host goes without --force; a live host running roles is refused (exit 1, DROVER_ERR_NODE_LIVE); --force fences it first, so nothing ever runs twice', async () => {
    const sampler = new Sampler(fleet).start();
    onTestFailed(() => {
      process.stderr.write(`\n${sampler.timeline.join('\n')}\n${fleet.logs()}\n`);
    });
    const [a, b, c] = used as [string, string, string];
    // a drained, empty host: removed as it is
    const ra = await fleet.cli(['remove', a]);
    expect(ra.code, ra.stderr).toBe(0);
    // b becomes a free spare again
    expect((await fleet.cli(['uncordon', b])).code).toBe(0);
    // c still runs etcd, an API server, a scheduler and a controller manager: refused, nothing changes
    const before = await fleet.assignments();
    const onC = before
      .filter((x) => x.nodeId === c)
      .map((x) => x.instanceId)
      .sort();
    expect(onC.length).toBeGreaterThanOrEqual(3);
    const refused = await fleet.cli(['remove', c]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/DROVER_ERR_NODE_LIVE|not removing node .* heartbeating/);
    expect(refused.stderr).toMatch(new RegExp(`drover drain ${c} --wait`));
    expect(refused.stderr).toMatch(/--force/);
    expect(
      (await fleet.assignments())
        .filter((x) => x.nodeId === c)
        .map((x) => x.instanceId)
        .sort(),
    ).toEqual(onC);
    expect(fleet.roles(c).length).toBe(onC.length);

    // --force: its agent stops its roles first, then they are placed elsewhere
    const mark = fleet.mark();
    const forced = await fleet.cli(['remove', c, '--force', '--timeout', '30s']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stdout).toMatch(/after its agent stopped its instances/);
    // by the time the removal returned, c ran nothing any more (its agent still runs)
    expect(fleet.roles(c)).toEqual([]);
    expect(fleet.agentPid(c)).toBeDefined();
    await fleet.converged(120_000);
    await sampler.stop();
    const after = await fleet.assignments();
    for (const id of onC) expect(after.find((x) => x.instanceId === id)?.nodeId, id).not.toBe(c);
    expect(sampler.doubleRuns).toEqual([]);
    expect(fleet.since(mark).find((e) => e.kind === 'node.removed')?.message).toMatch(/fenced first/);
    const ids = (await fleet.api<{ items: Array<{ id: string }> }>('GET', '/v1/nodes')).items.map(
      (n) => n.id,
    );
    expect(ids).not.toContain(a);
    expect(ids).not.toContain(c);
    expect(spares.every((s) => ids.includes(s))).toBe(true);
  }, 240_000);

  it('a drain that cannot finish fails with the reason: the load balancer is the last healthy instance of its role (exit 1, the node stays Draining, nothing moved)', async () => {
    onTestFailed(() => {
      process.stderr.write(`\n${fleet.logs()}\n`);
    });
    const d = await fleet.cli(['drain', 'lb', '--wait', '--timeout', '60s']);
    expect(d.code, d.stderr).toBe(1);
    expect(d.stderr).toMatch(
      /the drain of lb cannot finish:\n\s+load-balancer#0: load-balancer#0 is the last healthy load-balancer/,
    );
    expect(d.stderr).toMatch(/drover uncordon lb/);
    const lb = (await fleet.assignments()).find((a) => a.role === 'load-balancer')!;
    expect(lb.nodeId).toBe('lb');
    expect(healthy(lb)).toBe(true);
    const st = await fleet.api<{ blocked: boolean; items: Array<{ instanceId: string; state: string }> }>(
      'GET',
      '/v1/nodes/lb/drain',
    );
    expect(st).toMatchObject({ blocked: true, items: [{ instanceId: 'load-balancer#0', state: 'blocked' }] });
    expect((await fleet.cli(['uncordon', 'lb'])).code).toBe(0);
  }, 120_000);
});
