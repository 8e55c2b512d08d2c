import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { type AssignmentView, Fleet, repairNodes, repairTopology } from '../helpers/fleet.js';
import type { LbClient } from '../helpers/lab-client.js';
import { waitFor } from '../helpers/proc.js';

/**
 * Host death and return, with real processes: a real nats-server, the coordinator, five
 * `drover-agent` processes on 127.0.71.2-6, real etcd and real haproxy; the API servers are the
 * lab stand-in (it serves https /livez and /version and checks etcd).
 *
 * Short timings (the defaults are 2s / 10s / 5s): heartbeat 500ms, Unreachable after 2s,
 * reassign after 2s. A background client opens a new TLS connection through the load balancer
 * every 100 ms; failures × 100 ms is the service gap a client saw.
 */

const TOPOLOGY = repairTopology('rh');

const FAILURE_BUDGET_MS = 2000;

describe('repair: host death and return (real agents, etcd, haproxy; heartbeat 500ms, unreachable 2s, reassign 2s)', () => {
  let fleet: Fleet;
  let client: LbClient;
  let victim = '';
  let spare = '';
  let moved: AssignmentView[] = [];
  const figures: string[] = [];

  beforeAll(async () => {
    fleet = await Fleet.start({
      subnet: '127.0.71',
      cluster: 'rh',
      nodes: repairNodes(),
    });
    await fleet.applyTopology(TOPOLOGY);
    await fleet.converged(60_000);
    client = fleet.lbClient('lb');
    await waitFor('the load balancer to answer', () => client.samples.some((s) => s.ok));
  }, 120_000);

  afterAll(() => {
    process.stdout.write(
      `\nFIGURES (repair-host, 2-core CI, shortened timings):\n  ${figures.join('\n  ')}\n`,
    );
  });

  it('host death: the dead host’s API server comes back healthy on the spare, haproxy’s backends follow, clients see ≤ 2 s of failures', async () => {
    onTestFailed(() => {
      process.stderr.write(`\n${fleet.logs()}\n`);
    });
    const before = await fleet.assignments();
    const apis = before.filter((a) => a.role === 'kube-apiserver');
    expect(apis).toHaveLength(3);
    const cps = ['cp-1', 'cp-2', 'cp-3', 'cp-4'];
    spare = cps.find((c) => !apis.some((a) => a.nodeId === c))!;
    victim = apis[0]!.nodeId;
    moved = before.filter((a) => a.nodeId === victim);
    expect(fleet.haproxyBackends('lb')).toEqual(apis.map((a) => fleet.node(a.nodeId).address).sort());
    const lbMaster = fleet.roles('lb').find((r) => r.role === 'load-balancer')!.pid;
    const workersBefore = childPids(lbMaster);

    const t0 = Date.now();
    const seq = fleet.lastSeq;
    const killed = await fleet.kill(victim);
    expect(killed).toBeGreaterThanOrEqual(2); // the agent and its API server at least
    expect(fleet.roles(victim)).toEqual([]);

    for (const a of moved) {
      const e = await fleet.waitEvent(
        `${a.instanceId} to move`,
        (e) => e.kind === 'role.moved' && e.instanceId === a.instanceId && e.seq > seq,
        30_000,
      );
      expect(e.nodeId).toBe(spare);
    }
    const tMoved = Date.now();
    await waitFor(
      'the moved instances healthy on the spare',
      async () => {
        const now = await fleet.assignments();
        return moved.every((m) => {
          const a = now.find((x) => x.instanceId === m.instanceId);
          return a?.nodeId === spare && a.epoch > m.epoch && a.phase === 'Healthy';
        });
      },
      { timeoutMs: 40_000, intervalMs: 100 },
    );
    const tHealthy = Date.now();
    const expected = [...apis.filter((a) => a.nodeId !== victim).map((a) => a.nodeId), spare]
      .map((n) => fleet.node(n).address)
      .sort();
    await waitFor(
      'haproxy.cfg to list the spare instead of the dead host',
      () => JSON.stringify(fleet.haproxyBackends('lb')) === JSON.stringify(expected),
    );
    // Seamless reload, not a restart: the haproxy master kept its pid and started new workers.
    await waitFor('a new haproxy worker', () =>
      childPids(lbMaster).some((p) => !workersBefore.includes(p)),
    ).catch((err: Error) => {
      throw new Error(
        `${err.message}: workers before ${workersBefore}, now ${childPids(lbMaster)}; lb agent: ${fleet.tail(fleet.node('lb').log, 8)}`,
      );
    });
    expect(fleet.roles('lb').find((r) => r.role === 'load-balancer')!.pid).toBe(lbMaster);
    // the spare really serves
    for (const m of moved) expect(fleet.running().get(m.instanceId)).toEqual([spare]);

    // a few more seconds of traffic on the new backend set
    await new Promise((r) => setTimeout(r, 3000));
    const failedMs = client.failedMs(t0);
    figures.push(
      `host death: moved ${((tMoved - t0) / 1000).toFixed(1)}s after the kill, healthy on the spare after ${((tHealthy - t0) / 1000).toFixed(1)}s (API server probe initialDelay 10s)`,
      `LB client during host death: ${client.summary(t0)}`,
    );
    expect(client.between(t0).filter((s) => s.ok).length).toBeGreaterThan(50);
    expect(failedMs, client.summary(t0)).toBeLessThanOrEqual(FAILURE_BUDGET_MS);

    // The event log tells the story: unreachable → reassign → moved.
    const kinds = fleet.events
      .filter((e) => e.seq > seq && (e.nodeId === victim || moved.some((m) => m.instanceId === e.instanceId)))
      .map((e) => e.kind);
    expect(kinds).toEqual(expect.arrayContaining(['node.unreachable', 'repair.reassign', 'role.moved']));
    expect(kinds.indexOf('node.unreachable')).toBeLessThan(kinds.indexOf('repair.reassign'));
  }, 90_000);

  it('the dead host returns: it stops the moved instances, nothing moves back, each instance runs on one host', async () => {
    onTestFailed(() => {
      process.stderr.write(`\n${fleet.logs()}\n`);
    });
    expect(victim).not.toBe('');
    const before = await fleet.assignments();
    const seq = fleet.lastSeq;
    const t0 = Date.now();
    fleet.revive(victim);
    // Watch for duplicates while the host comes back: the agent starts nothing from its saved plan
    // while a fresh plan is on its way (it would hold the moved instance), so nothing runs twice.
    let dupSince: number | undefined;
    let dupMs = 0;
    const watchDup = () => {
      const dup = [...fleet.running().values()].some((nodes) => nodes.length > 1);
      if (dup && dupSince === undefined) dupSince = Date.now();
      if (!dup && dupSince !== undefined) {
        dupMs += Date.now() - dupSince;
        dupSince = undefined;
      }
    };
    const poller = setInterval(watchDup, 25);
    try {
      await waitFor(
        `${victim} Ready again`,
        async () => (await fleet.api<{ state: string }>('GET', `/v1/nodes/${victim}`)).state === 'Ready',
        { timeoutMs: 30_000, intervalMs: 50 },
      );
      await waitFor(
        'every instance on exactly one host, the returning host running none of the moved ones',
        () => {
          const run = fleet.running();
          return (
            [...run.values()].every((nodes) => nodes.length === 1) &&
            moved.every((m) => JSON.stringify(run.get(m.instanceId)) === JSON.stringify([spare])) &&
            fleet.roles(victim).length === 0
          );
        },
        { timeoutMs: 30_000, intervalMs: 50 },
      );
    } finally {
      clearInterval(poller);
      watchDup();
    }
    const tFenced = Date.now();
    expect(dupMs, 'an instance ran on two hosts at once').toBe(0);
    await fleet.converged(30_000);
    // Stays that way, and nothing moved back.
    await new Promise((r) => setTimeout(r, 2000));
    const run = fleet.running();
    for (const [id, nodes] of run) expect(nodes, id).toHaveLength(1);
    expect(fleet.roles(victim)).toEqual([]);
    const after = await fleet.assignments();
    expect(after.map((a) => [a.instanceId, a.nodeId, a.epoch])).toEqual(
      before.map((a) => [a.instanceId, a.nodeId, a.epoch]),
    );
    expect(fleet.events.filter((e) => e.kind === 'role.moved' && e.seq > seq)).toEqual([]);
    // the story goes on: the host is back, its stale copies stopped
    expect(fleet.events.some((e) => e.kind === 'node.recovered' && e.nodeId === victim && e.seq > seq)).toBe(
      true,
    );
    figures.push(
      `returning host: fenced ${((tFenced - t0) / 1000).toFixed(1)}s after its agent started; no instance ran twice (sampled every 25 ms)`,
      `LB client while the host returned: ${client.summary(t0)}`,
    );
    expect(client.failedMs(t0), client.summary(t0)).toBeLessThanOrEqual(FAILURE_BUDGET_MS);
  }, 60_000);
});

function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}
