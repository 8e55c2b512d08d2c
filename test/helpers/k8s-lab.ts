import { readFileSync } from 'node:fs';
import { type LabState, roleProcesses } from '../../lab/index.js';
import { type K8sBinLookup, requireK8sBinaries } from '../../lib/k8s-bins.js';
import { type FailoverLab, upFailoverLab, waitHaproxyBackends, waitHealthyOn } from './failover-lab-core.js';
import {
  type AdminKubeconfig,
  apiReadyz,
  holderHost,
  Kubectl,
  LEASES,
  type LeaseName,
  writeAdminKubeconfig,
} from './kubectl.js';
import { LbClient } from './lab-client.js';
import {
  etcdctl,
  etcdHealthy,
  etcdPeerUrl,
  etcdPeerUrls,
  etcdUrl,
  isHealthy,
  labOk,
  runningInstances,
  sleep,
} from './lab-e2e.js';
import { waitFor } from './wait.js';

export * from './kubectl.js';

/**
 * Seed 003's failover demo on the REAL Kubernetes control plane (etcd, kube-apiserver,
 * kube-scheduler, kube-controller-manager from the pinned build; workers are kwok nodes), shared
 * by test/e2e/k8s-control-plane.test.ts (which asserts what is correct) and
 * bench/failover.bench.ts (which prints the figures). No vitest import: the bench runs outside it.
 *
 * Everything goes through what a user has: `drover lab …`, `drover kubeconfig admin`, the real
 * kubectl with that kubeconfig, and a background client of the load balancer that authenticates
 * with the admin certificate and sends `GET /readyz` every 100 ms on a new connection.
 */

/** leader election of examples/ha.yaml: lease 20 s, renew deadline 15 s, retry 4 s */
const LEASE_DURATION_MS = 20_000;
const RETRY_PERIOD_MS = 4_000;

/** The load-balancer client's request timeout: generous, the machine has 2 shared cores. */
export const LB_TIMEOUT_MS = 2000;

export interface K8sLab extends FailoverLab {
  dir: string;
  bins: K8sBinLookup;
  admin: AdminKubeconfig;
  kubectl: Kubectl;
}

/**
 * `drover lab up` with the failover timings (see upFailoverLab) on the real binaries, which must
 * be there (requireK8sBinaries throws, naming what is missing: a test fails, it never skips). The
 * load-balancer client authenticates with the admin kubeconfig and asks `/readyz`.
 */
export async function upK8sLab(dir: string, o: { subnet: string; figures: string[] }): Promise<K8sLab> {
  const bins = requireK8sBinaries();
  let admin: AdminKubeconfig | undefined;
  const lab = await upFailoverLab(dir, {
    ...o,
    makeClient: (_s, lb) => {
      admin = writeAdminKubeconfig(dir);
      return new LbClient(lb.address, 6443, 100, LB_TIMEOUT_MS, { path: '/readyz', tls: admin });
    },
  });
  return { ...lab, dir, bins, admin: admin!, kubectl: new Kubectl(bins.found.kubectl!, admin!.path) };
}

function addressOf(s: LabState, node: string): string {
  const n = s.nodes.find((x) => x.name === node);
  if (!n) throw new Error(`the lab has no host ${node}`);
  return n.address;
}

export interface LbFigure {
  requests: number;
  failed: number;
  longestGapMs: number;
  summary: string;
}

export function lbFigure(c: LbClient, from: number, to: number): LbFigure {
  return {
    requests: c.between(from, to).length,
    failed: c.failures(from, to).length,
    longestGapMs: c.longestGapMs(from, to),
    summary: c.summary(from, to),
  };
}

export interface LeaseChange {
  lease: LeaseName;
  at: number;
  from: string;
  to: string;
}

/**
 * Reads both Leases with kubectl in a loop (one call, then `everyMs`) until `stop()`: every change
 * of holderIdentity with when it was seen. Errors (an API server briefly unreachable) are counted.
 */
export function watchLeases(
  kubectl: Kubectl,
  initial: Record<LeaseName, string>,
  everyMs = 250,
): { changes: LeaseChange[]; current: Record<LeaseName, string>; errors: number; stop: () => Promise<void> } {
  const w = { changes: [] as LeaseChange[], current: { ...initial }, errors: 0, stop: async () => {} };
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const now = await kubectl.leaseHolders();
        const at = Date.now();
        for (const l of LEASES)
          if (now[l] !== w.current[l]) {
            w.changes.push({ lease: l, at, from: w.current[l], to: now[l] });
            w.current[l] = now[l];
          }
      } catch {
        w.errors++;
      }
      if (running) await sleep(everyMs);
    }
  })();
  w.stop = async () => {
    running = false;
    await loop;
  };
  return w;
}

/** The control-plane hosts the topology placed (not the spare), by name. */
export function placedControlPlane(k: K8sLab): string[] {
  return k.state.nodes
    .filter((n) => n.pool === 'control-plane' && n.name !== k.spare)
    .map((n) => n.name)
    .sort();
}

/** Waits until every instance of the roles is assigned, healthy and running where assigned. */
export async function waitRolesHealthy(k: K8sLab, roles: string[], timeoutMs = 90_000): Promise<void> {
  await waitFor(
    `${roles.join(', ')} healthy`,
    async () => {
      const all = (await k.api.roles()).filter((r) => roles.includes(r.name));
      return (
        all.length === roles.length && all.every((r) => r.status === 'Healthy' && r.healthy === r.desired)
      );
    },
    { timeoutMs, intervalMs: 500 },
  );
}

// ---- b. one API server stops

export interface StopApiServerResult {
  host: string;
  instanceId: string;
  /** `drover lab stop-role` output */
  stdout: string;
  restarts: { before: number; after: number };
  /** from the stop until Drover saw the restarted instance healthy and it answered /readyz */
  readyAfterMs: number;
  leasesBefore: Record<LeaseName, string>;
  leasesAfter: Record<LeaseName, string>;
  /** Lease changes seen over the window (a lease duration and a retry after the stop) */
  leaseChanges: LeaseChange[];
  lb: LbFigure;
}

/**
 * `drover lab stop-role HOST kube-apiserver` (default: the first control-plane host); the agent
 * restarts it. The window for the load-balancer figure and the Leases runs until the instance is
 * ready again, and at least a lease duration and a retry period after the stop, so a leader that
 * lost its API server would have lost its Lease within it.
 */
/**
 * The Lease holders once they have stayed the same for `quietMs`: a leader that has just started
 * (a controller-manager still syncing its caches right after convergence) may still exit and
 * come back under a new identity, which is start-up, not the fault being measured.
 */
export async function steadyLeaseHolders(
  kubectl: Kubectl,
  quietMs = 10_000,
): Promise<Record<LeaseName, string>> {
  let last = await kubectl.leaseHolders();
  let since = Date.now();
  return waitFor(
    `Lease holders unchanged for ${quietMs / 1000}s`,
    async () => {
      const now = await kubectl.leaseHolders().catch(() => undefined);
      if (!now) return undefined;
      if (JSON.stringify(now) !== JSON.stringify(last)) {
        last = now;
        since = Date.now();
        return undefined;
      }
      return Date.now() - since >= quietMs ? now : undefined;
    },
    { timeoutMs: 120_000, intervalMs: 1000 },
  );
}

export async function stopApiServer(
  k: K8sLab,
  host = placedControlPlane(k)[0]!,
): Promise<StopApiServerResult> {
  const target = (await k.api.assignments()).find((a) => a.role === 'kube-apiserver' && a.nodeId === host);
  if (!target) throw new Error(`${host} runs no kube-apiserver`);
  const restartsOf = async () =>
    (await k.api.roles())
      .find((r) => r.name === 'kube-apiserver')
      ?.instances.find((i) => i.id === target.instanceId)?.restarts ?? 0;
  const leasesBefore = await steadyLeaseHolders(k.kubectl);
  const before = await restartsOf();
  const watch = watchLeases(k.kubectl, leasesBefore, 1000);
  const t0 = Date.now();
  const r = await labOk(k.dir, ['stop-role', host, 'kube-apiserver']);
  const address = addressOf(k.state, host);
  const ready = await waitFor(
    `${target.instanceId} restarted, healthy and ready on ${host}`,
    async () => {
      const a = (await k.api.assignments()).find((x) => x.instanceId === target.instanceId);
      if (!a || a.nodeId !== host || !isHealthy(a) || (await restartsOf()) <= before) return undefined;
      return (await apiReadyz(address, k.admin)) ? Date.now() : undefined;
    },
    { timeoutMs: 120_000, intervalMs: 250 },
  );
  const until = Math.max(ready + 2000, t0 + LEASE_DURATION_MS + RETRY_PERIOD_MS + 1000);
  await sleep(until - Date.now());
  await watch.stop();
  const leasesAfter = await k.kubectl.leaseHolders();
  return {
    host,
    instanceId: target.instanceId,
    stdout: r.stdout,
    restarts: { before, after: await restartsOf() },
    readyAfterMs: ready - t0,
    leasesBefore,
    leasesAfter,
    leaseChanges: watch.changes,
    lb: lbFigure(k.client, t0, until),
  };
}

// ---- c. the leaders stop

export interface LeaderMove {
  lease: LeaseName;
  fromIdentity: string;
  fromHost: string;
  toIdentity: string;
  toHost: string;
  /** from `drover lab stop-role` to the first read of a different holderIdentity */
  movedAfterMs: number;
}

/**
 * Stops the kube-scheduler and the kube-controller-manager on the host holding each Lease
 * (`drover lab stop-role`, a SIGKILL: the Lease is not released). The agent restarts the process
 * at once, but under a new identity (`HOSTNAME_<new uuid>`), so it competes like the other two
 * candidates: the Lease moves once it expires (20 s after the last renewal) to whichever
 * candidate retries first, which may be the restarted one on the same host. Measures the time
 * until holderIdentity names someone else, and where that is; then waits until both roles are
 * healthy again.
 */
export async function stopLeaders(k: K8sLab, timeoutMs = 90_000): Promise<LeaderMove[]> {
  const before = await k.kubectl.leaseHolders();
  for (const l of LEASES)
    if (!k.state.nodes.some((n) => n.name === holderHost(before[l])))
      throw new Error(`Lease ${l} is held by ${JSON.stringify(before[l])}, which names no lab host`);
  const watch = watchLeases(k.kubectl, before);
  const stoppedAt: Partial<Record<LeaseName, number>> = {};
  try {
    for (const l of LEASES) {
      stoppedAt[l] = Date.now();
      await labOk(k.dir, ['stop-role', holderHost(before[l]), l]);
    }
    await waitFor(
      'both Leases to name a new holder',
      () => LEASES.every((l) => watch.changes.some((c) => c.lease === l && c.to && c.to !== before[l])),
      { timeoutMs, intervalMs: 100 },
    );
  } finally {
    await watch.stop();
  }
  await waitRolesHealthy(k, [...LEASES]);
  return LEASES.map((l) => {
    const c = watch.changes.find((x) => x.lease === l && x.to && x.to !== before[l])!;
    return {
      lease: l,
      fromIdentity: before[l],
      fromHost: holderHost(before[l]),
      toIdentity: c.to,
      toHost: holderHost(c.to),
      movedAfterMs: c.at - stoppedAt[l]!,
    };
  });
}

// ---- d. a Deployment

interface PodList {
  items: Array<{ metadata: { name: string }; spec: { nodeName?: string }; status: { phase?: string } }>;
}

export interface DeploymentResult {
  pods: Array<{ name: string; node: string; phase: string }>;
  workers: string[];
  /** create → every replica Running */
  runningAfterMs: number;
  /** delete → no pod left */
  goneAfterMs: number;
  podsAfterDelete: number;
}

/**
 * `kubectl create deployment NAME --replicas=N` (the image is never pulled: kwok runs the pods),
 * waits until N pods are Running, records where the real scheduler put them, deletes the
 * Deployment and waits until its pods are gone.
 */
export async function deploymentRoundTrip(
  k: K8sLab,
  name = 'drover-e2e',
  replicas = 3,
): Promise<DeploymentResult> {
  const pods = async () =>
    (await k.kubectl.json<PodList>(['-n', 'default', 'get', 'pods', '-l', `app=${name}`])).items.map((p) => ({
      name: p.metadata.name,
      node: p.spec.nodeName ?? '',
      phase: p.status.phase ?? '',
    }));
  const t0 = Date.now();
  await k.kubectl.run([
    '-n',
    'default',
    'create',
    'deployment',
    name,
    '--image=drover.invalid/never-pulled:1',
    `--replicas=${replicas}`,
  ]);
  const running = await waitFor(
    `${replicas} pods of ${name} Running`,
    async () => {
      const p = await pods();
      return p.length === replicas && p.every((x) => x.phase === 'Running') ? p : undefined;
    },
    { timeoutMs: 90_000, intervalMs: 500 },
  );
  const runningAt = Date.now();
  const t1 = Date.now();
  await k.kubectl.run(['-n', 'default', 'delete', 'deployment', name, '--wait=false']);
  await waitFor(`the pods of ${name} gone`, async () => (await pods()).length === 0, {
    timeoutMs: 90_000,
    intervalMs: 500,
  });
  const goneAt = Date.now();
  return {
    pods: running,
    workers: k.state.nodes.filter((n) => n.pool === 'worker').map((n) => n.name),
    runningAfterMs: runningAt - t0,
    goneAfterMs: goneAt - t1,
    podsAfterDelete: (await pods()).length,
  };
}

// ---- e. a control-plane host dies

export interface KillHostResult {
  victim: string;
  spare: string;
  /** the instances the victim ran, each assigned to the spare and healthy afterwards */
  victimInstances: string[];
  /** `drover lab kill-host` output */
  stdout: string;
  /** kill → Drover saw every moved instance healthy on the spare */
  repairedAfterMs: number;
  /** kill → /readyz ok on all three API servers (asked directly, checked against the CA) */
  allReadyAfterMs: number;
  spareReadyz: boolean;
  /** the API servers' hosts after, and what haproxy.cfg lists */
  apiHosts: string[];
  etcd: { peers: string[]; expectPeer: string; deadPeer: string; healthy: number; value: string };
  eventKinds: string[];
  leasesBefore: Record<LeaseName, string>;
  leasesAfter: Record<LeaseName, string>;
  running: Map<string, string[]>;
  lb: LbFigure;
}

/**
 * `drover lab kill-host` on the control-plane host holding the scheduler's Lease (so leadership
 * has to move too). Drover moves its instances to the spare and replaces its etcd member through
 * the survivors; this waits for all of that and for 3/3 API servers ready, then for both Leases
 * to be held on live hosts.
 */
export async function killControlPlaneHost(k: K8sLab): Promise<KillHostResult> {
  const before = await k.api.assignments();
  const leasesBefore = await k.kubectl.leaseHolders();
  const cp = placedControlPlane(k);
  const leader = holderHost(leasesBefore['kube-scheduler']);
  const victim = cp.includes(leader) ? leader : cp[0]!;
  const victimInstances = before
    .filter((a) => a.nodeId === victim)
    .map((a) => a.instanceId)
    .sort();
  const survivors = [
    ...new Set(before.filter((a) => a.role === 'etcd' && a.nodeId !== victim).map((a) => a.nodeId)),
  ];
  await etcdctl(
    k.state,
    survivors.map((n) => etcdUrl(addressOf(k.state, n))),
    ['put', 'drover-e2e', 'written-before-the-kill'],
  );

  const t0 = Date.now();
  const r = await labOk(k.dir, ['kill-host', victim]);
  const apiAddresses = async () =>
    (await k.api.assignments())
      .filter((a) => a.role === 'kube-apiserver' && a.nodeId !== victim)
      .map((a) => addressOf(k.state, a.nodeId));
  const [repaired, allReady] = await Promise.all([
    waitHealthyOn(k.api, victimInstances, k.spare, 180_000),
    waitFor(
      '3/3 API servers ready (/readyz straight to each)',
      async () => {
        const addrs = await apiAddresses();
        if (addrs.length !== 3) return undefined;
        const ok = await Promise.all(addrs.map((a) => apiReadyz(a, k.admin)));
        return ok.every(Boolean) ? Date.now() : undefined;
      },
      { timeoutMs: 180_000, intervalMs: 250 },
    ),
  ]);
  const spareReadyz = await apiReadyz(addressOf(k.state, k.spare), k.admin);
  const apiHosts = (await apiAddresses()).sort();
  await waitHaproxyBackends('haproxy.cfg to list the moved API server', k.state, apiHosts);

  const members = [...survivors, k.spare].map((n) => etcdUrl(addressOf(k.state, n)));
  const expectPeer = etcdPeerUrl(addressOf(k.state, k.spare));
  const deadPeer = etcdPeerUrl(addressOf(k.state, victim));
  let peers: string[] = [];
  let healthy = 0;
  await waitFor(
    'etcd: the spare a member, the dead one removed, 3 healthy',
    async () => {
      peers = await etcdPeerUrls(k.state, members);
      healthy = await etcdHealthy(k.state, members);
      return peers.includes(expectPeer) && !peers.includes(deadPeer) && healthy === 3;
    },
    { timeoutMs: 60_000, intervalMs: 1000 },
  );
  const value = await etcdctl(k.state, members, ['get', 'drover-e2e', '--print-value-only']);

  // a Lease held on the dead host moves once it expires
  const leasesAfter = await waitFor(
    'both Leases held on live hosts',
    async () => {
      const h = await k.kubectl.leaseHolders();
      return LEASES.every((l) => h[l] && holderHost(h[l]) !== victim) ? h : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 500 },
  );
  await sleep(2000);
  const until = Date.now();
  return {
    victim,
    spare: k.spare,
    victimInstances,
    stdout: r.stdout,
    repairedAfterMs: repaired - t0,
    allReadyAfterMs: allReady - t0,
    spareReadyz,
    apiHosts,
    etcd: { peers, expectPeer, deadPeer, healthy, value: value.trim() },
    eventKinds: [...new Set((await k.api.events(500)).map((e) => e.kind))],
    leasesBefore,
    leasesAfter,
    running: runningInstances(k.state),
    lb: lbFigure(k.client, t0, until),
  };
}

// ---- RSS

export interface HostRss {
  host: string;
  /** role → VmRSS in kB of the process the agent's pidfile names */
  roles: Record<string, number>;
  agentKb: number;
}

function vmRssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`/proc/${pid}/status has no VmRSS`);
  return Number(m[1]);
}

/** VmRSS of the control-plane processes on one host (from its agent's pidfiles) and of its agent. */
export function controlPlaneRss(s: LabState, host: string): HostRss {
  const node = s.nodes.find((n) => n.name === host);
  if (!node?.proc) throw new Error(`${host} has no running agent in lab.json`);
  const roles: Record<string, number> = {};
  for (const r of roleProcesses(node)) roles[r.role] = vmRssKb(r.pid);
  return { host, roles, agentKb: vmRssKb(node.proc.pid) };
}
