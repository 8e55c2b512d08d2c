import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { Fleet } from '../helpers/fleet.js';
import { waitFor } from '../helpers/proc.js';

/**
 * The safety rules of automatic repair, with real processes: a real nats-server, the coordinator
 * and four `drover-agent` processes on 127.0.72.2-5 running a user-defined HTTP role (`echo`,
 * two replicas, probed on /healthz).
 *
 * Short timings (the defaults are 2s / 10s / 5s): heartbeat 500ms, Unreachable after 2s,
 * reassign after 4s (a little longer than the other repair tests, so a 3 s blip that crosses
 * Unreachable has a clear margin before the reassign deadline), storm threshold 40%.
 */

const TOPOLOGY = `apiVersion: drover.dev/v1
kind: Topology
metadata: { name: rg }
cluster: { name: rg }
customRoles:
  echo:
    command: node
    args: ["\${DROVER_ROOT}/opt/echo/echo.cjs", "{{node.address}}", "8080"]
    files:
      - path: /opt/echo/echo.cjs
        mode: "0644"
        content: |
          const http = require('node:http');
          const [host, port] = process.argv.slice(2);
          http.createServer((req, res) => res.end('ok\\n')).listen(Number(port), host);
    ports: [8080]
    health: { kind: http, port: 8080, path: /healthz, period: 500ms, timeout: 400ms }
roles:
  echo: { replicas: 2 }
`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('repair safety (real agents; heartbeat 500ms, unreachable 2s, reassign 4s, storm threshold 40%)', () => {
  let fleet: Fleet;
  const figures: string[] = [];

  beforeAll(async () => {
    fleet = await Fleet.start({
      subnet: '127.0.72',
      cluster: 'rg',
      nodes: ['n-1', 'n-2', 'n-3', 'n-4'].map((id) => ({ id, pool: 'w' })),
      timings: { reassignAfter: '4s' },
    });
    await fleet.applyTopology(TOPOLOGY);
    await fleet.converged(40_000);
  }, 90_000);

  afterAll(() => {
    process.stdout.write(
      `\nFIGURES (repair-guards, 2-core CI, shortened timings):\n  ${figures.join('\n  ')}\n`,
    );
  });

  it('blip: a node silent for less than the grace period (1.5 s, then 3 s crossing Unreachable) keeps its instances', async () => {
    onTestFailed(() => {
      process.stderr.write(`\n${fleet.logs()}\n`);
    });
    const before = await fleet.assignments();
    const victim = before.find((a) => a.instanceId === 'echo#0')!.nodeId;
    const pids = fleet.roles(victim).map((r) => r.pid);
    expect(pids).toHaveLength(1);
    const seq = fleet.lastSeq;

    // 1.5 s: Suspect at most (3 missed heartbeats), never Unreachable
    fleet.pause(victim);
    await sleep(1500);
    fleet.resume(victim);
    await sleep(1500);
    // 3 s: Unreachable after 2 s, back 1 s later — well before the 4 s reassign deadline
    fleet.pause(victim);
    await fleet.waitEvent(
      `${victim} Unreachable`,
      (e) => e.kind === 'node.unreachable' && e.nodeId === victim && e.seq > seq,
      3000,
    );
    await sleep(3000 - 2000);
    fleet.resume(victim);
    await waitFor(
      `${victim} Ready again`,
      async () => (await fleet.api<{ state: string }>('GET', `/v1/nodes/${victim}`)).state === 'Ready',
    );
    // past the point where a reassignment would have fired had the node stayed silent
    await sleep(5000);

    const after = await fleet.assignments();
    expect(after.map((a) => [a.instanceId, a.nodeId, a.epoch])).toEqual(
      before.map((a) => [a.instanceId, a.nodeId, a.epoch]),
    );
    const kinds = fleet.events.filter((e) => e.seq > seq).map((e) => e.kind);
    expect(kinds).toContain('node.unreachable');
    expect(kinds).not.toContain('role.moved');
    expect(kinds).not.toContain('repair.reassign');
    // the role processes ran on untouched through both blips
    expect(fleet.roles(victim).map((r) => r.pid)).toEqual(pids);
    await fleet.converged(10_000);
    figures.push(`blips of 1.5 s and 3 s: 0 reassignments (events: ${kinds.join(', ')})`);
  }, 60_000);

  it('storm: half the nodes die at once → reassignment pauses with an alert; `drover repair NODE --force` proceeds', async () => {
    onTestFailed(() => {
      process.stderr.write(`\n${fleet.logs()}\n`);
    });
    const before = await fleet.assignments();
    const hosts = before.map((a) => a.nodeId);
    expect(new Set(hosts).size).toBe(2);
    const seq = fleet.lastSeq;
    const t0 = Date.now();
    // both echo hosts: the service is down and only a repair brings it back
    await Promise.all(hosts.map((h) => fleet.kill(h)));

    const paused = await fleet.waitEvent(
      'repair.paused',
      (e) => e.kind === 'repair.paused' && e.seq > seq,
      15_000,
    );
    expect(paused.severity).toBe('error');
    expect(paused.message).toMatch(/2 of 4 nodes \(50%\).*40% storm threshold/);
    // wait well past Unreachable (2 s) + reassign (4 s): nothing moves on its own
    await sleep(Math.max(0, t0 + 9000 - Date.now()));
    expect(fleet.events.filter((e) => e.seq > seq && e.kind === 'role.moved')).toEqual([]);
    expect((await fleet.assignments()).map((a) => a.nodeId)).toEqual(hosts);
    const roles = await fleet.api<{ items: Array<{ name: string; status: string }> }>('GET', '/v1/roles');
    expect(roles.items.find((r) => r.name === 'echo')?.status).toBe('Degraded');

    // The operator overrides the guard for one node through the CLI.
    const r = await fleet.cli(['repair', hosts[0]!, '--force']);
    expect(r.code, r.stderr).toBe(0);
    const forced = await fleet.waitEvent(
      'repair.forced',
      (e) => e.kind === 'repair.forced' && e.seq > seq,
      5000,
    );
    expect(forced.severity).toBe('warning');
    await fleet.waitEvent(
      `echo on ${hosts[0]} to move`,
      (e) => e.kind === 'role.moved' && (e.data as { from?: string })?.from === hosts[0],
      10_000,
    );
    // the override holds for both dead nodes: the whole role comes back on the survivors
    await waitFor(
      'both echo instances healthy on the surviving nodes',
      async () => {
        const now = await fleet.assignments();
        return now.every((a) => !hosts.includes(a.nodeId) && a.phase === 'Healthy') && now.length === 2;
      },
      { timeoutMs: 20_000, intervalMs: 100 },
    );
    const restored = Date.now();
    const kinds = fleet.events.filter((e) => e.seq > seq).map((e) => e.kind);
    expect(kinds).toEqual(
      expect.arrayContaining([
        'repair.paused',
        'repair.started',
        'repair.forced',
        'repair.reassign',
        'role.moved',
      ]),
    );
    figures.push(
      `storm (2 of 4 nodes killed): paused ${((paused.time ? Date.parse(paused.time) : t0) - t0) / 1000}s after the kill; forced repair restored both instances ${((restored - t0) / 1000).toFixed(1)}s after the kill`,
    );
  }, 60_000);
});
