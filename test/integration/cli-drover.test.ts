import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import type { CoordinatorHandle } from '../../coordinator/daemon.js';
import { echoTopology } from '../helpers/api.js';
import { type CliDaemon, DROVER, startCliDaemon } from '../helpers/cli-daemon.js';
import type { RunResult } from '../helpers/daemons.js';
import { waitFor } from '../helpers/servers.js';

let daemon: CliDaemon;
let coord: CoordinatorHandle;
let env: NodeJS.ProcessEnv;
let dir: string;

/** Runs the bundled CLI; never throws on a non-zero exit. */
const drover = (args: string[], extraEnv?: NodeJS.ProcessEnv): Promise<RunResult> =>
  daemon.drover(args, extraEnv);

beforeAll(async () => {
  daemon = await startCliDaemon({ name: 'cli', dataDir: 'data' }, [undefined, undefined, undefined]);
  ({ dir, coord, cliEnv: env } = daemon);
}, 60_000);

afterAll(() => daemon?.close());

describe('drover CLI against a running coordinator (real NATS, simulated agents)', () => {
  it('version and get nodes (table and -o json)', async () => {
    const v = await drover(['version']);
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(
      /^drover \d+\.\d+\.\d+[\s\S]*server http:\/\/127\.0\.0\.1:\d+: drover-coordinator \d/,
    );
    const t = await drover(['get', 'nodes']);
    expect(t.code).toBe(0);
    expect(t.stdout.split('\n')[0]).toMatch(/^NAME\s+STATUS\s+ADDRESS\s+CLUSTER\s+INSTANCES\s+HEARTBEAT$/);
    expect(t.stdout).toMatch(/n1\s+Ready\s+127\.0\.0\.2/);
    const j = await drover(['get', 'nodes', '-o', 'json']);
    expect(JSON.parse(j.stdout).items.map((n: { id: string }) => n.id)).toEqual(['n1', 'n2', 'n3']);
  });

  it('apply --wait converges, then get roles -o json shows the converged role', async () => {
    const file = join(dir, 'echo.yaml');
    writeFileSync(file, toYaml(echoTopology(2)));
    const diff = await drover(['diff', '-f', file]);
    expect(diff.code).toBe(0);
    expect(diff.stdout).toMatch(/\+ echo#0 on n\d/);
    expect(coord.engine.listTopologies()).toEqual([]);
    const a = await drover(['apply', '-f', file, '--wait', '--timeout', '60s']);
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toMatch(/topology "default" applied/);
    expect(a.stderr).toMatch(/cluster default to converge: done in/);
    const roles = await drover(['get', 'roles', '-o', 'json']);
    expect(roles.code).toBe(0);
    const items = JSON.parse(roles.stdout).items;
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({
      name: 'echo',
      status: 'Healthy',
      desired: 2,
      placed: 2,
      healthy: 2,
      simulated: 2,
    });
    const table = await drover(['get', 'roles']);
    expect(table.stdout).toMatch(/echo\s+default\s+Healthy\s+2\/2\s+2\/2\s+n\d \(sim\),n\d \(sim\)/);
    const asg = await drover(['get', 'assignments']);
    expect(asg.stdout).toMatch(/echo#0\s+n\d\s+\d+\s+Healthy\s+healthy\s+0\s+yes/);
    const st = await drover(['status', '-o', 'json']);
    expect(JSON.parse(st.stdout).converged).toBe(true);
  });

  it('cordon then drain --wait moves the instances off the node', async () => {
    const victim = coord.engine.allAssignments().find((x) => x.role === 'echo')!.nodeId;
    const c = await drover(['cordon', victim]);
    expect(c.code).toBe(0);
    expect(c.stdout).toMatch(new RegExp(`node ${victim} cordoned`));
    expect(JSON.parse((await drover(['get', 'nodes', victim, '-o', 'json'])).stdout).state).toBe('Cordoned');
    const d = await drover(['drain', victim, '--wait', '--timeout', '60s']);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stderr).toMatch(new RegExp(`node ${victim} to drain: done`));
    const after = JSON.parse((await drover(['get', 'assignments', '-o', 'json'])).stdout).items as Array<{
      nodeId: string;
    }>;
    expect(after).toHaveLength(2);
    expect(after.map((x) => x.nodeId)).not.toContain(victim);
    const agent = daemon.agents.find((x) => x.nodeId === victim)!;
    expect(agent.plan()?.instances ?? []).toEqual([]);
    const desc = await drover(['describe', 'node', victim]);
    expect(desc.stdout).toMatch(/Status:\s+Draining/);
    expect(desc.stdout).toMatch(/node\.draining/);
    const ev = await drover(['events', '--kind', 'role.moved']);
    expect(ev.stdout).toMatch(/role\.moved\s+echo#\d\s+echo#\d moved from/);
    await drover(['uncordon', victim]);
  });

  it('exit codes and errors say what to do next', async () => {
    const nf = await drover(['describe', 'node', 'ghost']);
    expect(nf.code).toBe(3);
    expect(nf.stderr).toMatch(/no node "ghost"[\s\S]*hint: list nodes with `drover get nodes`/);
    const unauth = await drover(['get', 'nodes'], { DROVER_TOKEN: 'drv_not-a-token' });
    expect(unauth.code).toBe(4);
    expect(unauth.stderr).toMatch(/invalid bearer token[\s\S]*hint: the token from DROVER_TOKEN was refused/);
    const none = await drover(['get', 'nodes'], { DROVER_TOKEN: '' });
    expect(none.code).toBe(4);
    expect(none.stderr).toMatch(/hint: pass --token, set DROVER_TOKEN/);
    const bad = join(dir, 'bad.yaml');
    const t = echoTopology(2);
    (t.roles as Record<string, unknown>).echo = { replicas: 'two' };
    writeFileSync(bad, toYaml(t));
    const b = await drover(['apply', '-f', bad]);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/roles\.echo\.replicas/);
    const missing = await drover(['apply', '-f', join(dir, 'nope.yaml')]);
    expect(missing.code).toBe(2);
    const big = join(dir, 'big.yaml');
    writeFileSync(big, toYaml(echoTopology(9)));
    // instances that cannot be placed end the wait at once (exit 1), not at the timeout (exit 5)
    const unplaceable = await drover(['apply', '-f', big, '--wait', '--timeout', '60s']);
    expect(unplaceable.code).toBe(1);
    expect(unplaceable.stderr).toMatch(
      /gave up waiting for cluster default to converge after [\d.]+m?s: 6 instance\(s\) cannot be placed/,
    );
    writeFileSync(big, toYaml(echoTopology(2)));
    expect((await drover(['apply', '-f', big, '--wait', '--timeout', '60s'])).code).toBe(0);
    const unreachable = await drover(['get', 'nodes'], { DROVER_URL: 'http://127.0.0.1:9' });
    expect(unreachable.code).toBe(1);
  });

  it('events --watch streams new events until interrupted', async () => {
    const child = spawn(process.execPath, [DROVER, 'events', '--watch', '--kind', 'node'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (b) => {
      out += b;
    });
    await waitFor('history printed', () => out.includes('SEQ'), { timeoutMs: 10_000 });
    await drover(['cordon', 'n3']);
    await waitFor('live event streamed', () => /node\.cordoned\s+node\/n3/.test(out), { timeoutMs: 10_000 });
    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    expect(code).toBe(0);
    await drover(['uncordon', 'n3']);
  });

  it('get nodes --watch prints changed rows; describe role, task, approve, move and repair', async () => {
    const child = spawn(process.execPath, [DROVER, 'get', 'nodes', '--watch', '--interval', '200'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (b) => {
      out += b;
    });
    await waitFor('first table', () => out.includes('NAME'), { timeoutMs: 10_000 });
    const first = out.length;
    await drover(['cordon', 'n2']);
    await waitFor('changed row', () => /n2\s+Cordoned/.test(out.slice(first)), { timeoutMs: 10_000 });
    expect(out.slice(first)).not.toMatch(/NAME/);
    child.kill('SIGINT');
    expect(await new Promise<number | null>((r) => child.once('exit', r))).toBe(0);
    await drover(['uncordon', 'n2']);

    const role = await drover(['describe', 'role', 'echo']);
    expect(role.code).toBe(0);
    expect(role.stdout).toMatch(/Name:\s+echo[\s\S]*Status:\s+Healthy[\s\S]*simulated stand-in/);

    const task = await drover(['task', 'n1', 'diagnostics', '--wait']);
    expect(task.code).toBe(0);
    expect(task.stdout).toMatch(/task [0-9a-f-]+ succeeded\nsimulated diagnostics/);
    expect((await drover(['get', 'tasks'])).stdout).toMatch(/n1\s+diagnostics\s+-\s+succeeded/);

    // p1 claims n1's host name: held Pending until approved
    await daemon.sim('p1', 9, undefined, 'sim-n1');
    expect(JSON.parse((await drover(['get', 'nodes', 'p1', '-o', 'json'])).stdout).state).toBe('Pending');
    expect((await drover(['approve', 'p1'])).stdout).toMatch(/node p1 approved/);
    await waitFor(
      'p1 Ready',
      async () => JSON.parse((await drover(['get', 'nodes', 'p1', '-o', 'json'])).stdout).state === 'Ready',
    );

    const on = coord.engine.allAssignments().find((a) => a.instanceId === 'echo#0')!.nodeId;
    const to = ['n1', 'n2', 'n3'].find((n) => !coord.engine.allAssignments().some((a) => a.nodeId === n))!;
    const mv = await drover(['move', 'echo#0', '--to', to]);
    if (typeof (coord.engine as unknown as { moveInstance?: unknown }).moveInstance === 'function')
      expect(mv.code).toBe(0);
    else {
      expect(mv.code).toBe(1);
      expect(mv.stderr).toMatch(/cannot move single instances yet; drain the node instead/);
      expect(coord.engine.allAssignments().find((a) => a.instanceId === 'echo#0')!.nodeId).toBe(on);
    }
    const rp = await drover(['repair', 'n1']);
    const e = coord.engine as unknown as { repairNode?: unknown; repair?: unknown };
    if (typeof e.repairNode === 'function' || typeof e.repair === 'function') expect(rp.code).toBe(0);
    else expect(rp.code).toBe(1);
  });

  it('tokens: an admin creates an operator token that cannot manage tokens', async () => {
    const c = await drover(['token', 'create', 'ci-bot', '--role', 'operator']);
    expect(c.code).toBe(0);
    const tok = c.stdout.trim();
    expect(tok).toMatch(/^drv_/);
    const forbidden = await drover(['get', 'tokens'], { DROVER_TOKEN: tok });
    expect(forbidden.code).toBe(4);
    expect(forbidden.stderr).toMatch(/role operator[\s\S]*needs admin/);
    const list = await drover(['get', 'tokens']);
    expect(list.stdout).toMatch(/ci-bot\s+operator/);
  });
});
