// Coordinator scale: a real drover-coordinator process and a real nats-server against SIMULATED
// agents — light clients that speak the real protocol (register, heartbeat with digest, signed
// plan pushes answered with a PlanResult), many per NATS connection. They run nothing.
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
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type Msg, type NatsConnection } from 'nats';
import { RolloutGate } from '../coordinator/rollout.js';
import { encode, type NodePlan, PROTOCOL_VERSION, subjects } from '../protocol/index.js';
import { sampleFacts } from '../test/helpers/fixtures.js';
import { simulatedStatus } from '../test/helpers/sim-agent.js';
import { cpuPercent, freePort, procSample, sleep, startNatsServer, waitUntil } from './lib.js';

const SIZES = (process.env.COORD_BENCH_N ?? '1000,5000').split(',').map(Number);
const PER_CONN = 250;
const HEARTBEAT_MS = 2000;
const STEADY_MS = Number(process.env.COORD_BENCH_STEADY_MS ?? 20_000);

interface Sim {
  id: string;
  nc: NatsConnection;
  generation: number;
  checksum: string;
  epoch: number;
  version: string;
  seq: number;
  /** when this sim last received a plan with a new version */
  appliedAt?: number;
}

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

async function runSize(n: number): Promise<void> {
  const nats = await startNatsServer();
  const dir = mkdtempSync(join(tmpdir(), 'drover-bench-coord-'));
  const apiPort = await freePort();
  const coord = spawn(
    process.execPath,
    [
      ...(process.env.COORD_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean),
      'dist/drover-coordinator.mjs',
      '--data-dir',
      dir,
      '--nats-servers',
      nats.url,
      '--api-listen',
      `127.0.0.1:${apiPort}`,
      '--join-token',
      'bench',
      '--heartbeat-interval',
      `${HEARTBEAT_MS}ms`,
      '--log-level',
      'warn',
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const conns: NatsConnection[] = [];
  let hbTimer: ReturnType<typeof setInterval> | undefined;
  try {
    const api = `http://127.0.0.1:${apiPort}`;
    await waitUntil(
      'coordinator API',
      async () => (await fetch(`${api}/readyz`).catch(() => undefined))?.ok === true,
      20_000,
      100,
    );
    const token = readFileSync(join(dir, 'admin-token'), 'utf8').trim();
    const sims = new Map<string, Sim>();
    for (let c = 0; c < Math.ceil(n / PER_CONN); c++) {
      const nc = await connect({ servers: nats.url, name: `bench-sims-${c}` });
      conns.push(nc);
      // Each simulated agent subscribes to its own plan subject, as a real agent does. (A wildcard
      // per connection, as this bench once had, delivers every push to every connection: 20
      // answers and 20 status messages per plan at 5,000 nodes.)
      const onPlan = (sim: Sim, m: Msg) => {
        const signed = JSON.parse(new TextDecoder().decode(m.data)) as { plan: NodePlan };
        const p = signed.plan;
        sim.generation = p.generation;
        sim.checksum = p.checksum;
        sim.epoch = p.coordinatorEpoch;
        const i0 = p.instances[0];
        const v = i0 ? `${i0.run.env.BENCH_RUN}/${i0.files[0]?.content}` : '';
        if (v !== sim.version) sim.appliedAt = performance.now();
        sim.version = v;
        m.respond(
          encode({
            v: PROTOCOL_VERSION,
            type: 'plan-result',
            nodeId: sim.id,
            generation: p.generation,
            checksum: p.checksum,
            accepted: true,
          }),
        );
        // as a real agent does after applying: a full status, every instance Healthy (simulated)
        sim.nc.publish(subjects.status(sim.id), encode(simulatedStatus(sim.id, ++sim.seq, p)));
      };
      for (let i = 0; i < PER_CONN && sims.size < n; i++) {
        const id = `sim-${String(sims.size).padStart(5, '0')}`;
        const sim: Sim = { id, nc, generation: 0, checksum: '', epoch: 0, version: '', seq: 0 };
        sims.set(id, sim);
        nc.subscribe(subjects.plan(id), { callback: (_e, m) => onPlan(sim, m) });
      }
      await nc.flush();
    }
    const facts = sampleFacts();
    const t0 = performance.now();
    const list = [...sims.values()];
    let next = 0;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (next < list.length) {
          const s = list[next++]!;
          const i = Number(s.id.slice(4));
          const addr = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
          const reg = {
            v: PROTOCOL_VERSION,
            type: 'register',
            nodeId: s.id,
            hostname: s.id,
            address: addr,
            labels: { pool: 'worker', 'drover.dev/cluster': 'bench' },
            facts: { ...facts, hostname: s.id, machineId: s.id },
            fingerprint: { machineId: s.id, macs: [] },
            agentVersion: 'bench',
            joinToken: 'bench',
          };
          const r = await s.nc.request(subjects.register(s.id), encode(reg), { timeout: 30_000 });
          const reply = JSON.parse(new TextDecoder().decode(r.data)) as { accepted?: boolean };
          if (!reply.accepted) throw new Error(`register refused: ${JSON.stringify(reply)}`);
        }
      }),
    );
    const registerMs = performance.now() - t0;

    // heartbeats, spread evenly over the interval
    let sent = 0;
    let cursor = 0;
    hbTimer = setInterval(() => {
      const slice = Math.ceil(list.length / 10);
      const start = cursor;
      cursor = (cursor + slice) % list.length;
      for (const s of list.slice(start, start + slice)) {
        s.nc.publish(
          subjects.heartbeat(s.id),
          encode({
            v: PROTOCOL_VERSION,
            type: 'heartbeat',
            nodeId: s.id,
            seq: ++s.seq,
            sentAt: new Date().toISOString(),
            digest: {
              generation: s.generation,
              checksum: s.checksum,
              coordinatorEpoch: s.epoch,
              health: '0000000000000000',
              instances: s.version ? 1 : 0,
              unhealthy: 0,
            },
          }),
        );
        sent++;
      }
    }, HEARTBEAT_MS / 10);

    /** CPU the simulated fleet (this process) used during the last change, in % of one core */
    let simCpuDuringChange = Number.NaN;
    let coordCpuDuringChange = Number.NaN;
    const apply = async (run: string, config: string) => {
      const version = `${run}/${config}`;
      const t = performance.now();
      const c0 = process.cpuUsage();
      const k0 = procSample(coord.pid!);
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
      coordCpuDuringChange = cpuPercent(k0, procSample(coord.pid!), noticed);
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
    const pid = coord.pid!;
    const before = procSample(pid);
    const sentBefore = sent;
    const hbBefore = await metric(api, token, 'drover_heartbeats_total');
    const tS = performance.now();
    await sleep(STEADY_MS);
    const ms = performance.now() - tS;
    const after = procSample(pid);
    const hbAfter = await metric(api, token, 'drover_heartbeats_total');
    const handled =
      hbAfter !== undefined && hbBefore !== undefined ? ((hbAfter - hbBefore) * 1000) / ms : Number.NaN;
    clearInterval(hbTimer);
    const cpu = cpuPercent(before, after, ms);
    const rssMb = after.rssKb / 1024;
    const line = (k: string, v: string) => process.stdout.write(`  ${k.padEnd(44)} ${v}\n`);
    process.stdout.write(
      `N = ${n} simulated agents (${conns.length} NATS connections, ${PER_CONN} agents each), heartbeat ${HEARTBEAT_MS} ms\n`,
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
    line(
      'steady-state coordinator RSS',
      `${rssMb.toFixed(0)} MB (target < 1024 MB: ${rssMb < 1024 ? 'met' : 'MISSED'})`,
    );
    line(
      'heartbeats sent / handled per second',
      `${(((sent - sentBefore) * 1000) / ms).toFixed(0)} / ${Number.isNaN(handled) ? 'n/a' : handled.toFixed(0)} (expected ${((n * 1000) / HEARTBEAT_MS).toFixed(0)})`,
    );
    line(
      'CPU per 1,000 heartbeats/s',
      `${((cpu / ((n * 1000) / HEARTBEAT_MS)) * 1000).toFixed(2)} % of one core`,
    );
  } finally {
    clearInterval(hbTimer);
    for (const c of conns) await c.close().catch(() => {});
    coord.kill('SIGTERM');
    await new Promise((r) => coord.once('exit', r));
    nats.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function metric(api: string, token: string, name: string): Promise<number | undefined> {
  const r = await fetch(`${api}/metrics`, { headers: { authorization: `Bearer ${token}` } }).catch(
    () => undefined,
  );
  if (!r?.ok) return undefined;
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)$`, 'm').exec(await r.text());
  return m ? Number(m[1]) : undefined;
}

export async function run(): Promise<void> {
  for (const n of SIZES) await runSize(n);
}
