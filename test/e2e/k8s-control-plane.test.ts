import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { K8S_PINS } from '../../lib/k8s-bins.js';
import {
  downFailoverLab,
  dumpLabLogsOnFailure,
  expectNothingRunsTwice,
  FAILURE_BUDGET_MS,
} from '../helpers/failover-lab.js';
import {
  apiReadyz,
  deploymentRoundTrip,
  holderHost,
  type K8sLab,
  killControlPlaneHost,
  LEASES,
  placedControlPlane,
  stopApiServer,
  stopLeaders,
  upK8sLab,
} from '../helpers/k8s-lab.js';
import {
  acquireLabLock,
  DIST,
  etcdHealthy,
  etcdUrl,
  labCliEnv,
  labDroverSync,
  labLeftovers,
  labOk,
  readState,
} from '../helpers/lab-e2e.js';
import { tempDir, waitFor } from '../helpers/proc.js';

/**
 * Seed 003's failover demo (examples/README.md) on the REAL Kubernetes control plane: etcd ×3,
 * kube-apiserver ×3, kube-scheduler ×3 and kube-controller-manager ×3 from the pinned build
 * (scripts/k8s-binaries.sh), behind real haproxy; the workers' kubelets are kwok nodes
 * (simulated, kwok) and kube-proxy the stand-in. Without the binaries every test fails with
 * requireK8sBinaries()'s message; none is skipped.
 *
 * Driven as a user drives it: `drover lab …`, `drover kubeconfig admin`, the real kubectl. A
 * background client of the load balancer authenticates with the admin certificate and sends
 * `GET /readyz` every 100 ms on a new connection. The shortened timings of failover.test.ts
 * (heartbeat 1s, Unreachable 4s, reassign 2s, etcd reassign 4s). Each test prints its figure;
 * none asserts a time except the failure budget of failover.test.ts, applied here to the longest
 * run of failed requests ("never lost the cluster"): haproxy's check is a TCP connect, so a
 * starting API server gets requests before it is ready and answers some /readyz with HTTP 500,
 * single failures whose count grows with the machine's load (the figures print it). The shared
 * code (also used by bench/failover.bench.ts, which prints the same figures) is
 * test/helpers/k8s-lab.ts.
 */

const figure = (figures: string[], line: string) => {
  figures.push(line);
  console.log(`figure: ${line}`);
};
const sec = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

describe('seed 003 on the real Kubernetes control plane (lab on loopback)', () => {
  let dir = '';
  let k: K8sLab;
  let release: () => void = () => {};
  const figures: string[] = [];

  /** why the lab is not there: each test fails with it (a failing beforeAll would skip them) */
  let setupError: unknown;
  /** first thing in every test: the lab's logs on failure, and the setup's error if it failed */
  const start = () => {
    dumpLabLogsOnFailure(dir);
    if (setupError) throw setupError;
  };

  beforeAll(async () => {
    release = await acquireLabLock();
    dir = tempDir('k8s-e2e');
    try {
      k = await upK8sLab(dir, { subnet: '127.0.86', figures });
    } catch (err) {
      setupError = err;
    }
  }, 300_000);

  afterAll(async () => {
    await downFailoverLab({ dir, client: k?.client, figures, kind: 'real Kubernetes, loopback', release });
  }, 90_000);

  it('converges with the real API servers, schedulers and controller-managers; kwok workers', async () => {
    start();
    const roles = Object.fromEntries((await k.api.roles()).map((r) => [r.name, r]));
    for (const r of Object.values(roles))
      expect(r.status, `${r.name}: ${r.reasons.join('; ')}`).toBe('Healthy');
    for (const name of ['etcd', 'kube-apiserver', 'kube-scheduler', 'kube-controller-manager']) {
      expect(roles[name]?.healthy, name).toBe(3);
      expect(roles[name]?.simulated, name).toBe(0);
      for (const i of roles[name]!.instances) expect(i.simulated, i.id).toBe(false);
    }
    expect(roles.kubelet?.instances.length).toBe(2);
    for (const i of roles.kubelet!.instances) {
      expect(i.simulated, i.id).toBe(true);
      expect(i.simulator, i.id).toBe('kwok');
    }
    expect(readState(dir).k8s?.real['kube-apiserver']).toBe(k.bins.found['kube-apiserver']);
    // the real API servers read and write through etcd over mutual TLS: the members serve https
    // only, with a certificate required (the API server's apiserver-etcd-client)
    const etcdHosts = roles.etcd!.instances.map(
      (i) => k.state.nodes.find((n) => n.name === i.nodeId)!.address,
    );
    expect(await etcdHealthy(k.state, etcdHosts.map(etcdUrl))).toBe(3);
    for (const h of etcdHosts) expect(await plainHttpAnswers(`http://${h}:2379/version`)).toBe(false);

    const version = JSON.parse(await k.kubectl.run(['version', '-o', 'json'])) as {
      serverVersion?: { gitVersion?: string };
    };
    expect(version.serverVersion?.gitVersion).toBe(K8S_PINS.kubernetes);
    expect(k.admin.server).toBe(`https://${k.state.nodes.find((n) => n.pool === 'lb')!.address}:6443`);
    expect((await k.kubectl.run(['get', '--raw', '/readyz'])).trim()).toBe('ok');
    const nodes = (
      await k.kubectl.json<{ items: Array<{ metadata: { name: string } }> }>(['get', 'nodes'])
    ).items
      .map((n) => n.metadata.name)
      .sort();
    expect(nodes).toEqual(['worker-1', 'worker-2']);
    const leases = await k.kubectl.leaseHolders();
    for (const l of LEASES)
      expect(placedControlPlane(k), `${l}: ${leases[l]}`).toContain(holderHost(leases[l]));
    expect(k.spare).not.toBe('');
    // the background client (admin certificate, CA-checked) gets `ok` through the load balancer
    await waitFor('the load balancer to answer /readyz', () => k.client.samples.some((x) => x.ok), {
      timeoutMs: 10_000,
    });
    // least privilege: the API server's kubelet client is bound to system:kubelet-api-admin, not
    // system:masters (its certificate carries no group): it may use the kubelet API, nothing else
    await waitFor(
      'the kubelet-API binding applied',
      async () =>
        (
          await k.kubectl
            .run(['get', 'clusterrolebinding', 'drover:kube-apiserver-kubelet-client', '-o', 'name'])
            .catch(() => '')
        ).trim() !== '',
      { timeoutMs: 30_000 },
    );
    // `kubectl auth can-i` prints yes (exit 0) or no (exit 1, nothing on stderr)
    const can = (verb: string, what: string) =>
      k.kubectl.run(['auth', 'can-i', verb, what, '--as', 'kube-apiserver-kubelet-client']).then(
        (out) => out.trim(),
        (e: Error) => (/: Command failed:/.test(e.message) ? 'no' : e.message),
      );
    expect(await can('get', 'nodes/proxy')).toBe('yes');
    expect(await can('get', 'secrets')).toBe('no');
    expect(await can('create', 'deployments')).toBe('no');
    figure(
      figures,
      `converged: ${K8S_PINS.kubernetes} real (kube-apiserver, kube-scheduler, kube-controller-manager, etcd ${K8S_PINS.etcd}); leaders: scheduler ${holderHost(leases['kube-scheduler'])}, controller-manager ${holderHost(leases['kube-controller-manager'])}`,
    );
  });

  it('stop-role kube-apiserver on the first control-plane host: the LB keeps answering, the leaders keep their Leases', async () => {
    start();
    const r = await stopApiServer(k);
    expect(r.host).toBe(placedControlPlane(k)[0]);
    expect(r.stdout).toContain(r.instanceId);
    expect(r.restarts.after).toBeGreaterThan(r.restarts.before);
    expect(r.leaseChanges).toEqual([]);
    expect(r.leasesAfter).toEqual(r.leasesBefore);
    figure(
      figures,
      `stop-role ${r.host} kube-apiserver: ready again after ${sec(r.readyAfterMs)}; LB ${r.lb.failed} of ${r.lb.requests} requests failed, longest gap ${r.lb.longestGapMs} ms (${r.lb.summary}); Leases kept: scheduler ${holderHost(r.leasesAfter['kube-scheduler'])}, controller-manager ${holderHost(r.leasesAfter['kube-controller-manager'])}`,
    );
    expect(r.lb.longestGapMs, r.lb.summary).toBeLessThanOrEqual(FAILURE_BUDGET_MS);
  }, 180_000);

  it('stop-role on the leaders: the scheduler and controller-manager Leases move to a new holder', async () => {
    start();
    const moves = await stopLeaders(k);
    for (const m of moves) {
      expect(m.toIdentity, m.lease).not.toBe(m.fromIdentity);
      expect(placedControlPlane(k), `${m.lease} now ${m.toIdentity}`).toContain(m.toHost);
      figure(
        figures,
        `stop-role ${m.fromHost} ${m.lease}: Lease moved after ${sec(m.movedAfterMs)} to ${m.toHost}${m.toHost === m.fromHost ? ' (the restarted process, new identity)' : ''}`,
      );
    }
    const now = await k.kubectl.leaseHolders();
    for (const m of moves) expect(now[m.lease], m.lease).not.toBe(m.fromIdentity);
  }, 180_000);

  it('a Deployment: the real scheduler puts its pods on the kwok workers, Running; deleted, they are gone', async () => {
    start();
    const d = await deploymentRoundTrip(k);
    expect(d.pods).toHaveLength(3);
    for (const p of d.pods) {
      expect(d.workers, `${p.name} on ${p.node}`).toContain(p.node);
      expect(p.phase, p.name).toBe('Running');
    }
    expect(d.podsAfterDelete).toBe(0);
    figure(
      figures,
      `Deployment of 3: Running after ${sec(d.runningAfterMs)} on ${[...new Set(d.pods.map((p) => p.node))].sort().join(', ')}; gone ${sec(d.goneAfterMs)} after delete`,
    );
  }, 180_000);

  it('an etcd snapshot through the CLI: from a healthy member over mTLS, exported, checked, valid for etcdctl', async () => {
    start();
    const rec = JSON.parse(labDroverSync(dir, 'etcd', 'snapshot', 'save', '-o', 'json')) as {
      id: string;
      revision: number;
      size: number;
      sha256: string;
      endpoint: string;
    };
    expect(rec.endpoint).toMatch(/^https:\/\/127\.0\.86\.\d+:2379$/);
    expect(labDroverSync(dir, 'etcd', 'snapshot', 'list')).toContain(rec.id);
    const file = join(dir, 'etcd-snapshot.db');
    labDroverSync(dir, 'etcd', 'snapshot', 'get', rec.id, '-f', file);
    expect(createHash('sha256').update(readFileSync(file)).digest('hex')).toBe(rec.sha256);
    // etcdutl from the pinned build (etcd 3.5+), else etcdctl (3.4)
    const tool = k.bins.found.etcdutl ?? k.bins.found.etcdctl ?? 'etcdctl';
    const st = execFileSync(tool, ['snapshot', 'status', file, '-w', 'json'], {
      env: { ...process.env, ETCDCTL_API: '3' },
      encoding: 'utf8',
    });
    const status = JSON.parse(st) as { revision: number; totalKey: number };
    expect(status.revision).toBe(rec.revision);
    // the Kubernetes objects are in it (namespaces, RBAC, the leases)
    expect(status.totalKey).toBeGreaterThan(50);
    figure(figures, `etcd snapshot: ${rec.size} bytes, ${status.totalKey} keys at revision ${rec.revision}`);

    // a cluster backup (snapshot, topology, PKI, signing key) rebuilds an empty coordinator data dir
    const backup = join(dir, 'backup.json');
    labDroverSync(dir, 'backup', '-f', backup);
    const fresh = join(dir, 'restored-coordinator');
    const out = execFileSync(
      process.execPath,
      [
        join(DIST, 'drover-coordinator.mjs'),
        'restore-backup',
        backup,
        '--config',
        '/dev/null',
        '--data-dir',
        fresh,
      ],
      { encoding: 'utf8' },
    );
    expect(out).toMatch(/^restored the backup of cluster \S+ /);
    const lab = readState(dir).coordinator.dataDir;
    for (const f of ['pki/ca.crt', 'pki/ca.key', 'pki/etcd/ca.key', 'pki/sa.key', 'plan-signing-key.pem'])
      expect(readFileSync(join(fresh, f), 'utf8'), f).toBe(readFileSync(join(lab, f), 'utf8'));
  }, 60_000);

  it('kill-host a control-plane host: its API server, scheduler and controller-manager move to the spare, etcd replaces the member', async () => {
    start();
    const r = await killControlPlaneHost(k);
    expect(r.stdout).toMatch(/killed \d+ processes/);
    for (const role of ['etcd', 'kube-apiserver', 'kube-scheduler', 'kube-controller-manager'])
      expect(
        r.victimInstances.some((id) => id.startsWith(`${role}#`)),
        `${r.victim} ran ${role}`,
      ).toBe(true);
    for (const id of r.victimInstances) expect(r.running.get(id), id).toEqual([r.spare]);
    expect(r.spareReadyz).toBe(true);
    const spareAddress = k.state.nodes.find((n) => n.name === r.spare)!.address;
    expect(await apiReadyz(spareAddress, k.admin)).toBe(true);
    expect(r.apiHosts).toContain(spareAddress);
    expect(r.etcd.peers).toHaveLength(3);
    expect(r.etcd.peers).toContain(r.etcd.expectPeer);
    expect(r.etcd.peers).not.toContain(r.etcd.deadPeer);
    expect(r.etcd.healthy).toBe(3);
    expect(r.etcd.value).toBe('written-before-the-kill');
    for (const kind of [
      'node.unreachable',
      'repair.reassign',
      'role.moved',
      'etcd.member-removed',
      'etcd.member-added',
    ])
      expect(r.eventKinds, kind).toContain(kind);
    for (const l of LEASES) expect(holderHost(r.leasesAfter[l]), l).not.toBe(r.victim);
    await expectNothingRunsTwice(k.api, k.state);
    // the cluster still works: kubectl through the load balancer, after the move. The etcd
    // member change re-renders every API server's --etcd-servers, so they restart one at a time
    // after the move; haproxy's check is a TCP connect (see the header), so one answer may come
    // from one still starting: asked until an answer is ok
    await waitFor(
      'kubectl get --raw /readyz through the load balancer',
      async () => (await k.kubectl.run(['get', '--raw', '/readyz']).catch(() => '')).trim() === 'ok',
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
    figure(
      figures,
      `kill-host ${r.victim}: 3/3 API servers ready after ${sec(r.allReadyAfterMs)}, ${r.victimInstances.length} instances healthy on ${r.spare} after ${sec(r.repairedAfterMs)}; LB ${r.lb.failed} of ${r.lb.requests} requests failed, longest gap ${r.lb.longestGapMs} ms (${r.lb.summary}); leaders now scheduler ${holderHost(r.leasesAfter['kube-scheduler'])}, controller-manager ${holderHost(r.leasesAfter['kube-controller-manager'])}`,
    );
    expect(r.lb.longestGapMs, r.lb.summary).toBeLessThanOrEqual(FAILURE_BUDGET_MS);
  }, 300_000);

  it('etcd restore on the real control plane: the API servers serve the snapshot; an object made after it is gone', async () => {
    start();
    await k.kubectl.run(['create', 'configmap', 'before-snapshot', '--from-literal=k=v']);
    const rec = JSON.parse(labDroverSync(dir, 'etcd', 'snapshot', 'save', '-o', 'json')) as { id: string };
    await k.kubectl.run(['create', 'configmap', 'after-snapshot', '--from-literal=k=v']);
    // quorum holds: refused, nothing changed; forced, every member is rebuilt from the snapshot
    expect(() => labDroverSync(dir, 'etcd', 'restore', '--snapshot', rec.id, '--yes')).toThrow(/has quorum/);
    const t0 = Date.now();
    const out = execFileSync(
      process.execPath,
      [
        join(DIST, 'drover.mjs'),
        'etcd',
        'restore',
        '--snapshot',
        rec.id,
        '--yes',
        '--force',
        '--wait',
        '--timeout',
        '4m',
      ],
      { env: labCliEnv(dir), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const restoredMs = Date.now() - t0;
    expect(out).toMatch(/started/);
    const state = readState(dir);
    // asked again if a kept-alive connection went stale during the restore's wait
    const placed = await waitFor('the assignments', () => k.api.assignments().catch(() => undefined), {
      timeoutMs: 20_000,
      intervalMs: 1000,
    });
    const members = placed
      .filter((a) => a.role === 'etcd')
      .map((a) => etcdUrl(state.nodes.find((n) => n.name === a.nodeId)!.address));
    expect(members).toHaveLength(3);
    await waitFor('3 healthy etcd members', async () => (await etcdHealthy(state, members)) === 3, {
      timeoutMs: 60_000,
      intervalMs: 1000,
    });
    // the API servers were re-pointed at the restored members: the object from before is there,
    // the one from after the snapshot is not
    await waitFor(
      'kubectl get --raw /readyz through the load balancer',
      async () => (await k.kubectl.run(['get', '--raw', '/readyz']).catch(() => '')).trim() === 'ok',
      { timeoutMs: 90_000, intervalMs: 1000 },
    );
    await waitFor(
      'the ConfigMap from before the snapshot',
      async () =>
        (
          await k.kubectl.run(['get', 'configmap', 'before-snapshot', '-o', 'name']).catch(() => '')
        ).trim() === 'configmap/before-snapshot',
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
    await expect(k.kubectl.run(['get', 'configmap', 'after-snapshot'])).rejects.toThrow(/NotFound|not found/);
    const done = JSON.parse(labDroverSync(dir, 'etcd', 'restore', 'status', '-o', 'json')) as Array<{
      phase: string;
    }>;
    expect(done[0]?.phase).toBe('complete');
    figure(
      figures,
      `etcd restore (forced, real API servers): 3/3 members back from the snapshot in ${sec(restoredMs)}`,
    );
  }, 300_000);

  it('lab down leaves no process behind', async () => {
    start();
    await k.client.stop();
    const s = readState(dir);
    const r = await labOk(dir, ['down']);
    expect(r.stdout).toMatch(/is down: \d+ processes stopped/);
    expect(await labLeftovers(s)).toEqual([]);
  }, 90_000);
});

/** Whether a plain-HTTP GET gets a 2xx answer (etcd over TLS must not give one). */
function plainHttpAnswers(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const r = request(url, { timeout: 2000 }, (res) => {
      res.resume();
      resolve((res.statusCode ?? 500) < 300);
    });
    r.on('timeout', () => r.destroy(new Error('timeout')));
    r.on('error', () => resolve(false));
    r.end();
  });
}
