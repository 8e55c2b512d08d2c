// Coordinator scale: a real drover-coordinator process and a real nats-server against SIMULATED
// agents — light clients that speak the real protocol (register, heartbeat with digest, signed
// plan pushes answered with a PlanResult), each on its own NATS connection as its node (node
// creds over TLS; see bench/sim-fleet.ts). They run nothing.
// Printed for N = 1,000 and 5,000 (override with COORD_BENCH_N=1000,5000):
// - time to register all N;
// - time to converge a topology change touching every node (until every simulated agent has
//   applied the new plan): the first apply; a config change (files only, the role names a reload
//   signal, so every node applies it at once); a change that restarts every node's instance (the
//   rollout gate restarts a quarter at a time, the next as each reports Healthy). Like real agents,
//   the simulated ones answer each push and then send a full status;
// - steady-state coordinator CPU% and RSS at 2 s heartbeats;
// - heartbeats handled per second.
// Targets (issue 4): 5,000 agents at 2 s heartbeats under 50 % of one core and 1 GiB RSS; a
// change touching all 5,000 nodes converges in under 5 s.
import { cpus } from 'node:os';
import { RolloutGate } from '../coordinator/rollout.js';
import { checkOpenFiles, cpuPercent, procSample, sleep, startSecureNats, waitUntil } from './lib.js';
import {
  closeSims,
  connectSims,
  metric,
  registerAll,
  type Sim,
  startCoordinatorProcess,
  startHeartbeats,
} from './sim-fleet.js';

const SIZES = (process.env.COORD_BENCH_N ?? '1000,5000').split(',').map(Number);
/**
 * `single`: one coordinator on the lowdb file. `ha`: three coordinators with ha.enabled on the
 * JetStream store (R1 on the bench's one nats-server: the fleet's connections stay on one
 * server), c1 leading; the followers hear every heartbeat and status too.
 */
const SETUPS = (process.env.COORD_BENCH_SETUPS ?? 'single,ha').split(',') as Array<'single' | 'ha'>;
const HEARTBEAT_MS = 2000;
const STEADY_MS = Number(process.env.COORD_BENCH_STEADY_MS ?? 20_000);

/**
 * An `everywhere` role on every simulated node. `run` is in its environment (a change restarts it,
 * so the rollout gate restarts a quarter of the fleet at a time); `config` is only in a file and
 * the role names a reload signal (a change is a reload on every node at once, like haproxy's).
 */
function topology(run: string, config: string): string {
  return `apiVersion: drover.dev/v1
kind: Topology
metadata: { name: bench }
cluster: { name: bench }
customRoles:
  agentlet:
    command: /bin/sleep
    args: ["infinity"]
    env: { BENCH_RUN: "${run}" }
    reloadSignal: SIGHUP
    files:
      - { path: /etc/bench/config, mode: "0644", content: "${config}" }
roles:
  agentlet: { everywhere: true }
`;
}

async function runSize(n: number, setup: 'single' | 'ha'): Promise<void> {
  checkOpenFiles(n + 200);
  const nats = await startSecureNats({ jetstream: setup === 'ha' });
  let coord: Awaited<ReturnType<typeof startCoordinatorProcess>> | undefined;
  const followers: Array<Awaited<ReturnType<typeof startCoordinatorProcess>>> = [];
  let list: Sim[] = [];
  let hb: ReturnType<typeof startHeartbeats> | undefined;
  try {
    const haArgs = (id: string) =>
      setup === 'ha'
        ? [
            '--store-backend',
            'jetstream',
            '--store-bucket',
            `bench-${n}`,
            '--ha-enabled',
            'true',
            '--ha-id',
            id,
          ]
        : [];
    const start = (id: string, seedFrom?: string) =>
      startCoordinatorProcess({
        natsUrl: nats.url,
        busDir: nats.dir,
        heartbeatMs: HEARTBEAT_MS,
        nodeArgs: (process.env.COORD_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean),
        extraArgs: haArgs(id),
        ...(seedFrom ? { seedFrom } : {}),
      });
    coord = await start('c1');
    if (setup === 'ha') {
      // c1 leads (it started first and took the lease); the others follow with copies of its seed
      const c1 = coord;
      await waitUntil(
        'c1 leads',
        async () => {
          const r = await fetch(`${c1.api}/v1/coordinators`, {
            headers: { authorization: `Bearer ${c1.token}` },
          });
          const items = r.ok
            ? ((await r.json()) as { items: Array<{ id: string; role: string }> }).items
            : [];
          return items.some((i) => i.id === 'c1' && i.role === 'leader');
        },
        20_000,
        100,
      );
      for (const id of ['c2', 'c3']) followers.push(await start(id, c1.dir));
    }
    const { api, token } = coord;
    list = await connectSims(nats, n);
    const registerMs = await registerAll(list);

    // heartbeats, spread evenly over the interval
    hb = startHeartbeats(list, HEARTBEAT_MS);
    const cp = coord;

    /** CPU the simulated fleet (this process) used during the last change, in % of one core */
    let simCpuDuringChange = Number.NaN;
    let coordCpuDuringChange = Number.NaN;
    const apply = async (run: string, config: string) => {
      const version = `${run}/${config}`;
      const t = performance.now();
      const c0 = process.cpuUsage();
      const k0 = procSample(cp.pid);
      const r = await fetch(`${api}/v1/topology`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/yaml' },
        body: topology(run, config),
      });
      if (!r.ok) throw new Error(`PUT /v1/topology: ${r.status} ${await r.text()}`);
      const putMs = performance.now() - t;
      await waitUntil(
        `all ${n} simulated agents on ${version}`,
        () => list.every((s) => s.version === version),
        120_000,
        10,
      );
      const noticed = performance.now() - t;
      // Converged = the moment the last simulated agent applied the plan (stamped in its handler);
      // the polling loop above only notices it later, by however long this busy process lags.
      const at = list.map((x) => (x.appliedAt ?? t) - t).sort((a, b) => a - b);
      const ms = at[at.length - 1]!;
      if (process.env.COORD_BENCH_DEBUG) {
        const q = (f: number) => (at[Math.floor(f * (at.length - 1))]! / 1000).toFixed(2);
        process.stdout.write(
          `  [debug] ${version}: PUT answered at ${(putMs / 1000).toFixed(2)} s, first plan at ${q(0)} s, 10% ${q(0.1)} s, 50% ${q(0.5)} s, 90% ${q(0.9)} s, last ${q(1)} s, noticed ${(noticed / 1000).toFixed(2)} s\n`,
        );
      }
      const c = process.cpuUsage(c0);
      simCpuDuringChange = ((c.user + c.system) / 1000 / noticed) * 100;
      coordCpuDuringChange = cpuPercent(k0, procSample(cp.pid), noticed);
      return ms;
    };
    const firstMs = await apply('r1', 'c1');
    await sleep(3000);
    const changeMs = await apply('r1', 'c2');
    const reloadCpu = { sims: simCpuDuringChange, coordinator: coordCpuDuringChange };
    await sleep(3000);
    const rolloutMs = await apply('r2', 'c2');
    if (process.env.COORD_BENCH_DEBUG) {
      const m = await (
        await fetch(`${api}/metrics`, { headers: { authorization: `Bearer ${token}` } })
      ).text();
      process.stdout.write(
        `${m
          .split('\n')
          .filter((l) => /^drover_(reconcile|plan_pushes)/.test(l) && !/_bucket/.test(l))
          .join('\n')}\n`,
      );
    }

    await sleep(3000);
    const pid = cp.pid;
    const before = procSample(pid);
    for (const f of followers) f.cpuBefore = procSample(f.pid);
    const sentBefore = hb.sent();
    const hbBefore = await metric(cp, 'drover_heartbeats_total');
    const tS = performance.now();
    await sleep(STEADY_MS);
    const ms = performance.now() - tS;
    const after = procSample(pid);
    const followerCpu = followers.map((f) =>
      cpuPercent(f.cpuBefore ?? procSample(f.pid), procSample(f.pid), ms),
    );
    const hbAfter = await metric(cp, 'drover_heartbeats_total');
    const handled =
      hbAfter !== undefined && hbBefore !== undefined ? ((hbAfter - hbBefore) * 1000) / ms : Number.NaN;
    const sentAfter = hb.sent();
    hb.stop();
    const cpu = cpuPercent(before, after, ms);
    const rssMb = after.rssKb / 1024;
    const line = (k: string, v: string) => process.stdout.write(`  ${k.padEnd(44)} ${v}\n`);
    process.stdout.write(
      `N = ${n} simulated agents (one NATS connection each, node creds over TLS: Drover's generated auth), heartbeat ${HEARTBEAT_MS} ms; ${setup === 'ha' ? 'HA: 3 coordinators on the JetStream store (R1, one nats-server), c1 leading' : 'one coordinator on the lowdb file'}\n`,
    );
    line(
      'register all',
      `${(registerMs / 1000).toFixed(2)} s (${Math.round((n * 1000) / registerMs)} registrations/s)`,
    );
    line('first topology apply → all applied', `${(firstMs / 1000).toFixed(2)} s`);
    line(
      'change touching every node → all applied',
      `${(changeMs / 1000).toFixed(2)} s from the PUT to the last agent's apply (a config change, reloaded on every node at once; target < 5 s at 5,000: ${changeMs < 5000 ? 'met' : 'MISSED'})`,
    );
    line(
      "restart of every node's instance → all applied",
      `${(rolloutMs / 1000).toFixed(2)} s (rolling: the gate restarts ${RolloutGate.budget(n)} of ${n} at a time, the next as each reports Healthy)`,
    );
    line(
      '  CPU during that change',
      `during the change the coordinator used ${reloadCpu.coordinator.toFixed(0)} % of one core and the simulated agents' process ${reloadCpu.sims.toFixed(0)} %; nats-server, the coordinator and the fleet share ${cpus().length} cores`,
    );
    line(
      'steady-state coordinator CPU',
      `${cpu.toFixed(1)} % of one core over ${(ms / 1000).toFixed(0)} s (target < 50 % at 5,000: ${cpu < 50 ? 'met' : 'MISSED'})`,
    );
    if (followers.length)
      line(
        '  each follower, steady state',
        `${followerCpu.map((c) => `${c.toFixed(1)} %`).join(', ')} of one core (they hear every heartbeat and status)`,
      );
    line(
      'steady-state coordinator RSS',
      `${rssMb.toFixed(0)} MB (target < 1024 MB: ${rssMb < 1024 ? 'met' : 'MISSED'})`,
    );
    line(
      'heartbeats sent / handled per second',
      `${(((sentAfter - sentBefore) * 1000) / ms).toFixed(0)} / ${Number.isNaN(handled) ? 'n/a' : handled.toFixed(0)} (expected ${((n * 1000) / HEARTBEAT_MS).toFixed(0)})`,
    );
    line(
      'CPU per 1,000 heartbeats/s',
      `${((cpu / ((n * 1000) / HEARTBEAT_MS)) * 1000).toFixed(2)} % of one core`,
    );
  } finally {
    hb?.stop();
    await closeSims(list);
    for (const f of followers) await f.stop();
    await coord?.stop();
    nats.stop();
  }
}

export async function run(): Promise<void> {
  for (const n of SIZES) for (const setup of SETUPS) await runSize(n, setup);
}
