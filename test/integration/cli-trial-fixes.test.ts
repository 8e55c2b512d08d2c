/**
 * Regression tests for a new user's trial of Drover, replayed with the bundled `drover` CLI
 * against a real coordinator on a real nats-server: simulated agents for the coordinator's side,
 * and a real agent running a crashing process for the local-restart event.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import type { Agent } from '../../agent/agent.js';
import type { CoordinatorHandle } from '../../coordinator/daemon.js';
import type { Event } from '../../protocol/index.js';
import { echoTopology } from '../helpers/api.js';
import { type CliDaemon, DROVER, startCliDaemon, writeTopology } from '../helpers/cli-daemon.js';
import { type RunResult, runCaptured, startJoinedAgents } from '../helpers/daemons.js';
import { paiConfigDir } from '../helpers/openpai-fixtures.js';
import { rmrf } from '../helpers/proc.js';
import { waitFor } from '../helpers/servers.js';

let daemon: CliDaemon;
let coord: CoordinatorHandle;
let dir: string;
let natsUrl: string;
let token: string;

const drover = (args: string[]): Promise<RunResult> => daemon.drover(args);
const api = async (method: string, path: string, body?: unknown) => {
  const r = await fetch(`${coord.api.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: r.status, json: (await r.json()) as Record<string, unknown> };
};
const nodeOf = (id: string) => coord.engine.allAssignments().find((a) => a.instanceId === id)?.nodeId;
const events = (kind: string) =>
  coord.engine.events.list({ kind, limit: 1000 }).filter((e) => e.kind === kind) as Event[];
/** the cluster label every trial node carries but x1 (a node joins a cluster only explicitly) */
const PROD = { 'drover.dev/cluster': 'prod' };
/** `hostname`: a host name another node has in the cluster holds this one Pending */
const sim = (nodeId: string, i: number, labels: Record<string, string>, hostname?: string) =>
  daemon.sim(nodeId, i, labels, hostname);

beforeAll(async () => {
  daemon = await startCliDaemon({ name: 'cli-trial' });
  natsUrl = daemon.nats.url;
  ({ dir, coord, adminToken: token } = daemon);
  await sim('n1', 2, { pool: 'a', ...PROD });
  await sim('n2', 3, { pool: 'a', ...PROD });
  await sim('n3', 4, { pool: 'b', ...PROD });
  await waitFor('three Ready nodes', () => coord.engine.nodes.all().length === 3);
  // the nodes registered before any topology existed (labelled for prod: membership is explicit)
  await new Promise((r) => setTimeout(r, 500));
  const t = echoTopology(2, 'prod');
  (t.roles as Record<string, Record<string, unknown>>).echo!.nodeSelector = { pool: 'a' };
  const file = join(dir, 'prod.yaml');
  writeFileSync(file, toYaml(t));
  const a = await drover(['apply', '-f', file, '--wait', '--timeout', '60s']);
  expect(a.code, a.stderr).toBe(0);
}, 90_000);

afterAll(() => daemon?.close());

describe('a new user trial: drover against a running coordinator', () => {
  it('status lists only the clusters that exist (no phantom default 0/0)', async () => {
    const st = await drover(['status']);
    expect(st.code, st.stderr).toBe(0);
    expect(st.stdout).toMatch(/^prod\s+yes\s+1\/1/m);
    expect(st.stdout).not.toMatch(/^default\s/m);
    const j = JSON.parse((await drover(['status', '-o', 'json'])).stdout);
    expect(j.clusters.map((c: { name: string }) => c.name)).toEqual(['prod']);
    const roles = JSON.parse((await drover(['get', 'roles', '-o', 'json'])).stdout);
    expect(roles.items.map((r: { cluster: string }) => r.cluster)).toEqual(['prod']);
  });

  it('move to a node that cannot take the instance is refused at once, naming the reason', async () => {
    const on = nodeOf('echo#0')!;
    const other = on === 'n1' ? 'n2' : 'n1';
    const seq = coord.engine.events.list({ limit: 1 }).at(-1)?.seq ?? 0;

    // wrong pool: the selector does not match
    const pool = await drover(['move', 'echo#0', '--to', 'n3', '--wait', '--timeout', '20s']);
    expect(pool.code).toBe(1);
    expect(pool.stderr).toMatch(/echo#0: cannot move to n3: n3 does not match pool=a/);
    expect(pool.stderr).not.toMatch(/background/);
    // one per node: the other pool-a node already runs echo#1
    const spread = await drover(['move', 'echo#0', '--to', other]);
    expect(spread.code).toBe(1);
    expect(spread.stderr).toMatch(
      new RegExp(`cannot move to ${other}: ${other} already runs echo \\(one per node\\)`),
    );
    // REST: 409 with a stable code and the placement reason
    const r = await api('POST', '/v1/assignments/echo%230/move', { to: 'n3' });
    expect(r.status).toBe(409);
    expect(r.json).toMatchObject({
      code: 'DROVER_ERR_MOVE_REFUSED',
      details: { instanceId: 'echo#0', to: 'n3', reason: expect.stringMatching(/does not match pool=a/) },
    });

    // cordoned, Pending (not approved) and another cluster's node
    await sim('n4', 5, { pool: 'a', ...PROD });
    // p1 claims n1's host name: held Pending until approved
    await sim('p1', 6, { pool: 'a', ...PROD }, 'sim-n1');
    await sim('x1', 7, { pool: 'a', 'drover.dev/cluster': 'other' });
    await waitFor('n4 Ready', () => coord.engine.nodes.get('n4')?.state === 'Ready');
    await waitFor('p1 registered', () => coord.engine.nodes.get('p1') !== undefined);
    await waitFor('x1 registered', () => coord.engine.nodes.get('x1') !== undefined);
    expect((await drover(['cordon', 'n4'])).code).toBe(0);
    const cordoned = await drover(['move', 'echo#0', '--to', 'n4']);
    expect(cordoned.code).toBe(1);
    expect(cordoned.stderr).toMatch(/echo#0: cannot move to n4: n4 is Cordoned/);
    const pending = await drover(['move', 'echo#0', '--to', 'p1']);
    expect(pending.code).toBe(1);
    expect(pending.stderr).toMatch(/cannot move to p1: p1 is not approved/);
    const cluster = await drover(['move', 'echo#0', '--to', 'x1']);
    expect(cluster.code).toBe(1);
    expect(cluster.stderr).toMatch(/cannot move to x1: it is in cluster other, not prod/);

    // nothing was recorded, nothing moved
    expect(nodeOf('echo#0')).toBe(on);
    expect(coord.engine.events.list({ sinceSeq: seq, limit: 1000 }).map((e) => e.kind)).not.toContain(
      'role.move-requested',
    );

    // a node that can take it: the move happens and --wait sees it through
    expect((await drover(['uncordon', 'n4'])).code).toBe(0);
    const ok = await drover(['move', 'echo#0', '--to', 'n4', '--wait', '--timeout', '30s']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).toMatch(/echo#0 to run on n4: done/);
    expect(nodeOf('echo#0')).toBe('n4');
  }, 60_000);

  it('describe of a Pending node shows no applied plan and the fingerprint to check before approve', async () => {
    const d = await drover(['describe', 'node', 'p1']);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toMatch(/Status:\s+Pending/);
    expect(d.stdout).toMatch(/Applied:\s+none \(Pending approval/);
    expect(d.stdout).not.toMatch(/up to date/);
    expect(d.stdout).toMatch(/Machine id:\s+sim-machine-p1/);
    expect(d.stdout).toMatch(/Approved:\s+no: compare the fingerprint/);
    const wide = await drover(['get', 'nodes', '-o', 'wide']);
    expect(wide.stdout.split('\n')[0]).toMatch(/MACHINE-ID$/);
    expect(wide.stdout).toMatch(/^p1\s+Pending\s.*sim-machine-p1$/m);
    // an approved node with a plan still says up to date
    expect((await drover(['describe', 'node', 'n1'])).stdout).toMatch(/Applied:\s+\d+ \(up to date\)/);
  });

  it('repair NODE creates a task per instance with a result, events, and prints what it did', async () => {
    const node = nodeOf('echo#1')!;
    const seq = coord.engine.events.list({ limit: 1 }).at(-1)?.seq ?? 0;
    const r = await drover(['repair', node]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      new RegExp(
        `repair of node ${node}: re-provisioning 1 instance\\(s\\): echo#1 \\(task [0-9a-f-]{36}\\)`,
      ),
    );
    const taskId = /task ([0-9a-f-]{36})/.exec(r.stdout)![1]!;
    await waitFor('the re-provision task finished', async () => {
      const t = await api('GET', `/v1/tasks/${taskId}`);
      return t.json.state === 'succeeded';
    });
    const tasks = await drover(['get', 'tasks']);
    expect(tasks.stdout).toMatch(new RegExp(`${node}\\s+reprovision\\s+echo#1\\s+succeeded`));
    await waitFor('repair.succeeded', () => events('repair.succeeded').some((e) => e.seq > seq));
    const kinds = coord.engine.events
      .list({ sinceSeq: seq, limit: 1000 })
      .filter((e) => e.kind.startsWith('repair.'))
      .map((e) => `${e.kind} ${e.message}`);
    expect(kinds).toEqual([
      expect.stringMatching(new RegExp(`^repair.started repair of node ${node}: re-provisioning 1 instance`)),
      `repair.succeeded repair of node ${node} succeeded: re-provisioned echo#1`,
    ]);

    // --wait waits for the result and prints it
    const w = await drover(['repair', node, '--wait']);
    expect(w.code, w.stderr).toBe(0);
    expect(w.stdout).toMatch(
      new RegExp(
        `repair of node ${node} succeeded: re-provisioned echo#1\\n  \\+ echo#1: task [0-9a-f-]{36} succeeded`,
      ),
    );

    // a node without instances says so, with events too
    const empty = await drover(['repair', 'n3']);
    expect(empty.code).toBe(0);
    expect(empty.stdout).toMatch(/repair of node n3: it runs no instance, nothing to repair/);
    expect(events('repair.started').some((e) => e.nodeId === 'n3')).toBe(true);
  }, 60_000);
});

describe('topology warnings and the OpenPAI import', () => {
  it('an even etcd count is accepted with a quorum warning by diff/apply, and the same by the import', async () => {
    const file = writeTopology(join(dir, 'etcd4.yaml'), 'quorum', { roles: { etcd: { replicas: 4 } } });
    const d = await drover(['diff', '-f', file]);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stderr).toMatch(
      /^warning: roles\.etcd\.replicas: 4 etcd members tolerate 1 failure, like 3 \(quorum is 3 of 4\); use 3 or 5$/m,
    );
    const j = JSON.parse((await drover(['diff', '-f', file, '-o', 'json'])).stdout);
    expect(j.warnings).toEqual([expect.stringMatching(/4 etcd members tolerate 1 failure/)]);

    const two = paiConfigDir(
      [
        { hostname: 'n1', hostip: '127.0.0.2', role: 'master', etcdid: 'e1' },
        { hostname: 'n2', hostip: '127.0.0.3', role: 'master', etcdid: 'e2' },
      ],
      { lb: '10.9.9.9' },
    );
    try {
      const imp = await drover(['import', 'openpai', two]);
      expect(imp.code, imp.stderr).toBe(0);
      expect(imp.stderr).toMatch(
        /warning: .*2 masters \(n1, n2\) run etcd: 2 etcd members tolerate 0 failures, like 1/,
      );
    } finally {
      rmrf(two);
    }
  });

  it('import openpai --cluster names the cluster, flags unknown hostips, and pins per-node roles by node list', async () => {
    const cfg = paiConfigDir([
      { hostname: 'n1', hostip: '127.0.0.2', role: 'master', etcdid: 'e1' },
      { hostname: 'n2', hostip: '127.0.0.3', role: 'worker' },
      { hostname: 'n9', hostip: '127.0.0.99', role: 'worker' },
    ]);
    try {
      const imp = await drover(['import', 'openpai', cfg, '--cluster', 'trial', '-o', 'json']);
      expect(imp.code, imp.stderr).toBe(0);
      const doc = JSON.parse(imp.stdout);
      expect(doc.metadata.name).toBe('trial');
      expect(doc.roles.kubelet).toEqual({ everywhere: true, pins: ['n1', 'n2', 'n9'] });
      expect(imp.stderr).toMatch(
        /warning: 1 hostip of the machine list matches no node registered with the coordinator \(\d+ known\): 127\.0\.0\.99 \(n9\)/,
      );
      expect(imp.stderr).not.toMatch(/127\.0\.0\.2 /);
      // without a coordinator to ask, the import works offline and says nothing about hostips
      const offline = await runCaptured(process.execPath, [DROVER, 'import', 'openpai', cfg], {
        env: { PATH: process.env.PATH, HOME: dir },
        timeout: 30_000,
      });
      expect(offline.code, offline.stderr).toBe(0);
      expect(offline.stderr).not.toMatch(/hostip/);
    } finally {
      rmrf(cfg);
    }
  });
});

describe('a local restart by the agent raises an event (real agent, crashing process)', () => {
  let agent: Agent[] = [];
  afterAll(async () => {
    for (const a of agent) await a.close().catch(() => {});
    agent = [];
  });

  it('instance.restarted carries the restart count and the last exit reason', async () => {
    agent = await startJoinedAgents(natsUrl, [
      {
        nodeId: 'crash-1',
        advertiseAddress: '127.0.0.20',
        labels: { pool: 'crash', 'drover.dev/cluster': 'crash' },
      },
    ]);
    await waitFor('crash-1 Ready', () => coord.engine.nodes.get('crash-1')?.state === 'Ready');
    const file = writeTopology(join(dir, 'crash.yaml'), 'crash', {
      customRoles: {
        crasher: {
          command: process.execPath,
          args: ['-e', 'setTimeout(() => process.exit(3), 300)'],
        },
      },
      roles: {
        crasher: {
          replicas: 1,
          repair: {
            autoReassign: false,
            restart: { initialBackoff: '200ms', maxBackoff: '400ms', crashLoopThreshold: 50 },
          },
        },
      },
    });
    const a = await drover(['apply', '-f', file]);
    expect(a.code, a.stderr).toBe(0);
    await waitFor(
      'two instance.restarted events',
      () => events('instance.restarted').filter((e) => e.instanceId === 'crasher#0').length >= 2,
      { timeoutMs: 30_000 },
    );
    const ev = events('instance.restarted').filter((e) => e.instanceId === 'crasher#0');
    const counts = ev.map((e) => (e.data as { restarts: number }).restarts);
    expect(counts[1]!).toBeGreaterThan(counts[0]!);
    expect(ev[0]).toMatchObject({ nodeId: 'crash-1', role: 'crasher', severity: 'warning' });
    expect((ev[0]!.data as { lastError?: string }).lastError).toMatch(/exit|code 3|status 3/);
    expect(ev[0]!.message).toMatch(/^crasher#0 on crash-1 was restarted by the agent/);
    const cli = await drover(['events', '--kind', 'instance.restarted']);
    expect(cli.stdout).toMatch(/instance\.restarted\s+crasher#0/);
  }, 60_000);
});
