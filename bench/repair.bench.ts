// Repair figures at the DEFAULT timings: how long until redundancy is back after a host dies,
// what a client of the load balancer sees meanwhile, and whether short blips cause false
// reassignments. Real processes: a nats-server, the coordinator (in this process), five
// drover-agent processes on 127.0.81.2-6, real etcd and haproxy, API servers as the lab stand-in.
//
// DROVER_BENCH_REPAIR_RUNS (default 10) and DROVER_BENCH_REPAIR_BLIPS (default 20) change the counts.
import { cpus } from 'node:os';
import { DEFAULT_COORDINATOR_OPTIONS } from '../coordinator/config.js';
import { DEFAULT_REPAIR_OPTIONS } from '../coordinator/options.js';
import type { Event } from '../protocol/index.js';
import { Fleet, repairNodes, repairTopology, waitFor } from '../test/helpers/fleet-core.js';
import { sleep } from './lib.js';

const TOPOLOGY = repairTopology('rb');

/** The coordinator's own defaults (coordinator/config.ts), passed explicitly to the fleet's coordinator. */
const D = DEFAULT_COORDINATOR_OPTIONS;
const DEFAULTS = {
  heartbeatInterval: `${D.heartbeatInterval / 1000}s`,
  unreachableAfter: `${D.unreachableAfter / 1000}s`,
  reassignAfter: `${D.reassignAfter / 1000}s`,
  etcdReassignAfter: `${D.etcdReassignAfter / 1000}s`,
  stormThreshold: D.stormThreshold,
};
const BLIP_MS = 5000;
const LB_INTERVAL_MS = 100;

interface RunFigures {
  victim: string;
  unreachable: number;
  reassign: number;
  running: number;
  healthy: number;
  gapMs: number;
  windows: string;
  /** failures × interval while the killed host came back and was fenced */
  returnGapMs: number;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? Number.NaN;
}
const sec = (ms: number) => `${(ms / 1000).toFixed(1)}s`;
const dist = (xs: number[], f = sec) =>
  `p50 ${f(pct(xs, 50))}, p95 ${f(pct(xs, 95))} (min ${f(Math.min(...xs))}, max ${f(Math.max(...xs))})`;

export async function run(): Promise<void> {
  const runs = Number(process.env.DROVER_BENCH_REPAIR_RUNS ?? 10);
  const blips = Number(process.env.DROVER_BENCH_REPAIR_BLIPS ?? 20);
  const out = (s: string) => process.stdout.write(`${s}\n`);
  out(
    `settings: coordinator defaults — heartbeat ${DEFAULTS.heartbeatInterval}, Suspect after ${D.suspectAfterMissed} missed, Unreachable after ${DEFAULTS.unreachableAfter}, reassign after ${DEFAULTS.reassignAfter}, storm threshold ${D.stormThreshold * 100}%, at most ${DEFAULT_REPAIR_OPTIONS.maxReassignPerRolePerMinute} moves per role a minute (kills are spaced so the runs are independent)`,
  );
  out(
    `fleet: 5 agents on one ${cpus().length}-core machine (127.0.81.2-6): 1 load-balancer node (haproxy + etcd), 4 control-plane nodes running 3 API servers (the lab stand-in; probe period 2s, start-up grace 10s) and 1 spare`,
  );
  const fleet = await Fleet.start({
    subnet: '127.0.81',
    cluster: 'rb',
    nodes: repairNodes(),
    timings: DEFAULTS,
    logLevel: 'warn',
  });
  let client: ReturnType<typeof fleet.lbClient> | undefined;
  try {
    await fleet.applyTopology(TOPOLOGY);
    await fleet.converged(120_000);
    const lb = fleet.lbClient('lb', 6443, LB_INTERVAL_MS);
    client = lb;
    await waitFor('the load balancer to answer', () => lb.samples.some((s) => s.ok), {
      timeoutMs: 20_000,
    });

    // ---- host kills
    const figures: RunFigures[] = [];
    const kills: number[] = [];
    for (let i = 0; i < runs; i++) {
      // Independent host deaths: the per-role rate limit (DEFAULT_REPAIR_OPTIONS, 3 moves a minute)
      // is a safety brake for a bad day, and would otherwise hold every 4th back-to-back run.
      const limit = DEFAULT_REPAIR_OPTIONS.maxReassignPerRolePerMinute;
      const spacing = (kills.at(-limit) ?? 0) + 61_000 - Date.now();
      if (spacing > 0) await sleep(spacing);
      const before = (await fleet.assignments()).filter((a) => a.role === 'kube-apiserver');
      const victim = before[i % before.length]!.nodeId;
      const inst = before.find((a) => a.nodeId === victim)!.instanceId;
      const mark = fleet.mark();
      const after = (kind: string, match: (e: Event) => boolean) =>
        fleet.waitEvent(`${kind}`, (e) => e.kind === kind && match(e), 60_000, mark);
      const t0 = Date.now();
      kills.push(t0);
      await fleet.kill(victim);
      const unreachable = await after('node.unreachable', (e) => e.nodeId === victim);
      const reassign = await after('repair.reassign', (e) => e.instanceId === inst);
      const moved = await after('role.moved', (e) => e.instanceId === inst);
      const to = moved.nodeId!;
      const running = await waitFor(
        `${inst} running on ${to}`,
        () => (fleet.running().get(inst)?.[0] === to ? Date.now() : undefined),
        { timeoutMs: 30_000, intervalMs: 20 },
      );
      const healthy = await waitFor(
        `${inst} Healthy on ${to}`,
        async () => {
          const a = (await fleet.assignments()).find((x) => x.instanceId === inst);
          return a?.nodeId === to && a.phase === 'Healthy' ? Date.now() : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 50 },
      );
      await sleep(2000); // traffic on the new backend set
      const windowEnd = Date.now();
      const f: RunFigures = {
        victim,
        unreachable: Date.parse(unreachable.time) - t0,
        reassign: Date.parse(reassign.time) - t0,
        running: running - t0,
        healthy: healthy - t0,
        gapMs: client.failedMs(t0, windowEnd),
        windows: client
          .windows(t0, windowEnd)
          .map((w) => `${w.failures}×`)
          .join(' '),
        returnGapMs: 0,
      };
      figures.push(f);
      out(
        `  run ${i + 1}/${runs}: killed ${victim}; Unreachable ${sec(f.unreachable)}, reassigned ${sec(f.reassign)}, running on ${to} ${sec(f.running)}, Healthy ${sec(f.healthy)}; LB gap ${f.gapMs}ms${f.windows ? ` (${f.windows})` : ''}; ${f.returnGapMs}ms while ${victim} returned`,
      );
      // the host comes back (fenced: it stops its stale copy) and is the next run's spare
      const t1 = Date.now();
      fleet.revive(victim);
      await fleet.converged(90_000);
      await sleep(1000);
      f.returnGapMs = client.failedMs(t1);
    }

    // ---- blips
    const mark = fleet.mark();
    for (let i = 0; i < blips; i++) {
      const hosts = (await fleet.assignments())
        .filter((a) => a.role === 'kube-apiserver')
        .map((a) => a.nodeId);
      const node = hosts[i % hosts.length]!;
      fleet.pause(node);
      await sleep(BLIP_MS);
      fleet.resume(node);
      await sleep(4000); // two heartbeats: the node is Ready again before the next blip
    }
    await sleep(D.reassignAfter + D.heartbeatInterval); // anything pending would have fired
    const blipEvents = fleet.since(mark);
    const count = (k: string) => blipEvents.filter((e) => e.kind === k).length;
    const falseMoves = count('role.moved') + count('repair.reassign');

    // ---- report
    out('');
    out(
      `time to restore redundancy after a host is killed (SIGKILL of the agent and its roles → the moved API server Healthy on the spare), N=${runs}: ${dist(figures.map((f) => f.healthy))}`,
    );
    out(
      `  of which — Unreachable: ${dist(figures.map((f) => f.unreachable))}; reassigned: ${dist(figures.map((f) => f.reassign))}; process running on the spare: ${dist(figures.map((f) => f.running))}`,
    );
    out(
      `  running → Healthy: ${dist(figures.map((f) => f.healthy - f.running))} (the stand-in's start and the probe's first pass at the 500ms start-up pace); kill → reassigned is the detection and grace timings`,
    );
    out(
      `  target p50 ≤ 20s: ${
        pct(
          figures.map((f) => f.healthy),
          50,
        ) <= 20_000
          ? 'met'
          : `not met at these defaults (Unreachable ${DEFAULTS.unreachableAfter} + reassign ${DEFAULTS.reassignAfter} of silence before the move)`
      }`,
    );
    const all = client.between(0);
    out(
      `load balancer service gap per host kill (a new TLS connection through haproxy every ${LB_INTERVAL_MS}ms; failures × ${LB_INTERVAL_MS}ms): ${dist(
        figures.map((f) => f.gapMs),
        (ms) => `${ms}ms`,
      )}; while the dead host returned and was fenced: ${dist(
        figures.map((f) => f.returnGapMs),
        (ms) => `${ms}ms`,
      )}; overall ${all.filter((s) => !s.ok).length} of ${all.length} requests failed (blips included)`,
    );
    out(
      `false reassignments during ${blips} blips of ${BLIP_MS / 1000}s (SIGSTOP/SIGCONT of an API-server host's agent; its roles keep serving): ${falseMoves} (target 0); the blips caused ${count('node.suspect')} Suspect and ${count('node.unreachable')} Unreachable transitions`,
    );
  } finally {
    await client?.stop();
    await fleet.close();
  }
}
