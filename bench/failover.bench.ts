// Seed 003's failover figures on the REAL Kubernetes control plane (issue 14): a `drover lab` of
// 7 hosts on 127.0.85.x running etcd, kube-apiserver, kube-scheduler and kube-controller-manager
// from the pinned build (scripts/k8s-binaries.sh), ×3 behind real haproxy; kwok workers. The same
// scenarios as test/e2e/k8s-control-plane.test.ts (test/helpers/k8s-lab.ts), here with figures:
//   - failed requests and the longest gap seen by a client of the load balancer (new TLS
//     connection with the admin certificate, `GET /readyz` every 100 ms) when one API server
//     stops (`drover lab stop-role`), and when its host is killed (`drover lab kill-host`);
//   - time for the scheduler and controller-manager Leases to move after their leader stops;
//   - time from a host kill to 3/3 real API servers ready;
//   - RSS of the control plane on each host beside the agent's.
// The lab's shortened timings (heartbeat 1s, Unreachable 4s, reassign 2s, etcd reassign 4s), as
// the e2e tests use. DROVER_BENCH_FAILOVER_RUNS (default 3) repeats the stop-role scenarios.
import { cpus } from 'node:os';
import { K8S_PINS } from '../lib/k8s-bins.js';
import { downFailoverLab, FAILOVER_TIMINGS } from '../test/helpers/failover-lab-core.js';
import {
  controlPlaneRss,
  type K8sLab,
  killControlPlaneHost,
  LB_TIMEOUT_MS,
  type LbFigure,
  placedControlPlane,
  stopApiServer,
  stopLeaders,
  upK8sLab,
} from '../test/helpers/k8s-lab.js';
import { acquireLabLock } from '../test/helpers/lab-e2e.js';
import { tempDir } from '../test/helpers/wait.js';
import { sleep } from './lib.js';

const sec = (ms: number) => `${(ms / 1000).toFixed(1)}s`;
const mb = (kb: number) => `${(kb / 1024).toFixed(0)} MB`;
const lbLine = (f: LbFigure) =>
  `${f.failed} of ${f.requests} requests failed, longest gap ${f.longestGapMs} ms`;
const range = (xs: number[], f = sec) =>
  xs.length > 1
    ? `${xs.map(f).join(', ')} (min ${f(Math.min(...xs))}, max ${f(Math.max(...xs))})`
    : f(xs[0]!);

const CP_ROLES = ['etcd', 'kube-apiserver', 'kube-scheduler', 'kube-controller-manager'];

export async function run(): Promise<void> {
  const runs = Number(process.env.DROVER_BENCH_FAILOVER_RUNS ?? 3);
  const out = (s: string) => process.stdout.write(`${s}\n`);
  out(
    `settings: Kubernetes ${K8S_PINS.kubernetes}, etcd ${K8S_PINS.etcd}, kwok ${K8S_PINS.kwok}; lab timings ${FAILOVER_TIMINGS.join(' ')}; leader election 20s/15s/4s (examples/ha.yaml); LB client: new TLS connection, admin certificate, GET /readyz every 100 ms, timeout ${LB_TIMEOUT_MS} ms; ${runs} run(s) of each stop-role`,
  );
  out(
    `machine: ${cpus().length} cores shared by 7 lab hosts, 12 control-plane processes, haproxy, nats-server and the coordinator`,
  );
  const release = await acquireLabLock();
  const dir = tempDir('bench-failover');
  const figures: string[] = [];
  let k: K8sLab | undefined;
  try {
    k = await upK8sLab(dir, { subnet: '127.0.85', figures });
    out(figures[0]!);

    // RSS once start-up work (informer syncs, bootstrap controllers) has settled
    await sleep(30_000);
    const leaders = await k.kubectl.leaseHolders();
    for (const host of placedControlPlane(k)) {
      const r = controlPlaneRss(k.state, host);
      const total = CP_ROLES.reduce((s, role) => s + (r.roles[role] ?? 0), 0);
      const lead = Object.entries(leaders)
        .filter(([, id]) => id.startsWith(`${host}_`))
        .map(([l]) => l);
      out(
        `RSS ${host}${lead.length ? ` (leader: ${lead.join(', ')})` : ''}: ${CP_ROLES.map((role) => `${role} ${mb(r.roles[role] ?? 0)}`).join(', ')}; control plane ${mb(total)}; drover-agent ${mb(r.agentKb)}`,
      );
    }

    const stops: Array<Awaited<ReturnType<typeof stopApiServer>>> = [];
    for (let i = 0; i < runs; i++) {
      const r = await stopApiServer(k);
      stops.push(r);
      out(
        `stop-role ${r.host} kube-apiserver #${i + 1}: ready again after ${sec(r.readyAfterMs)}; LB ${lbLine(r.lb)} [${r.lb.summary}]; Leases ${r.leaseChanges.length ? `CHANGED: ${JSON.stringify(r.leaseChanges)}` : 'kept'}`,
      );
    }
    const moves: Array<Awaited<ReturnType<typeof stopLeaders>>> = [];
    for (let i = 0; i < runs; i++) {
      const m = await stopLeaders(k);
      moves.push(m);
      for (const x of m)
        out(
          `stop-role ${x.fromHost} ${x.lease} #${i + 1}: Lease moved after ${sec(x.movedAfterMs)} to ${x.toHost}${x.toHost === x.fromHost ? ' (the restarted process)' : ''}`,
        );
    }
    const kh = await killControlPlaneHost(k);
    out(
      `kill-host ${kh.victim}: 3/3 API servers ready after ${sec(kh.allReadyAfterMs)}; ${kh.victimInstances.length} instances healthy on ${kh.spare} after ${sec(kh.repairedAfterMs)}; LB ${lbLine(kh.lb)} [${kh.lb.summary}]`,
    );

    out('\nsummary:');
    out(
      `  one API server stopped (${runs}×): LB failed requests ${stops.map((s) => s.lb.failed).join(', ')}, longest gap ${range(
        stops.map((s) => s.lb.longestGapMs),
        (x) => `${x} ms`,
      )}; ready again after ${range(stops.map((s) => s.readyAfterMs))}`,
    );
    for (const lease of ['kube-scheduler', 'kube-controller-manager'] as const)
      out(
        `  ${lease} Lease moved after its leader stopped (${runs}×): ${range(moves.map((m) => m.find((x) => x.lease === lease)!.movedAfterMs))}`,
      );
    out(`  host killed: LB ${lbLine(kh.lb)}; 3/3 API servers ready after ${sec(kh.allReadyAfterMs)}`);
  } finally {
    await downFailoverLab({
      dir,
      client: k?.client,
      figures,
      kind: 'failover bench, real Kubernetes',
      release,
    });
  }
}
