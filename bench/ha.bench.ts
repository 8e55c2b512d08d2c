// Coordinator HA (issue 17) figures:
//   - store write latency: sequential puts on the JetStream KV store (R1 on one server, R3 on a
//     three-server cluster) beside the lowdb file (each write awaited until durable), as ratios;
//   - failover: kill -9 of the leader, N times (DROVER_BENCH_HA_KILLS, default 20), with 3
//     nats-servers, 3 coordinators (lease 2 s) and 4 real agents: from the kill to the new
//     leader's first plan push (seen on the bus), p50 and p95.
// Not measured here yet: the 5,000-agent coordinator benchmark on the HA setup.

import { cpus } from 'node:os';
import { join } from 'node:path';
import { openLowdbStore } from '../coordinator/store/index.js';
import { openJetStreamStore } from '../coordinator/store/jetstream.js';
import type { Store } from '../coordinator/store/types.js';
import { decodeMessage } from '../protocol/index.js';
import { HaFleet } from '../test/helpers/ha-fleet.js';
import { startNatsCluster } from '../test/helpers/nats-cluster.js';
import { webTopology } from '../test/helpers/topologies.js';
import { tempDir, waitFor } from '../test/helpers/wait.js';
import { pct } from './lib.js';

const WRITES = 300;
const ms = (x: number) => `${x.toFixed(2)} ms`;

async function writeLatency(store: Store): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < WRITES; i++) {
    const t = performance.now();
    await store.put(`bench/${i % 50}`, { i, payload: 'x'.repeat(200) });
    await store.flush();
    out.push(performance.now() - t);
  }
  return out.sort((a, b) => a - b);
}

const topology = (rev: number) => webTopology(2, rev);

export async function run(): Promise<void> {
  const out = (s: string) => process.stdout.write(`${s}\n`);
  out(`machine: ${cpus().length} cores; every server, coordinator and agent on this machine`);

  // ---- write latency
  const lowdb = await openLowdbStore({
    path: join(tempDir('bench-ha-lowdb'), 'state.json'),
    awaitDurable: true,
  });
  const lw = await writeLatency(lowdb);
  await lowdb.close();
  const cluster = await startNatsCluster(3);
  try {
    const nc = await cluster.connectAsCoordinator();
    const r1 = await openJetStreamStore({ nc, bucket: 'bench-r1', replicas: 1 });
    const j1 = await writeLatency(r1);
    await r1.close();
    const r3 = await openJetStreamStore({ nc, bucket: 'bench-r3', replicas: 3 });
    const j3 = await writeLatency(r3);
    await r3.close();
    await nc.close();
    const row = (name: string, xs: number[]) =>
      `  ${name.padEnd(28)} p50 ${ms(pct(xs, 50))}  p95 ${ms(pct(xs, 95))}  (${(pct(xs, 50) / pct(lw, 50)).toFixed(2)}× lowdb at p50)`;
    out(`store write latency, ${WRITES} sequential puts of ~250 bytes, each awaited until durable:`);
    out(row('lowdb file (fsync)', lw));
    out(row('JetStream KV R1', j1));
    out(row('JetStream KV R3 (3 servers)', j3));
    out(
      '  (not like for like: the lowdb write fsyncs its file; nats-server 2.9 acknowledges a JetStream write once a majority holds it in memory, before its disk; see docs/architecture.md)',
    );
  } finally {
    for (const s of cluster.servers) await s.stop();
  }

  // ---- failover
  const kills = Number(process.env.DROVER_BENCH_HA_KILLS ?? 20);
  const f = await HaFleet.start({ subnet: '127.0.122', agents: ['w-1', 'w-2', 'w-3', 'w-4'] });
  try {
    const pushes: Array<{ epoch: number; at: number }> = [];
    const nc = await f.connect();
    const sub = nc.subscribe('drover.v1.plan.>');
    void (async () => {
      for await (const m of sub) {
        try {
          pushes.push({ epoch: decodeMessage('SignedPlan', m.data).plan.coordinatorEpoch, at: Date.now() });
        } catch {}
      }
    })();
    await f.api('PUT', '/v1/topology', topology(0));
    await waitFor(
      'converged',
      async () => (await f.api<{ converged: boolean }>('GET', '/v1/status')).converged,
      {
        timeoutMs: 60_000,
      },
    );
    const took: number[] = [];
    for (let i = 1; i <= kills; i++) {
      const leader = await waitFor('a leader', () => f.leader(), { timeoutMs: 20_000 });
      await f.api('PUT', '/v1/topology', topology(i));
      const t0 = Date.now();
      await f.killCoordinator(leader.id);
      const p = await waitFor(
        'a push of a higher epoch',
        () => pushes.find((x) => x.at >= t0 && x.epoch > leader.epoch!),
        {
          timeoutMs: 20_000,
          intervalMs: 10,
        },
      );
      took.push(p.at - t0);
      await f.startCoordinator(leader.id);
    }
    took.sort((a, b) => a - b);
    out(
      `failover, ${kills} kill -9 of the leader (3 nats-servers, 3 coordinators, lease 2 s, 4 agents): kill → new leader's first plan push p50 ${pct(took, 50)} ms, p95 ${pct(took, 95)} ms, max ${took.at(-1)} ms (target p50 ≤ 3000 ms; the lease alone is 2000 ms)`,
    );
    await nc.close();
  } finally {
    await f.close();
    for (const s of f.cluster.servers) await s.stop();
  }
}
