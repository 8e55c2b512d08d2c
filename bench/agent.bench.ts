// Idle cost of drover-agent: RSS and CPU of the real bundled daemon at a 2 s heartbeat while it
// is connected to the secure bus (node creds over TLS) and
// supervises 5 instances (sleep processes), sampled from /proc over ~20 s after a warm-up.
// Targets (issue 3): RSS <= 80 MB, CPU <= 1 % of one core.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fmtCreds } from '@nats-io/jwt';
import { createUser } from '@nats-io/nkeys';
import { connect } from 'nats';
import YAML from 'yaml';
import {
  decodeMessage,
  encode,
  generateSigningKey,
  PROTOCOL_VERSION,
  type RegisterReply,
  signPlan,
  subjects,
} from '../protocol/index.js';
import { sampleInstance, samplePlan } from '../test/helpers/fixtures.js';
import { cpuPercent, procSample, sleep, startSecureNats, waitUntil } from './lib.js';

const MEASURE_MS = Number(process.env.AGENT_BENCH_MS ?? 20_000);
const WARMUP_MS = 3000;
const INSTANCES = 5;

export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'drover-agent-bench-'));
  const children: ChildProcess[] = [];
  const rolePids: number[] = [];
  let stopNats = () => {};
  try {
    // the secure bus (Drover's generated auth and TLS): the fake coordinator below connects as the
    // coordinator identity; the agent as its node (a creds file as a join writes it, the bus CA)
    const nats = await startSecureNats();
    stopNats = nats.stop;
    const url = nats.url;
    const nc = await connect({
      servers: url,
      authenticator: nats.coordinatorAuth(),
      tls: { caFile: nats.caFile },
    });

    const nodeId = 'bench-node';
    const kp = createUser();
    const credsFile = join(dir, 'bus.creds');
    writeFileSync(credsFile, fmtCreds((await nats.bus.auth.nodeUser(nodeId, kp.getPublicKey())).jwt, kp), {
      mode: 0o600,
    });
    const key = generateSigningKey();
    const plan = signPlan(
      samplePlan({
        nodeId,
        instances: Array.from({ length: INSTANCES }, (_, i) =>
          sampleInstance({
            id: `idle#${i}`,
            role: 'idle',
            files: [],
            run: { command: '/bin/sleep', args: ['100000'], env: {} },
            health: undefined,
          }),
        ),
      }),
      key,
    );
    let heartbeats = 0;
    let statuses = 0;
    let running = 0;
    nc.subscribe(subjects.registerAll(), {
      callback: (_e, m) => {
        const r = decodeMessage('Register', m.data);
        const reply: RegisterReply = {
          v: PROTOCOL_VERSION,
          type: 'register-reply',
          accepted: true,
          nodeId: r.nodeId,
          state: 'Ready',
          coordinatorEpoch: 1,
          signingKey: key.publicKeyB64,
          keyFingerprint: key.fingerprint,
          heartbeatIntervalMs: 2000,
          plan,
        };
        m.respond(encode(reply));
      },
    });
    nc.subscribe(subjects.heartbeat(nodeId), { callback: () => heartbeats++ });
    nc.subscribe(subjects.status(nodeId), {
      callback: (_e, m) => {
        statuses++;
        const s = decodeMessage('NodeStatus', m.data);
        running = s.instances.filter((i) => i.phase === 'Running').length;
        for (const i of s.instances) if (i.pid && !rolePids.includes(i.pid)) rolePids.push(i.pid);
      },
    });

    const config = join(dir, 'agent.yaml');
    writeFileSync(
      config,
      YAML.stringify({
        nodeId,
        nats: { servers: [url], credsFile, tls: { ca: nats.caFile } },
        coordinatorKeyFingerprint: key.fingerprint,
        dataDir: join(dir, 'data'),
        rootDir: join(dir, 'root'),
        runtime: 'process',
        heartbeatInterval: '2s',
        logLevel: 'warn',
      }),
    );
    const bundle = new URL('../dist/drover-agent.mjs', import.meta.url).pathname;
    const agent = spawn(process.execPath, [bundle, '--config', config], { stdio: 'ignore' });
    children.push(agent);
    await waitUntil(`${INSTANCES} instances running`, () => running === INSTANCES, 20_000, 100);
    await sleep(WARMUP_MS);

    const pid = agent.pid!;
    const first = procSample(pid);
    const hb0 = heartbeats;
    const st0 = statuses;
    const t0 = Date.now();
    let maxRss = first.rssKb;
    let sumRss = 0;
    let n = 0;
    while (Date.now() - t0 < MEASURE_MS) {
      await sleep(1000);
      const s = procSample(pid);
      maxRss = Math.max(maxRss, s.rssKb);
      sumRss += s.rssKb;
      n++;
    }
    const last = procSample(pid);
    const elapsedMs = Date.now() - t0;
    const elapsedS = elapsedMs / 1000;
    const cpuPct = cpuPercent(first, last, elapsedMs);
    const avgRssMb = sumRss / n / 1024;
    const maxRssMb = maxRss / 1024;
    const ok = (v: boolean) => (v ? 'within target' : 'OVER TARGET');
    process.stdout.write(
      [
        `drover-agent idle, process runtime, ${INSTANCES} supervised sleep instances, heartbeat 2 s, measured ${elapsedS.toFixed(1)} s after a ${WARMUP_MS / 1000} s warm-up`,
        `  RSS  avg ${avgRssMb.toFixed(1)} MB, max ${maxRssMb.toFixed(1)} MB   (target <= 80 MB: ${ok(maxRssMb <= 80)})`,
        `  CPU  ${cpuPct.toFixed(2)} % of one core (${last.ticks - first.ticks} ticks of 10 ms)   (target <= 1 %: ${ok(cpuPct <= 1)})`,
        `  traffic in the window: ${heartbeats - hb0} heartbeats, ${statuses - st0} status messages (status only on change)`,
        '',
      ].join('\n'),
    );
    agent.kill('SIGTERM');
    await new Promise((r) => agent.once('exit', r));
    await nc.close();
  } finally {
    for (const pid of rolePids) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {}
    }
    for (const c of children) c.kill('SIGKILL');
    stopNats();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
