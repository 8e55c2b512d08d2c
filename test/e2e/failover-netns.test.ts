import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LabApi, LabAssignment, LabState } from '../../lab/index.js';
import { leftovers, netNames, roleProcesses } from '../../lab/index.js';
import {
  downFailoverLab,
  dumpLabLogsOnFailure,
  expectNothingRunsTwice,
  expectWithinBudget,
  upFailoverLab,
  waitEtcdHealthy,
  waitHaproxyBackends,
  waitHealthyOn,
  waitNodeReady,
} from '../helpers/failover-lab.js';
import type { LbClient } from '../helpers/lab-client.js';
import {
  acquireLabLock,
  etcdPeerUrl,
  etcdPeerUrls,
  etcdUrl,
  LAB_HOOK_TIMEOUT_MS,
  lab,
  labLeftovers,
  labOk,
  readState,
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

  const dumpLogs = () => dumpLabLogsOnFailure(dir);
  const addr = (name: string) => state.nodes.find((n) => n.name === name)!.address;

  beforeAll(async () => {
    release = await acquireLabLock();
    dir = tempDir('lab-netns');
    let assignments: LabAssignment[];
    ({ state, api, client, spare, assignments } = await upFailoverLab(dir, {
      flags: ['--netns'],
      subnet: '10.87.0',
      figures,
    }));
    victim = assignments.find((a) => a.role === 'etcd')!.nodeId;
    moved = assignments
      .filter((a) => a.nodeId === victim)
      .map((a) => a.instanceId)
      .sort();
  }, LAB_HOOK_TIMEOUT_MS);

  afterAll(async () => {
    await downFailoverLab({ dir, client, figures, kind: 'netns', release });
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
    const repaired = await waitHealthyOn(api, moved, spare);
    // a real partition: the host's processes still run, but nothing reaches them
    const v = state.nodes.find((n) => n.name === victim)!;
    expect(roleProcesses(v).length).toBeGreaterThan(0);
    expect((await api.nodes()).find((n) => n.id === victim)?.state).toBe('Unreachable');
    expect(await tcpOpen(v.address, 6443, 1000)).toBe(false);
    const apiHosts = (await api.assignments())
      .filter((a) => a.role === 'kube-apiserver')
      .map((a) => addr(a.nodeId))
      .sort();
    await waitHaproxyBackends('haproxy.cfg to follow the API servers', state, apiHosts);
    const etcdHosts = (await api.assignments())
      .filter((a) => a.role === 'etcd')
      .map((a) => etcdUrl(addr(a.nodeId)));
    const peers = await etcdPeerUrls(state, etcdHosts);
    expect(peers).toContain(etcdPeerUrl(addr(spare)));
    expect(peers).not.toContain(etcdPeerUrl(addr(victim)));
    // every member answers `endpoint health` (a member restarting for a new plan may take a moment)
    await waitEtcdHealthy(state, etcdHosts);
    await expectWithinBudget(
      client,
      t0,
      figures,
      (lb) =>
        `partition ${victim}: ${moved.length} instances healthy on ${spare} ${((repaired - t0) / 1000).toFixed(1)}s after the cut; LB ${lb}`,
    );
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
    await waitNodeReady(api, victim, 45_000);
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
    await expectNothingRunsTwice(api, state);
    // `lab status` exits 0 only once every lab process runs and the fleet is converged
    let status = await lab(dir, ['status']);
    for (let i = 0; status.code !== 0 && i < 30; i++) {
      await sleep(1000);
      status = await lab(dir, ['status']);
    }
    expect(status.code, status.stdout).toBe(0);
    await expectWithinBudget(
      client,
      t0,
      figures,
      (lb) =>
        `heal ${victim}: moved instances stopped ${((fenced - t0) / 1000).toFixed(1)}s after the heal; LB ${lb}`,
      0,
    );
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
