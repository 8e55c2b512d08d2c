// The cost of the bus's security (issue 15): registration throughput and steady coordinator CPU at
// 5,000 simulated agents WITH Drover's generated auth and TLS, beside the same run WITHOUT them,
// as ratios. Target: steady coordinator CPU under 10 % of one core at 5,000 agents (auth+TLS).
//
// The same scenario twice:
//   (a) auth+TLS: nats-server from `prepareBus` (operator/account JWTs, full resolver, TLS from
//       the bus CA); the coordinator with its creds and the bus CA (`--bus-dir`); every sim with
//       its own node user JWT (minted in memory, `BusAuth.nodeUser`) over tls://;
//   (b) plain: `nats-server -a 127.0.0.1 -p …` (no auth, no TLS), the coordinator with
//       `--bus-tls false` (it still offers its own creds: a server with no auth configured accepts
//       any client, whatever it presents — the run checks the coordinator is connected), sims
//       with no creds over nats://.
// Both: one NATS connection per sim (a node user may only use its own subjects, so sims cannot
// share connections; see bench/sim-fleet.ts), 64 registrations in flight, the registration limiter
// lifted (its default 20/s would make both runs measure the limiter), heartbeats at the default
// interval spread evenly.
//
// Measured: registrations/s = N / (first register request sent → last accepted reply); steady CPU
// of the COORDINATOR ONLY, from /proc/<pid>/stat of its child process (utime+stime) over
// BUS_BENCH_STEADY_MS (default 20 s) of heartbeats after a 5 s settle. The coordinator is a child
// process on purpose: the 5,000 sims (this process) and nats-server share the machine's cores with
// it, and their CPU (printed beside it) must not count as the coordinator's. On 2 cores they still
// compete for time, so the coordinator's figures are if anything pessimistic.
// Open files: one socket per sim here and in nats-server; the bench checks the limit and says
// what `ulimit -n` it needs.
import { cpus } from 'node:os';
import { DEFAULT_COORDINATOR_OPTIONS } from '../coordinator/config.js';
import { checkOpenFiles, cpuPercent, procSample, sleep, startNatsServer, startSecureNats } from './lib.js';
import {
  type CoordinatorProcess,
  closeSims,
  connectSims,
  metric,
  registerAll,
  type Sim,
  type SimBus,
  simId,
  startCoordinatorProcess,
  startHeartbeats,
} from './sim-fleet.js';

const N = Number(process.env.BUS_BENCH_N ?? 5000);
const HEARTBEAT_MS = DEFAULT_COORDINATOR_OPTIONS.heartbeatInterval;
const STEADY_MS = Number(process.env.BUS_BENCH_STEADY_MS ?? 20_000);
const SETTLE_MS = 5000;
const CPU_TARGET = 10;

interface Figures {
  /** minting the sims' node users ahead (BusAuth.nodeUser on every core); 0 on the plain bus */
  mintMs: number | undefined;
  connectMs: number;
  registerMs: number;
  regPerSec: number;
  /** % of one core during registration: coordinator, nats-server, the sims' process */
  regCpu: { coord: number; nats: number; sims: number };
  steadyMs: number;
  steadyCpu: { coord: number; nats: number; sims: number };
  rssMb: number;
  hbSentPerSec: number;
  hbHandledPerSec: number;
}

async function scenario(secure: boolean): Promise<Figures> {
  let stopNats = () => {};
  let natsPid = 0;
  let bus: SimBus & { url: string };
  let busDir: string | undefined;
  if (secure) {
    const s = await startSecureNats();
    stopNats = s.stop;
    natsPid = s.pid();
    bus = s;
    busDir = s.dir;
  } else {
    const p = await startNatsServer();
    stopNats = p.stop;
    natsPid = p.child.pid!;
    bus = { url: p.url };
  }
  let coord: CoordinatorProcess | undefined;
  let sims: Sim[] = [];
  let hb: ReturnType<typeof startHeartbeats> | undefined;
  try {
    coord = await startCoordinatorProcess({ natsUrl: bus.url, busDir, heartbeatMs: HEARTBEAT_MS });
    // /readyz answered: the coordinator is connected (on the plain bus: with creds the server ignores)
    if ((await metric(coord, 'drover_nats_connected')) === 0)
      throw new Error('the coordinator is not connected to nats-server');
    const tm = performance.now();
    await bus.prepareNodes?.(Array.from({ length: N }, (_, i) => simId(i)));
    const mintMs = secure ? performance.now() - tm : undefined;
    const tc = performance.now();
    sims = await connectSims(bus, N);
    const connectMs = performance.now() - tc;

    const sample = () => ({
      coord: procSample(coord!.pid),
      nats: procSample(natsPid),
      sims: process.cpuUsage(),
      t: performance.now(),
    });
    const cpuSince = (a: ReturnType<typeof sample>) => {
      const b = sample();
      const ms = b.t - a.t;
      const u = process.cpuUsage(a.sims);
      return {
        ms,
        coord: cpuPercent(a.coord, b.coord, ms),
        nats: cpuPercent(a.nats, b.nats, ms),
        sims: ((u.user + u.system) / 1000 / ms) * 100,
        rssKb: b.coord.rssKb,
      };
    };

    const r0 = sample();
    const registerMs = await registerAll(sims);
    const reg = cpuSince(r0);

    hb = startHeartbeats(sims, HEARTBEAT_MS);
    await sleep(SETTLE_MS);
    const s0 = sample();
    const sent0 = hb.sent();
    const hb0 = await metric(coord, 'drover_heartbeats_total');
    await sleep(STEADY_MS);
    const steady = cpuSince(s0);
    const sent1 = hb.sent();
    const hb1 = await metric(coord, 'drover_heartbeats_total');
    return {
      mintMs,
      connectMs,
      registerMs,
      regPerSec: (N * 1000) / registerMs,
      regCpu: { coord: reg.coord, nats: reg.nats, sims: reg.sims },
      steadyMs: steady.ms,
      steadyCpu: { coord: steady.coord, nats: steady.nats, sims: steady.sims },
      rssMb: steady.rssKb / 1024,
      hbSentPerSec: ((sent1 - sent0) * 1000) / steady.ms,
      hbHandledPerSec: hb0 !== undefined && hb1 !== undefined ? ((hb1 - hb0) * 1000) / steady.ms : Number.NaN,
    };
  } finally {
    hb?.stop();
    await closeSims(sims);
    await coord?.stop();
    stopNats();
  }
}

const f1 = (x: number) => (Number.isNaN(x) ? 'n/a' : x.toFixed(1));
const ratio = (a: number, b: number) => (b > 0 ? `${(a / b).toFixed(2)}×` : 'n/a');

export async function run(): Promise<void> {
  // sockets: N here (the sims), N in nats-server (it inherits this limit), and some slack
  checkOpenFiles(N + 500);
  const secure = await scenario(true);
  await sleep(2000);
  const plain = await scenario(false);
  const out = (s: string) => process.stdout.write(`${s}\n`);
  const line = (k: string, v: string) => out(`  ${k.padEnd(40)} ${v}`);
  out(
    `N = ${N} simulated agents, one NATS connection each, heartbeat ${HEARTBEAT_MS} ms (the default), 64 registrations in flight, registration limiter lifted; ${cpus().length} cores shared by nats-server, the coordinator (a child process: its CPU is from /proc/<pid>/stat) and the sims (this process). Run order: auth+TLS, then plain.`,
  );
  for (const [name, f] of [
    ['auth+TLS (tls://, node creds, bus CA)', secure],
    ['plain (nats://, no auth, no TLS)', plain],
  ] as const) {
    out(`${name}:`);
    if (f.mintMs !== undefined)
      line(
        'mint node users (bench set-up)',
        `${(f.mintMs / 1000).toFixed(2)} s (BusAuth.nodeUser, on ${cpus().length} cores)`,
      );
    line('connect all sims', `${(f.connectMs / 1000).toFixed(2)} s (32 at a time)`);
    line(
      'registration throughput',
      `${f.regPerSec.toFixed(0)} registrations/s (${N} in ${(f.registerMs / 1000).toFixed(2)} s, first request → last accepted reply)`,
    );
    line(
      '  CPU during registration',
      `coordinator ${f1(f.regCpu.coord)} %, nats-server ${f1(f.regCpu.nats)} %, sims ${f1(f.regCpu.sims)} % of one core`,
    );
    line(
      'steady coordinator CPU',
      `${f.steadyCpu.coord.toFixed(2)} % of one core over ${(f.steadyMs / 1000).toFixed(1)} s of heartbeats (after a ${SETTLE_MS / 1000} s settle)`,
    );
    line(
      '  beside it (steady)',
      `nats-server ${f1(f.steadyCpu.nats)} %, sims ${f1(f.steadyCpu.sims)} % of one core; coordinator RSS ${f.rssMb.toFixed(0)} MB`,
    );
    line(
      'heartbeats sent / handled per second',
      `${f.hbSentPerSec.toFixed(0)} / ${f1(f.hbHandledPerSec)} (expected ${((N * 1000) / HEARTBEAT_MS).toFixed(0)})`,
    );
  }
  out('ratios auth+TLS / plain:');
  line(
    'registration throughput',
    `${ratio(secure.regPerSec, plain.regPerSec)} (${secure.regPerSec.toFixed(0)} / ${plain.regPerSec.toFixed(0)} registrations/s)`,
  );
  line(
    'steady coordinator CPU',
    `${ratio(secure.steadyCpu.coord, plain.steadyCpu.coord)} (${secure.steadyCpu.coord.toFixed(2)} % / ${plain.steadyCpu.coord.toFixed(2)} %)`,
  );
  line(
    'steady nats-server CPU',
    `${ratio(secure.steadyCpu.nats, plain.steadyCpu.nats)} (${f1(secure.steadyCpu.nats)} % / ${f1(plain.steadyCpu.nats)} %)`,
  );
  const pass = secure.steadyCpu.coord < CPU_TARGET;
  out(
    `${pass ? 'PASS' : 'FAIL'}: steady coordinator CPU with auth+TLS at ${N} agents is ${secure.steadyCpu.coord.toFixed(2)} % of one core (target < ${CPU_TARGET} %${N === 5000 ? '' : `, set for 5,000 agents; this run had ${N}`})`,
  );
}
