import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import type { LabApi, LabState } from '../../lab/index.js';
import { requireK8sBinaries } from '../../lib/k8s-bins.js';
import {
  downFailoverLab,
  dumpLabLogsOnFailure,
  expectNothingRunsTwice,
  expectWithinBudget,
  FAILURE_BUDGET_MS,
  labStateReadable,
  upFailoverLab,
  waitEtcdHealthy,
  waitHaproxyBackends,
  waitHealthyOn,
  waitNodeReady,
} from '../helpers/failover-lab.js';
import type { LbClient } from '../helpers/lab-client.js';
import {
  acquireLabLock,
  etcdctl,
  etcdHealthy,
  etcdPeerUrl,
  etcdPeerUrls,
  etcdUrl,
  isHealthy,
  LAB_HOOK_TIMEOUT_MS,
  lab,
  labLeftovers,
  labOk,
  readState,
  runningInstances,
  sleep,
  watchHost,
} from '../helpers/lab-e2e.js';
import { labDroverSync } from '../helpers/lab-session.js';
import { tempDir, waitFor } from '../helpers/proc.js';

/**
 * The seed-003 failover demo of examples/README.md, run automatically on loopback addresses with
 * a real nats-server, real etcd (3 members), real haproxy and the real Kubernetes control plane
 * (v1.37.2 from scripts/k8s-binaries.sh); workers are kwok nodes, kube-proxy the stand-in. Driven through `node dist/drover.mjs lab …` exactly as the README shows.
 *
 * Timings are shortened with the lab's flags so the test stays around two minutes:
 * heartbeat 1s, Unreachable after 4s, reassign after 2s, etcd reassign after 4s (the defaults are
 * 2s / 10s / 5s / 60s). A background client sends GET /version through the load balancer every
 * 100 ms on a new connection; each disruption may cost at most 2 s worth of failed requests.
 */

describe('lab failover demo on loopback (real nats-server, etcd, haproxy)', () => {
  let dir = '';
  let state: LabState;
  let api: LabApi;
  let client: LbClient;
  let release: () => void = () => {};
  const figures: string[] = [];
  let victim = '';
  let spare = '';
  let victimInstances: string[] = [];

  const dumpLogs = () => dumpLabLogsOnFailure(dir);

  beforeAll(async () => {
    requireK8sBinaries();
    release = await acquireLabLock();
    dir = tempDir('lab-e2e');
    // a subnet of its own: a developer's lab on 127.0.0.x keeps running undisturbed
    ({ state, api, client, spare } = await upFailoverLab(dir, { subnet: '127.0.87', figures }));
  }, LAB_HOOK_TIMEOUT_MS);

  afterAll(async () => {
    await downFailoverLab({ dir, client, figures, kind: 'loopback', release });
  }, 60_000);

  it('converges: real etcd, haproxy and Kubernetes control plane; workers are kwok nodes marked simulated', async () => {
    dumpLogs();
    const roles = await api.roles();
    const by = Object.fromEntries(roles.map((r) => [r.name, r]));
    for (const r of roles) expect(r.status, `${r.name}: ${r.reasons.join('; ')}`).toBe('Healthy');
    expect(by.etcd?.healthy).toBe(3);
    expect(by.etcd?.simulated).toBe(0);
    expect(by['load-balancer']?.simulated).toBe(0);
    expect(by['kube-apiserver']?.healthy).toBe(3);
    // the real upstream binaries (scripts/k8s-binaries.sh); the test fails if they are missing
    for (const role of ['kube-apiserver', 'kube-scheduler', 'kube-controller-manager'])
      expect(by[role]?.simulated, `${role} should run the real binary`).toBe(0);
    expect(by.kubelet?.simulated).toBe(2);
    expect(by.kubelet?.instances.every((i) => i.simulator === 'kwok')).toBe(true);
    const etcdNodes = by.etcd!.instances.map((i) => state.nodes.find((n) => n.name === i.nodeId)!.address);
    expect(await etcdHealthy(state, etcdNodes.map(etcdUrl))).toBe(3);
    // the spare control-plane host runs nothing yet
    expect(spare).not.toBe('');
    await waitFor('the load balancer to answer', () => client.samples.some((s) => s.ok), {
      timeoutMs: 10_000,
    });
  });

  it('stop-role: the agent restarts the API server it lost; the load balancer keeps answering', async () => {
    dumpLogs();
    const target = (await api.assignments()).find((a) => a.role === 'kube-apiserver' && a.nodeId !== spare)!;
    const node = state.nodes.find((n) => n.name === target.nodeId)!;
    const before = runningInstances(state).get(target.instanceId);
    expect(before).toEqual([node.name]);
    const t0 = Date.now();
    const r = await labOk(dir, ['stop-role', node.name, 'kube-apiserver']);
    expect(r.stdout).toContain(target.instanceId);
    const restarted = await waitFor(
      `${target.instanceId} restarted and healthy on ${node.name}`,
      async () => {
        const a = (await api.assignments()).find((x) => x.instanceId === target.instanceId);
        return a &&
          a.nodeId === node.name &&
          isHealthy(a) &&
          (await api.roles())
            .find((x) => x.name === 'kube-apiserver')
            ?.instances.find((i) => i.id === target.instanceId)?.restarts
          ? Date.now()
          : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    await sleep(2000);
    const failed = client.failedMs(t0, Date.now());
    figures.push(
      `stop-role ${target.instanceId}: healthy again after ${((restarted - t0) / 1000).toFixed(1)}s; LB ${client.summary(t0, Date.now())}`,
    );
    expect(runningInstances(state).get(target.instanceId)).toEqual([node.name]);
    expect(failed, client.summary(t0, Date.now())).toBeLessThanOrEqual(FAILURE_BUDGET_MS);
  }, 90_000);

  it('kill-host: the roles move to the spare, haproxy follows, etcd replaces the member', async () => {
    dumpLogs();
    const before = await api.assignments();
    victim = before.find((a) => a.role === 'etcd' && a.nodeId !== spare)!.nodeId;
    victimInstances = before
      .filter((a) => a.nodeId === victim)
      .map((a) => a.instanceId)
      .sort();
    expect(victimInstances.length).toBeGreaterThanOrEqual(4);
    const addr = (name: string) => state.nodes.find((n) => n.name === name)!.address;
    const survivors = [
      ...new Set(before.filter((a) => a.role === 'etcd' && a.nodeId !== victim).map((a) => a.nodeId)),
    ];
    await etcdctl(
      state,
      survivors.map((n) => etcdUrl(addr(n))),
      ['put', 'drover-e2e', 'written-before-the-kill'],
    );

    const t0 = Date.now();
    const k = await labOk(dir, ['kill-host', victim]);
    expect(k.stdout).toMatch(/killed \d+ processes/);
    expect(runningInstances(state).size).toBe(before.length - victimInstances.length);

    const repaired = await waitHealthyOn(api, victimInstances, spare);
    // the load balancer's backends are the API servers' hosts now: the spare in, the dead host out
    const apiHosts = (await api.assignments())
      .filter((a) => a.role === 'kube-apiserver')
      .map((a) => addr(a.nodeId))
      .sort();
    expect(apiHosts).toContain(addr(spare));
    await waitHaproxyBackends('haproxy.cfg to list the moved API server', state, apiHosts);
    // etcd: the dead member was removed and the spare added, through the survivors
    const members = [...survivors, spare].map((n) => etcdUrl(addr(n)));
    const peers = await etcdPeerUrls(state, members);
    expect(peers).toContain(etcdPeerUrl(addr(spare)));
    expect(peers).not.toContain(etcdPeerUrl(addr(victim)));
    expect(peers).toHaveLength(3);
    await waitEtcdHealthy(state, members);
    expect(await etcdctl(state, members, ['get', 'drover-e2e', '--print-value-only'])).toContain(
      'written-before-the-kill',
    );
    const kinds = new Set((await api.events(500)).map((e) => e.kind));
    for (const kind of [
      'node.unreachable',
      'repair.reassign',
      'role.moved',
      'etcd.member-removed',
      'etcd.member-added',
    ])
      expect(kinds, kind).toContain(kind);

    await expectWithinBudget(
      client,
      t0,
      figures,
      (lb) =>
        `kill-host ${victim}: ${victimInstances.length} instances healthy on ${spare} ${((repaired - t0) / 1000).toFixed(1)}s after the kill; LB ${lb}`,
    );
  }, 150_000);

  it('revive: the host comes back fenced and nothing runs twice', async () => {
    dumpLogs();
    const t0 = Date.now();
    const watch = watchHost(state, victim);
    await labOk(dir, ['revive', victim]);
    await waitNodeReady(api, victim, 30_000);
    // a few heartbeats for the returning agent to apply the plan that fences it
    await sleep(4000);
    // fenced from the first moment: the returning host never starts an instance that moved away
    // (not even briefly from the plan it had persisted before it died)
    const seen = watch.stop();
    expect(
      [...seen].map(([id, at]) => `${id} ran on ${victim} ${at - t0} ms after revive`),
      'moved instances started on the revived host',
    ).toEqual([]);
    const running = await expectNothingRunsTwice(api, state);
    // its old instances live on the spare now; the revived host runs none of them
    for (const id of victimInstances) expect(running.get(id)).toEqual([spare]);
    // `lab status` exits 0 only once every lab process runs and the fleet is converged
    let status = await lab(dir, ['status']);
    for (let i = 0; status.code !== 0 && i < 30; i++) {
      await sleep(1000);
      status = await lab(dir, ['status']);
    }
    expect(status.code, status.stdout).toBe(0);
    expect(status.stdout).not.toContain('runs twice');
    await expectWithinBudget(
      client,
      t0,
      figures,
      (lb) => `revive ${victim}: fenced, nothing runs twice; LB ${lb}`,
      0,
    );
  }, 60_000);

  it('a bad flag: the real API server crash-loops with the flag error in describe node; nothing else moves', async () => {
    dumpLogs();
    const file = join(dir, 'topology.yaml');
    const original = readFileSync(file, 'utf8');
    const doc = parseYaml(original) as { roles: Record<string, { extraArgs?: string[] }> };
    doc.roles['kube-apiserver']!.extraArgs = ['--no-such-flag=drover-e2e'];
    const before = await api.assignments();
    const apis = () => api.roles().then((r) => r.find((x) => x.name === 'kube-apiserver')!.instances);
    const started = new Map((await apis()).map((i) => [i.id, i.startedAt]));
    const t0 = Date.now();
    await api.applyTopology(toYaml(doc));
    const broken = await waitFor(
      'an API server in CrashLoop with its flag error',
      async () =>
        (await apis()).find(
          (i) =>
            (i.phase === 'CrashLoop' || i.phase === 'Failed') && i.lastOutput?.includes('--no-such-flag'),
        ),
      { timeoutMs: 90_000, intervalMs: 500 },
    );
    const describe = labDroverSync(dir, 'describe', 'node', broken.nodeId!);
    expect(describe).toContain(`Last output of ${broken.id}`);
    expect(describe).toMatch(/unknown flag: --no-such-flag/);
    // the rollout stops at the broken one: the other two keep running the old flags, unrestarted
    await sleep(10_000);
    const now = await apis();
    const others = now.filter((i) => i.id !== broken.id && i.assigned);
    expect(others.length).toBe(2);
    for (const o of others) {
      expect(o.phase, `${o.id}`).toBe('Healthy');
      expect(o.startedAt, `${o.id} was restarted`).toBe(started.get(o.id));
    }
    expect(now.filter((i) => i.phase === 'CrashLoop' || i.phase === 'Failed').map((i) => i.id)).toEqual([
      broken.id,
    ]);
    // nothing was moved or fenced because of it
    const after = await api.assignments();
    expect(after.map((a) => `${a.instanceId}@${a.nodeId}/${a.epoch}`).sort()).toEqual(
      before.map((a) => `${a.instanceId}@${a.nodeId}/${a.epoch}`).sort(),
    );
    // haproxy takes the broken one out: clients of the load balancer hardly notice
    expect(client.failedMs(t0, Date.now()), client.summary(t0, Date.now())).toBeLessThanOrEqual(
      FAILURE_BUDGET_MS,
    );
    figures.push(
      `bad flag: ${broken.id} crash-looped with "${broken
        .lastOutput!.split('\n')
        .find((l) => l.includes('no-such-flag'))
        ?.slice(0, 80)}"; 2 others untouched`,
    );
    // the fix rolls out like any change
    await api.applyTopology(original);
    await waitFor(
      'every API server healthy again',
      async () => (await apis()).filter((i) => i.assigned).every((i) => i.phase === 'Healthy') || undefined,
      {
        timeoutMs: 120_000,
        intervalMs: 1000,
      },
    );
  }, 300_000);

  it('lab down leaves no process behind', async () => {
    dumpLogs();
    await client.stop();
    const s = readState(dir);
    const r = await labOk(dir, ['down']);
    expect(r.stdout).toMatch(/is down: \d+ processes stopped/);
    expect(await labLeftovers(s)).toEqual([]);
    expect(labStateReadable(dir)).toBe(false);
  }, 60_000);
});
