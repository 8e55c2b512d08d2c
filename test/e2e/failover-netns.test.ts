import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import type { LabApi, LabState } from '../../coordinator/lab/index.js';
import { leftovers, netNames, roleProcesses } from '../../coordinator/lab/index.js';
import { LbClient } from '../helpers/lab-client.js';
import {
  acquireLabLock,
  etcdHealthy,
  etcdPeerUrls,
  etcdUrl,
  haproxyBackends,
  isHealthy,
  lab,
  labApi,
  labLeftovers,
  labOk,
  logTails,
  readState,
  runningInstances,
  sleep,
} from '../helpers/lab-e2e.js';
import { hasBinary, tcpOpen, tempDir, waitFor } from '../helpers/proc.js';

/**
 * The failover demo with a real network partition: every host has its own network namespace and
 * veth on a bridge (`drover lab up --netns`), and `drover lab partition` takes the host's link
 * down, so its roles keep running but nothing reaches them and the agent cannot reach the bus.
 * Runs only as root with iproute2 (CI is root).
 *
 * Timings as in failover.test.ts: heartbeat 1s, Unreachable after 4s, reassign after 2s, etcd
 * reassign after 4s (defaults 2s / 10s / 5s / 60s).
 */

const FAILURE_BUDGET_MS = 2000;
const canRun = process.getuid?.() === 0 && hasBinary('ip');

describe.skipIf(!canRun)('lab failover demo with network namespaces and a real partition', () => {
  let dir = '';
  let state: LabState;
  let api: LabApi;
  let client: LbClient;
  let release: () => void = () => {};
  const figures: string[] = [];
  let victim = '';
  let spare = '';
  let moved: string[] = [];

  const dumpLogs = () =>
    onTestFailed(() => {
      process.stderr.write(`\n==== lab logs (${dir})\n${logTails(dir)}\n`);
    });
  const addr = (name: string) => state.nodes.find((n) => n.name === name)!.address;

  beforeAll(async () => {
    release = await acquireLabLock();
    dir = tempDir('lab-netns');
    const up = await lab(dir, [
      'up',
      '--netns',
      '--subnet',
      '10.87.0',
      '--api-port',
      '0',
      '--nats-port',
      '0',
      '--timeout',
      '150s',
      '--heartbeat-interval',
      '1s',
      '--unreachable-after',
      '4s',
      '--reassign-after',
      '2s',
      '--etcd-reassign-after',
      '4s',
    ]);
    if (up.code !== 0) {
      process.stderr.write(
        `lab up --netns failed (${up.code}):\n${up.stdout}\n${up.stderr}\n${logTails(dir)}\n`,
      );
      throw new Error(`drover lab up --netns exited ${up.code}: ${up.stderr}`);
    }
    figures.push(`lab up --netns converged in ${(up.ms / 1000).toFixed(1)}s`);
    state = readState(dir);
    api = labApi(state);
    const lb = state.nodes.find((n) => n.pool === 'lb')!;
    client = new LbClient(lb.address, 6443).start();
    const assignments = await api.assignments();
    spare =
      state.nodes.find((n) => n.pool === 'control-plane' && !assignments.some((a) => a.nodeId === n.name))
        ?.name ?? '';
    victim = assignments.find((a) => a.role === 'etcd')!.nodeId;
    moved = assignments
      .filter((a) => a.nodeId === victim)
      .map((a) => a.instanceId)
      .sort();
  }, 200_000);

  afterAll(async () => {
    await client?.stop();
    if (client) figures.push(`LB overall: ${client.summary()}`);
    process.stdout.write(`\nFIGURES (netns lab, 2-core CI, shortened timings):\n  ${figures.join('\n  ')}\n`);
    try {
      try {
        readState(dir);
        await lab(dir, ['down']);
      } catch {
        // already down
      }
    } finally {
      release();
    }
  }, 60_000);

  it('every host sits in its own namespace on the bridge; the fleet converges', async () => {
    dumpLogs();
    expect(state.mode).toBe('netns');
    for (const n of state.nodes) expect(n.netns).toMatch(/^drv-[0-9a-f]{4}-/);
    const roles = await api.roles();
    for (const r of roles) expect(r.status, `${r.name}: ${r.reasons.join('; ')}`).toBe('Healthy');
    expect(spare).not.toBe('');
    expect(moved.length).toBeGreaterThanOrEqual(4);
    await waitFor('the load balancer to answer', () => client.samples.some((s) => s.ok), {
      timeoutMs: 10_000,
    });
  });

  it('partition: the host is cut off, its roles move to the spare, the load balancer keeps answering', async () => {
    dumpLogs();
    const t0 = Date.now();
    const r = await labOk(dir, ['partition', victim]);
    expect(r.stdout).toContain('set down');
    const repaired = await waitFor(
      `${moved.join(', ')} healthy on ${spare}`,
      async () => {
        const now = await api.assignments();
        return moved.every((id) => {
          const a = now.find((x) => x.instanceId === id);
          return a && a.nodeId === spare && isHealthy(a);
        })
          ? Date.now()
          : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 250 },
    );
    // a real partition: the host's processes still run, but nothing reaches them
    const v = state.nodes.find((n) => n.name === victim)!;
    expect(roleProcesses(v).length).toBeGreaterThan(0);
    expect((await api.nodes()).find((n) => n.id === victim)?.state).toBe('Unreachable');
    expect(await tcpOpen(v.address, 6443, 1000)).toBe(false);
    const apiHosts = (await api.assignments())
      .filter((a) => a.role === 'kube-apiserver')
      .map((a) => addr(a.nodeId))
      .sort();
    await waitFor(
      'haproxy.cfg to follow the API servers',
      () => JSON.stringify(haproxyBackends(state)) === JSON.stringify(apiHosts),
      { timeoutMs: 10_000 },
    );
    const etcdHosts = (await api.assignments())
      .filter((a) => a.role === 'etcd')
      .map((a) => etcdUrl(addr(a.nodeId)));
    const peers = await etcdPeerUrls(etcdHosts);
    expect(peers).toContain(`http://${addr(spare)}:2380`);
    expect(peers).not.toContain(`http://${addr(victim)}:2380`);
    // every member answers `endpoint health` (a member restarting for a new plan may take a moment)
    await waitFor(
      'etcd endpoint health on all three members',
      async () => (await etcdHealthy(etcdHosts)) === 3,
      {
        timeoutMs: 45_000,
        intervalMs: 1000,
      },
    );
    await sleep(2000);
    const until = Date.now();
    figures.push(
      `partition ${victim}: ${moved.length} instances healthy on ${spare} ${((repaired - t0) / 1000).toFixed(1)}s after the cut; LB ${client.summary(t0, until)}`,
    );
    expect(client.failedMs(t0, until), client.summary(t0, until)).toBeLessThanOrEqual(FAILURE_BUDGET_MS);
  }, 150_000);

  it('heal: the host returns fenced, stops what moved, and nothing runs twice', async () => {
    dumpLogs();
    const v = state.nodes.find((n) => n.name === victim)!;
    const before = new Set(roleProcesses(v).map((r) => `${r.instanceId}@${r.pid}`));
    expect(before.size).toBeGreaterThan(0);
    const fresh = new Set<string>();
    const poll = setInterval(() => {
      for (const r of roleProcesses(v)) if (!before.has(`${r.instanceId}@${r.pid}`)) fresh.add(r.instanceId);
    }, 50);
    const t0 = Date.now();
    await labOk(dir, ['heal', victim]);
    await waitFor(
      `${victim} Ready again`,
      async () => (await api.nodes()).find((n) => n.id === victim)?.state === 'Ready',
      { timeoutMs: 45_000, intervalMs: 250 },
    );
    const fenced = await waitFor(
      `${victim} to stop its moved instances`,
      () =>
        roleProcesses(state.nodes.find((n) => n.name === victim)!).length === 0 ? Date.now() : undefined,
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    await sleep(2000);
    clearInterval(poll);
    // the stale copies were only stopped: the healed host started nothing that had moved away
    expect([...fresh], 'instances (re)started on the healed host').toEqual([]);
    const assignments = await api.assignments();
    const running = runningInstances(state);
    for (const a of assignments) expect(running.get(a.instanceId), a.instanceId).toEqual([a.nodeId]);
    for (const [id, hosts] of running) expect(hosts, `${id} runs on ${hosts.join(', ')}`).toHaveLength(1);
    const status = await lab(dir, ['status']);
    expect(status.code, status.stdout).toBe(0);
    const until = Date.now();
    figures.push(
      `heal ${victim}: moved instances stopped ${((fenced - t0) / 1000).toFixed(1)}s after the heal; LB ${client.summary(t0, until)}`,
    );
    expect(client.failedMs(t0, until), client.summary(t0, until)).toBeLessThanOrEqual(FAILURE_BUDGET_MS);
  }, 120_000);

  it('lab down removes every process, namespace, veth and the bridge', async () => {
    dumpLogs();
    await client.stop();
    const s = readState(dir);
    const r = await labOk(dir, ['down']);
    expect(r.stdout).toMatch(/7 network namespaces, their veths and the bridge removed/);
    expect(await labLeftovers(s)).toEqual([]);
    expect(await leftovers(netNames(s.dir))).toEqual([]);
  }, 60_000);
});
