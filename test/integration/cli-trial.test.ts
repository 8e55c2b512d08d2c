/**
 * A new user's trial of the `drover` CLI, replayed against the real bundled CLI (dist/drover.mjs)
 * and a real coordinator on real NATS with simulated agents: closed pipes, a frozen server, exit
 * codes scripts rely on, table output, errors in the user's terms and the commands a kubectl user
 * looks for.
 */
import { writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import type { CoordinatorHandle } from '../../coordinator/daemon.js';
import { echoTopology } from '../helpers/api.js';
import { type RunResult, readyNodes, runCaptured, startTestDaemon } from '../helpers/daemons.js';
import { rmrf } from '../helpers/proc.js';
import { waitFor } from '../helpers/servers.js';
import { type SimAgent, startSimAgent } from '../helpers/sim-agent.js';
import { DROVER, spawnDrover, waitExit } from './cli-trial-helpers.js';

let coord: CoordinatorHandle;
let agents: SimAgent[] = [];
let env: NodeJS.ProcessEnv;
let dir: string;

async function drover(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return runCaptured(process.execPath, [DROVER, ...args], { env: { ...env, ...extraEnv }, timeout: 90_000 });
}

beforeAll(async () => {
  const d = await startTestDaemon({
    name: 'cli-trial',
    config: { heartbeatInterval: '300ms', pushTimeout: '3s' },
  });
  ({ dir, coord, cliEnv: env } = d);
  for (const [i, id] of ['n1', 'n2', 'n3'].entries())
    agents.push(
      await startSimAgent({
        natsUrl: d.nats.url,
        nodeId: id,
        address: `127.0.0.${i + 2}`,
        joinToken: 'join-secret',
        heartbeatMs: 300,
      }),
    );
  await waitFor('three Ready nodes', () => readyNodes(coord) === 3);
}, 60_000);

afterAll(async () => {
  for (const a of agents) await a.close();
  agents = [];
  await coord?.close();
  rmrf(dir);
});

describe('closed stdout (drover status | head -2)', () => {
  for (const args of [['status'], ['get', 'nodes'], ['--help'], ['events']]) {
    it(`drover ${args.join(' ')} exits quietly when the reader has gone`, async () => {
      const child = spawnDrover(args, env);
      child.stdout!.destroy();
      const r = await waitExit(child);
      expect(r.stderr).not.toMatch(/EPIPE|Unhandled|at .*\.mjs/);
      expect(r.code).toBe(0);
    });
  }

  it('events --watch exits quietly when the reader closes after the first chunk', async () => {
    const child = spawnDrover(['events', '--watch'], env);
    const exited = waitExit(child);
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    child.stdout!.destroy();
    // new events make the watch write again, into the closed pipe
    for (let i = 0; i < 3 && child.exitCode === null; i++) {
      await drover(['cordon', 'n3']);
      await drover(['uncordon', 'n3']);
    }
    const r = await exited;
    expect(r.stderr).not.toMatch(/EPIPE|Unhandled|at .*\.mjs/);
    expect(r.code).toBe(0);
  });
});

describe('request timeout against a frozen coordinator', () => {
  let frozen: Server;
  const sockets: Socket[] = [];
  let url: string;
  beforeAll(async () => {
    // accepts connections and never answers, like a SIGSTOPped coordinator
    frozen = createServer((s) => {
      sockets.push(s);
      s.on('error', () => {});
    });
    await new Promise<void>((r) => frozen.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(frozen.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => frozen.close(r));
  });

  it('get nodes gives up after --request-timeout with exit 5, naming the server and the timeout', async () => {
    const t0 = Date.now();
    const r = await drover(['get', 'nodes', '--request-timeout', '1s'], { DROVER_URL: url });
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(r.code).toBe(5);
    expect(r.stderr).toContain(`${url} did not answer GET /v1/nodes within 1s (request timeout)`);
    expect(r.stderr).toMatch(/--request-timeout/);
  });

  it('the CLI config file sets it too (requestTimeout), and a bad value is a usage error', async () => {
    const cfg = join(dir, 'cli-config.yaml');
    writeFileSync(cfg, `server: ${url}\nrequestTimeout: 800ms\n`);
    const r = await drover(['status', '--config', cfg], { DROVER_URL: '' });
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/did not answer GET \/v1\/status within 800ms/);
    const bad = await drover(['get', 'nodes', '--request-timeout', 'soon'], { DROVER_URL: url });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/request timeout "soon" \(from --request-timeout\) is not a duration/);
  });

  it('a live coordinator answers within the default timeout', async () => {
    const r = await drover(['get', 'nodes']);
    expect(r.code).toBe(0);
  });
});

/** Each column of a table row starts where its header does. */
function columnsAligned(text: string, header: string[]): void {
  const lines = text.split('\n').filter((l) => l.trim());
  const head = lines.findIndex((l) => l.startsWith(header[0]!));
  expect(head).toBeGreaterThanOrEqual(0);
  const starts = header.slice(1).map((h) => lines[head]!.indexOf(h));
  for (const l of lines.slice(head + 1))
    for (const at of starts) {
      expect(l[at - 1], `column at ${at} of ${JSON.stringify(l)}`).toBe(' ');
      expect(l[at], `column at ${at} of ${JSON.stringify(l)}`).not.toBe(' ');
    }
}

describe('exit codes scripts can rely on', () => {
  it('apply with unplaceable instances applies, lists them and exits 1; status exits 1 with the reasons', async () => {
    const file = join(dir, 'echo9.yaml');
    writeFileSync(file, toYaml(echoTopology(9)));
    const a = await drover(['apply', '-f', file]);
    expect(a.code, a.stderr).toBe(1);
    expect(a.stdout).toMatch(/topology "default" applied/);
    expect(a.stderr).toMatch(/6 instance\(s\) cannot be placed; the topology was applied all the same/);
    expect(a.stderr).toMatch(/echo#\d cannot be placed: /);
    expect(
      (coord.engine.topology('default') as { roles: { echo: { replicas: number } } }).roles.echo.replicas,
    ).toBe(9);
    await waitFor('unplaced recorded', () => coord.engine.unplacedFor('default').length === 6);

    const st = await drover(['status']);
    expect(st.code).toBe(1);
    expect(st.stdout).toMatch(/^converging/);
    expect(st.stdout).toMatch(/6 instance\(s\) cannot be placed:\n {2}echo#\d cannot be placed: /);
    const sj = await drover(['status', '-o', 'json']);
    expect(sj.code).toBe(1);
    expect(JSON.parse(sj.stdout).converged).toBe(false);
  });

  it('apply --wait fails fast (exit 1) once the coordinator reports instances it cannot place', async () => {
    const file = join(dir, 'echo9.yaml');
    const t0 = Date.now();
    const w = await drover(['apply', '-f', file, '--wait', '--timeout', '2m']);
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(w.code).toBe(1);
    expect(w.stderr).toMatch(
      /gave up waiting for cluster default to converge after .*: 6 instance\(s\) cannot be placed/,
    );
    expect(w.stderr).not.toMatch(/timed out/);
    const sw = await drover(['status', '--wait', '--timeout', '2m']);
    expect(sw.code).toBe(1);
    expect(sw.stderr).toMatch(/cannot be placed/);
  });

  it('get roles cuts REASONS with an ellipsis in the table; -o wide and json show them all', async () => {
    const t = await drover(['get', 'roles']);
    expect(t.code).toBe(0);
    const row = t.stdout.split('\n').find((l) => l.startsWith('echo'))!;
    const reasons = row.slice(t.stdout.split('\n')[0]!.indexOf('REASONS'));
    expect(reasons).toHaveLength(60);
    expect(reasons.endsWith('…')).toBe(true);
    const wide = await drover(['get', 'roles', '-o', 'wide']);
    const full = JSON.parse((await drover(['get', 'roles', '-o', 'json'])).stdout).items[0]
      .reasons as string[];
    expect(full).toHaveLength(6);
    expect(wide.stdout).toContain(full.join('; '));
  });

  it('a converged apply --wait and status exit 0', async () => {
    const file = join(dir, 'echo2.yaml');
    writeFileSync(file, toYaml(echoTopology(2)));
    const a = await drover(['apply', '-f', file, '--wait', '--timeout', '60s']);
    expect(a.code, a.stderr).toBe(0);
    const st = await drover(['status']);
    expect(st.code, st.stdout).toBe(0);
    expect(st.stdout).toMatch(/^converged/);
  });
});

describe('streaming tables', () => {
  it('events --watch keeps its columns aligned after the first row', async () => {
    const child = spawnDrover(['events', '--watch'], env);
    const exited = waitExit(child);
    let out = '';
    child.stdout!.on('data', (b) => {
      out += b;
    });
    await waitFor('history printed', () => out.includes('SEQ'), { timeoutMs: 10_000 });
    await drover(['cordon', 'n2']);
    await drover(['uncordon', 'n2']);
    await waitFor('live events', () => /node\.uncordoned/.test(out), { timeoutMs: 10_000 });
    child.kill('SIGINT');
    expect((await exited).code).toBe(0);
    columnsAligned(out, ['SEQ', 'TIME', 'SEVERITY', 'KIND', 'OBJECT', 'MESSAGE']);
  });

  it('get nodes --watch keeps its columns aligned for changed rows', async () => {
    const child = spawnDrover(['get', 'nodes', '--watch', '--interval', '200'], env);
    const exited = waitExit(child);
    let out = '';
    child.stdout!.on('data', (b) => {
      out += b;
    });
    await waitFor('first table', () => out.includes('NAME'), { timeoutMs: 10_000 });
    await drover(['cordon', 'n1']);
    await waitFor('changed row', () => /n1\s+Ready,Cordoned|n1\s+Cordoned/.test(out), { timeoutMs: 10_000 });
    await drover(['uncordon', 'n1']);
    child.kill('SIGINT');
    expect((await exited).code).toBe(0);
    columnsAligned(out, ['NAME', 'STATUS', 'ADDRESS', 'CLUSTER', 'INSTANCES', 'HEARTBEAT']);
  });
});
