import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from '../../agent/agent.js';
import { ROOT_VAR } from '../../agent/applier.js';
import { encode, LAST_OUTPUT_MAX_LENGTH, type NodeStatus, subjects } from '../../protocol/index.js';
import type { NodeDetail } from '../../protocol/rest/schemas.js';
import { runDrover, writeTopology } from '../helpers/cli-daemon.js';
import { readyNodes, startJoinedAgents, startTestDaemon, type TestDaemon } from '../helpers/daemons.js';
import { rmrf } from '../helpers/proc.js';
import { freePort, waitFor } from '../helpers/servers.js';

/**
 * Issue 14, "bad input": a real component that exits on a bad flag crash-loops; `drover describe
 * node` shows the last lines of its stderr; nothing else moves because of it.
 *
 * Real nats-server, the real coordinator (in process, its REST API on a free port), two real
 * agents (process runtime) and the bundled `drover` CLI. The roles are custom: `web` serves HTTP,
 * `badflag` is a small server that refuses an unknown flag the way Go and Node CLIs do (message on
 * stderr, exit 2). The ladder's re-provision rung is shortened to 1 s in CrashLoop so the test
 * sees it act; its reassign rung keeps its default (2 minutes after a re-provision, see
 * docs/repair.md), so what this test pins is that a crash loop moves nothing else: not the other
 * instance on the node, not the node's liveness, not any assignment. The agent's restart policy
 * for `badflag` is 200 ms doubling, CrashLoop after 3 failed starts.
 */

const CLUSTER = 'crash';
const SUBNET = '127.0.93';

let d: TestDaemon;
let agents: Agent[];
let webPort = 0;
let badPort = 0;

const drover = (args: string[]) => runDrover(d.cliEnv, args);
const api = async <T>(path: string): Promise<T> => {
  const r = await fetch(`${d.coord.api.url}${path}`, {
    headers: { authorization: `Bearer ${d.adminToken}` },
  });
  expect(r.status, path).toBe(200);
  return (await r.json()) as T;
};

const SERVER = `const http = require('node:http');
const argv = process.argv.slice(2);
let port;
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--port') port = Number(argv[++i]);
  else {
    console.error('Error: unknown flag: ' + argv[i]);
    console.error('Usage: serve --port N');
    process.exit(2);
  }
}
http.createServer((req, res) => res.end('ok\\n')).listen(port, process.env.HOST);
`;

const role = (port: number, extra: string[]) => ({
  command: 'node',
  args: [`${ROOT_VAR}/opt/serve/serve.cjs`, '--port', String(port), ...extra],
  env: { HOST: '{{node.address}}' },
  files: [{ path: '/opt/serve/serve.cjs', mode: '0644', content: SERVER }],
  ports: [port],
  health: { kind: 'http', port, path: '/', period: 300, timeout: 300 },
});

function instance(n: NodeDetail, id: string) {
  const i = n.instances.find((x) => x.id === id);
  if (!i) throw new Error(`${id} not on ${n.id}: ${JSON.stringify(n.instances)}`);
  return i;
}

beforeAll(async () => {
  d = await startTestDaemon({
    name: 'crashlog',
    repair: { reprovisionAfterMs: 1000 },
  });
  agents = await startJoinedAgents(d.nats.url, [
    { nodeId: 'n-a', advertiseAddress: `${SUBNET}.2`, labels: { pool: 'w', 'drover.dev/cluster': CLUSTER } },
    { nodeId: 'n-b', advertiseAddress: `${SUBNET}.3`, labels: { pool: 'w', 'drover.dev/cluster': CLUSTER } },
  ]);
  await waitFor('2 Ready nodes', () => readyNodes(d.coord) === 2);
  webPort = await freePort();
  badPort = await freePort();
}, 60_000);

afterAll(async () => {
  await d?.coord.close();
  if (d) rmrf(d.dir);
});

describe('a role that exits on a bad flag (real agents, coordinator and CLI)', () => {
  it('crash-loops with its stderr in describe node; the other instance, the node and the placement stay', async () => {
    // both roles on n-a: n-b is cordoned while they are placed, then uncordoned as a spare
    expect((await drover(['cordon', 'n-b'])).code).toBe(0);
    const file = writeTopology(join(d.dir, 'crash.yaml'), CLUSTER, {
      customRoles: { web: role(webPort, []), badflag: role(badPort, ['--bogus']) },
      roles: {
        web: { replicas: 1 },
        badflag: {
          replicas: 1,
          repair: { restart: { initialBackoff: '200ms', maxBackoff: '1s', crashLoopThreshold: 3 } },
        },
      },
    });
    const applied = await drover(['apply', '-f', file]);
    expect(applied.code, applied.stderr).toBe(0);

    const crashing = await waitFor(
      'badflag#0 CrashLoop with its last output on n-a, web#0 Healthy',
      async () => {
        const n = await api<NodeDetail>('/v1/nodes/n-a');
        const bad = n.instances.find((i) => i.id === 'badflag#0');
        const web = n.instances.find((i) => i.id === 'web#0');
        return bad?.phase === 'CrashLoop' && bad.lastOutput && web?.phase === 'Healthy' ? n : undefined;
      },
      { timeoutMs: 30_000 },
    );
    const bad = instance(crashing, 'badflag#0');
    expect(bad.lastOutput).toContain('Error: unknown flag: --bogus');
    expect(bad.lastOutput).toContain('Usage: serve --port N');
    expect(bad.lastExitCode).toBe(2);
    expect(bad.lastError).toBe('exited with code 2');
    expect(instance(crashing, 'web#0')).not.toHaveProperty('lastOutput');

    const desc = await drover(['describe', 'node', 'n-a']);
    expect(desc.code, desc.stderr).toBe(0);
    expect(desc.stdout).toMatch(/badflag#0\s+\d+\s+CrashLoop/);
    expect(desc.stdout).toMatch(/web#0\s+\d+\s+Healthy/);
    expect(desc.stdout).toMatch(
      /\n {2}Last output of badflag#0 \(exit 2\):\n( {4}.*\n)* {4}Error: unknown flag: --bogus\n/,
    );
    expect(desc.stdout).not.toContain('Last output of web#0');
    const roleDesc = await drover(['describe', 'role', 'badflag', '--cluster', CLUSTER]);
    expect(roleDesc.code, roleDesc.stderr).toBe(0);
    expect(roleDesc.stdout).toMatch(/Status:\s+Degraded/);
    expect(roleDesc.stdout).toContain('    Error: unknown flag: --bogus\n');

    // From here n-b is a spare the ladder could move either role to.
    expect((await drover(['uncordon', 'n-b'])).code).toBe(0);
    const a = agents[0]!;
    const webPid = a.runtime.status('web#0')?.pid;
    expect(webPid).toBeGreaterThan(0);
    const before = d.coord.engine
      .currentAssignments(CLUSTER)
      .map((x) => `${x.instanceId}@${x.nodeId}/${x.epoch}`);
    expect(before.sort()).toEqual(['badflag#0@n-a/1', 'web#0@n-a/1']);
    const mark = d.coord.engine.events.lastSeq;

    // The ladder's second rung: after 1 s in CrashLoop the coordinator asks the agent to
    // re-provision badflag#0 (files rewritten, restarted). The ladder only moves when a cluster
    // reconcile runs, and a status report does not queue one, so the test queues one every
    // 300 ms, as node and topology changes do in a live fleet.
    const reconciles = setInterval(() => d.coord.engine.queue.add(`cluster:${CLUSTER}`), 300);
    let reprovisioned: number;
    try {
      reprovisioned = await waitFor(
        'a re-provision of badflag#0',
        () =>
          d.coord.engine.events
            .list({ kind: 'repair.reprovision', sinceSeq: mark })
            .find((e) => e.instanceId === 'badflag#0')?.seq,
        { timeoutMs: 30_000 },
      );
      // restarted with its files rewritten, it fails the same way: CrashLoop again, reported anew
      await waitFor(
        'badflag#0 CrashLoop again after the re-provision',
        () =>
          d.coord.engine.events
            .list({ kind: 'instance.unhealthy', sinceSeq: reprovisioned })
            .some((e) => e.instanceId === 'badflag#0' && /CrashLoop/.test(e.message)),
        { timeoutMs: 30_000 },
      );
    } finally {
      clearInterval(reconciles);
    }
    const n = await waitFor('badflag#0 CrashLoop with its last output in the node detail', async () => {
      const n = await api<NodeDetail>('/v1/nodes/n-a');
      const bad = instance(n, 'badflag#0');
      return bad.phase === 'CrashLoop' && bad.lastOutput?.includes('Error: unknown flag: --bogus')
        ? n
        : undefined;
    });

    // Nothing else moved: the same process serves web#0, healthy, never restarted; both nodes
    // Ready; every assignment where it was, same epoch; no reassignment, fencing or node trouble.
    expect(a.runtime.status('web#0')?.pid).toBe(webPid);
    expect(instance(n, 'web#0')).toMatchObject({ phase: 'Healthy', restarts: 0 });
    expect(await (await fetch(`http://${SUBNET}.2:${webPort}/`)).text()).toBe('ok\n');
    expect(n.state).toBe('Ready');
    expect(readyNodes(d.coord)).toBe(2);
    const after = d.coord.engine
      .currentAssignments(CLUSTER)
      .map((x) => `${x.instanceId}@${x.nodeId}/${x.epoch}`);
    expect(after.sort()).toEqual(before.sort());
    const kinds = d.coord.engine.events.list({ sinceSeq: mark }).map((e) => e.kind);
    const reprovisions = d.coord.engine.events.list({ kind: 'repair.reprovision', sinceSeq: mark });
    expect(new Set(reprovisions.map((e) => e.instanceId))).toEqual(new Set(['badflag#0']));
    for (const k of ['repair.reassign', 'role.moved', 'node.suspect', 'node.unreachable', 'node.draining'])
      expect(kinds).not.toContain(k);
    expect(agents[1]!.instanceStatuses()).toEqual([]);
  }, 150_000);

  it('a status whose last output breaks the schema is dropped whole; the node keeps its last good status', async () => {
    const good = d.coord.engine.nodes.liveness('n-a')?.status;
    expect(good).toBeDefined();
    const malformedBefore = d.coord.bus.counters.malformed;
    // the forged status goes out on n-a's own identity (only it may publish its status)
    const nc = await d.nats.connectAs({ nodeId: 'n-a' });
    try {
      const forged = (lastOutput: unknown): NodeStatus => {
        const st = structuredClone(good!);
        (st.instances.find((i) => i.id === 'badflag#0') as Record<string, unknown>).lastOutput = lastOutput;
        return st;
      };
      nc.publish(subjects.status('n-a'), encode(forged('x'.repeat(LAST_OUTPUT_MAX_LENGTH + 1))));
      nc.publish(subjects.status('n-a'), encode(forged({ lines: ['x'] })));
      nc.publish(subjects.status('n-a'), encode(forged('\u001b]0;pwned\u0007\u001b[2J')));
      await nc.flush();
    } finally {
      await nc.close();
    }
    await waitFor(
      '3 malformed statuses counted',
      () => d.coord.bus.counters.malformed >= malformedBefore + 3,
    );
    const n = await api<NodeDetail>('/v1/nodes/n-a');
    const out = instance(n, 'badflag#0').lastOutput ?? '';
    expect(out).toContain('Error: unknown flag: --bogus');
    expect(out.length).toBeLessThanOrEqual(LAST_OUTPUT_MAX_LENGTH);
    expect(out).not.toContain('\u001b');
    const desc = await drover(['describe', 'node', 'n-a']);
    expect(desc.code).toBe(0);
    expect(desc.stdout).not.toContain('pwned');
  });
});
