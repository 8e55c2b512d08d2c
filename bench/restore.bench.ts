// etcd restore figures (issue 18): the time from a lost quorum to 3/3 healthy members, with real
// etcd ×3 over mutual TLS and one real drover-agent per host (test/helpers/fleet-core.ts). Each
// run writes keys, takes a snapshot, kills two of the three hosts and wipes their etcd data, waits
// until the coordinator sees them Unreachable, runs `POST /v1/etcd/restore`, brings the hosts
// back and waits for `etcd.restore-complete`. Printed per phase, as the median over the runs, with
// the heartbeat and Unreachable timings they depend on.
//
// DROVER_BENCH_RESTORE_RUNS (default 3).
import { rmSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { Fleet, waitFor } from '../test/helpers/fleet-core.js';

const TOPOLOGY = `apiVersion: drover.dev/v1
kind: Topology
metadata: { name: rb }
cluster: { name: rb }
roles:
  etcd: { replicas: 3, nodeSelector: { pool: control-plane } }
`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export async function run(): Promise<void> {
  const runs = Number(process.env.DROVER_BENCH_RESTORE_RUNS ?? 3);
  const timings = { heartbeatInterval: '500ms', unreachableAfter: '2s', etcdReassignAfter: '60s' };
  const phases = {
    detect: [] as number[],
    seeded: [] as number[],
    complete: [] as number[],
    total: [] as number[],
  };
  for (let i = 0; i < runs; i++) {
    const fleet = await Fleet.start({
      subnet: '127.0.77',
      cluster: 'rb',
      nodes: ['cp-1', 'cp-2', 'cp-3'].map((id) => ({ id, pool: 'control-plane' })),
      timings,
      logLevel: 'warn',
    });
    try {
      await fleet.applyTopology(TOPOLOGY);
      await fleet.converged(60_000);
      const etcd = (await fleet.assignments())
        .filter((a) => a.role === 'etcd')
        .sort((a, b) => a.ordinal - b.ordinal);
      const urls = etcd.map((a) => fleet.etcdUrl(a.nodeId));
      for (let k = 0; k < 200; k++) await fleet.etcdctl(urls, ['put', `/bench/restore/${k}`, 'v']);
      const snap = (await fleet.api<{ data: { id: string } }>('POST', '/v1/etcd/snapshots?cluster=rb')).data;
      const lost = etcd.slice(1);
      const t0 = Date.now();
      for (const a of lost) {
        await fleet.kill(a.nodeId);
        rmSync(join(fleet.node(a.nodeId).rootDir, 'var/lib/etcd'), { recursive: true, force: true });
      }
      await waitFor(
        'the dead hosts Unreachable',
        async () => {
          const nodes = (await fleet.api<{ items: Array<{ id: string; state: string }> }>('GET', '/v1/nodes'))
            .items;
          return lost.every((a) => nodes.find((n) => n.id === a.nodeId)?.state === 'Unreachable');
        },
        { timeoutMs: 20_000, intervalMs: 100 },
      );
      const mark = fleet.mark();
      const t1 = Date.now();
      await fleet.api('POST', '/v1/etcd/restore?cluster=rb', { snapshot: snap.id });
      for (const a of lost) fleet.revive(a.nodeId);
      await fleet.waitEvent('seeded', (e) => e.kind === 'etcd.restore-seeded', 60_000, mark);
      const t2 = Date.now();
      await fleet.waitEvent('complete', (e) => e.kind === 'etcd.restore-complete', 120_000, mark);
      const t3 = Date.now();
      phases.detect.push(t1 - t0);
      phases.seeded.push(t2 - t1);
      phases.complete.push(t3 - t1);
      phases.total.push(t3 - t0);
    } finally {
      await fleet.close();
    }
  }
  process.stdout.write(
    [
      `etcd restore, real etcd ×3 over mTLS, real agents, ${cpus().length} cores; heartbeat ${timings.heartbeatInterval}, Unreachable after ${timings.unreachableAfter}; 200 keys; median of ${runs} runs`,
      `  2 of 3 hosts killed and wiped → both Unreachable (the restore may start): ${s(median(phases.detect))}`,
      `  restore requested → the restored member serves the snapshot:          ${s(median(phases.seeded))}`,
      `  restore requested → 3/3 members healthy (hosts back at once):          ${s(median(phases.complete))}`,
      `  quorum lost → 3/3 healthy:                                              ${s(median(phases.total))} (runs: ${phases.total.map(s).join(', ')})`,
      '',
    ].join('\n'),
  );
}
