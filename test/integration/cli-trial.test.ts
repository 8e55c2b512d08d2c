/**
 * A new user's trial of the `drover` CLI, replayed against the real bundled CLI (dist/drover.mjs)
 * and a real coordinator on real NATS with simulated agents: closed pipes, a frozen server, exit
 * codes scripts rely on, table output, errors in the user's terms and the commands a kubectl user
 * looks for.
 */
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import type { CoordinatorHandle } from '../../coordinator/daemon.js';
import { echoTopology } from '../helpers/api.js';
import { type CliDaemon, startCliDaemon } from '../helpers/cli-daemon.js';
import { type RunResult, runCaptured } from '../helpers/daemons.js';
import { waitFor } from '../helpers/servers.js';
import { DROVER, spawnDrover, waitExit } from './cli-trial-helpers.js';

let daemon: CliDaemon;
let coord: CoordinatorHandle;
let env: NodeJS.ProcessEnv;
let dir: string;

const drover = (args: string[], extraEnv?: NodeJS.ProcessEnv): Promise<RunResult> =>
  daemon.drover(args, extraEnv);

beforeAll(async () => {
  daemon = await startCliDaemon({ name: 'cli-trial' }, [
    { pool: 'control-plane', zone: 'a' },
    { pool: 'control-plane', zone: 'b' },
    { pool: 'worker', zone: 'a', gpu: 'true' },
  ]);
  ({ dir, coord, cliEnv: env } = daemon);
}, 60_000);

afterAll(() => daemon?.close());

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

  it('task --wait allows for the task timeout (the server holds the request until the task ends)', async () => {
    // a coordinator whose task takes 1.5 s to finish, as POST /v1/tasks?wait=true answers then
    const slow = createHttpServer((req, res) => {
      setTimeout(() => {
        res.setHeader('content-type', 'application/json');
        res.end(
          JSON.stringify({
            id: 't-1',
            state: 'succeeded',
            request: { nodeId: 'n1', kind: 'diagnostics' },
            createdAt: new Date().toISOString(),
            result: { output: 'slow diagnostics' },
          }),
        );
      }, 1500);
      req.resume();
    });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    try {
      const u = `http://127.0.0.1:${(slow.address() as { port: number }).port}`;
      const r = await drover(
        ['task', 'n1', 'diagnostics', '--wait', '--timeout', '2s', '--request-timeout', '1s'],
        {
          DROVER_URL: u,
        },
      );
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/task t-1 succeeded\nslow diagnostics/);
      const plain = await drover(['get', 'tasks', '--request-timeout', '1s'], { DROVER_URL: u });
      expect(plain.code).toBe(5);
    } finally {
      await new Promise((r) => slow.close(r));
    }
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
    expect(coord.engine.topology('default')?.roles.echo?.replicas).toBe(9);
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
    // identical reasons are merged into one line naming every instance (placement/explain.ts)
    expect(full).toHaveLength(1);
    expect(full[0]).toMatch(/^echo#3, echo#4, echo#5 and 3 more unschedulable: /);
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

describe('stdin', () => {
  it('diff -f - still reads a slowly piped topology (the tty check must not make stdin non-blocking)', async () => {
    const file = join(dir, 'piped.yaml');
    writeFileSync(file, toYaml(echoTopology(2)));
    const r = await runCaptured(
      '/bin/sh',
      ['-c', `(sleep 1; cat '${file}') | '${process.execPath}' '${DROVER}' diff -f -`],
      {
        env,
        timeout: 30_000,
      },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/topology "default":/);
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

describe("errors in the user's terms", () => {
  it('move with a role name instead of an instance id says what an instance id looks like', async () => {
    const r = await drover(['move', 'kube-apiserver', '--to', 'n3']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /"kube-apiserver" is not an instance id; an instance id is <role>#<ordinal>, e\.g\. kube-apiserver#2/,
    );
    expect(r.stderr).not.toMatch(/\^\[a-z0-9\]|does not match/);
  });

  it('token create with an unknown role lists the allowed roles; the role default is in the help', async () => {
    const r = await drover(['token', 'create', 'x', '--role', 'superuser']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/"superuser" is not one of: viewer, operator, admin/);
    expect((await drover(['get', 'tokens'])).stdout).not.toMatch(/^\S+\s+x\s/m);
    const help = await drover(['token', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--role viewer\|operator\|admin\s+.*default viewer/);
  });

  it('token names are unique (409); delete takes a name; an unknown name points at drover get tokens', async () => {
    const a = await drover(['token', 'create', 'build-bot', '--role', 'operator']);
    expect(a.code, a.stderr).toBe(0);
    const dup = await drover(['token', 'create', 'build-bot', '--role', 'viewer']);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toMatch(/an API token named "build-bot" exists already \(id \w+, role operator\)/);
    const raw = await fetch(`${coord.api.url}/v1/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${env.DROVER_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'build-bot', role: 'viewer' }),
    });
    expect(raw.status).toBe(409);
    expect(((await raw.json()) as { code: string }).code).toBe('DROVER_ERR_TOKEN_EXISTS');
    expect(coord.api.tokens.list().filter((t) => t.name === 'build-bot')).toHaveLength(1);

    const ghost = await drover(['token', 'delete', 'ghost-bot']);
    expect(ghost.code).toBe(3);
    expect(ghost.stderr).toMatch(
      /no API token with id or name "ghost-bot"; list them with `drover get tokens`/,
    );
    expect(ghost.stderr).not.toMatch(/\/v1\/tokens/);
    const del = await drover(['token', 'delete', 'build-bot']);
    expect(del.code, del.stderr).toBe(0);
    expect(del.stdout).toMatch(/token \w+ \(build-bot\) deleted/);
    expect(coord.api.tokens.list().some((t) => t.name === 'build-bot')).toBe(false);
  });

  it('an unauthenticated request is not told where the admin token file is on the server', async () => {
    const raw = await fetch(`${coord.api.url}/v1/nodes`);
    expect(raw.status).toBe(401);
    const body = (await raw.json()) as { message: string };
    expect(body.message).not.toContain(dir);
    expect(body.message).not.toMatch(/admin-token/);
    const r = await drover(['get', 'nodes'], { DROVER_TOKEN: '' });
    expect(r.code).toBe(4);
    expect(r.stderr).not.toContain(dir);
  });
});

describe('what a kubectl user expects', () => {
  const names = async (args: string[]) =>
    (
      JSON.parse((await drover(['get', 'nodes', ...args, '-o', 'json'])).stdout).items as Array<{
        id: string;
      }>
    ).map((n) => n.id);

  it('get nodes -l filters by labels (=, !=, exists, !exists); a bad selector is a usage error', async () => {
    expect(await names(['-l', 'pool=control-plane'])).toEqual(['n1', 'n2']);
    expect(await names(['-l', 'pool=control-plane,zone!=b'])).toEqual(['n1']);
    expect(await names(['--selector', 'gpu'])).toEqual(['n3']);
    expect(await names(['-l', '!gpu'])).toEqual(['n1', 'n2']);
    expect(await names(['-l', 'zone==a'])).toEqual(['n1', 'n3']);
    expect(await names(['-l', 'pool=nowhere'])).toEqual([]);
    const t = await drover(['get', 'nodes', '-l', 'zone=b']);
    expect(t.stdout).toMatch(/^NAME/);
    expect(t.stdout).toMatch(/\nn2\s/);
    expect(t.stdout).not.toMatch(/\nn1\s|\nn3\s/);
    for (const [sel, why] of [
      ['pool=a,,zone=b', /"" is an empty term/],
      ['=a', /"=a" has no key/],
      ['pool=a=b', /has more than one operator/],
      ['zone in (a,b)', /is set-based/],
      ['po ol=a', /invalid key "po ol"/],
      ['pool=a b', /invalid value "a b"/],
    ] as const) {
      const r = await drover(['get', 'nodes', '-l', sel]);
      expect(r.code, sel).toBe(2);
      expect(r.stderr, sel).toMatch(why);
    }
    const roles = await drover(['get', 'roles', '-l', 'a=b']);
    expect(roles.code).toBe(2);
    expect(roles.stderr).toMatch(/works with `get nodes`/);
  });

  it('get topology lists them, get topology NAME -o yaml prints the document, an unknown name is 404', async () => {
    const list = await drover(['get', 'topology']);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/^NAME\s+ROLES\s+INSTANCES\s+ROLE NAMES\n/);
    expect(list.stdout).toMatch(/\ndefault\s+1\s+2\s+echo\n/);
    const y = await drover(['get', 'topology', 'default', '-o', 'yaml']);
    expect(y.code).toBe(0);
    expect(parseYaml(y.stdout)).toMatchObject({
      kind: 'Topology',
      metadata: { name: 'default' },
      roles: { echo: { replicas: 2 } },
    });
    const j = await drover(['get', 'topologies', '-o', 'json']);
    expect(JSON.parse(j.stdout).items.map((t: { metadata: { name: string } }) => t.metadata.name)).toEqual([
      'default',
    ]);
    const nf = await drover(['get', 'topology', 'nope']);
    expect(nf.code).toBe(3);
    expect(nf.stderr).toMatch(/no topology "nope" \(have: default\)/);
  });

  it('kubeconfig admin -f FILE writes mode 0600 and keeps an existing file unless --force', async () => {
    const kc = {
      ...echoTopology(0, 'kc'),
      cluster: { name: 'kc', apiEndpoint: { mode: 'external', address: '10.9.9.9' } },
    };
    const f = join(dir, 'kc.yaml');
    writeFileSync(f, toYaml(kc));
    expect((await drover(['apply', '-f', f])).code).toBe(0);
    const out = join(dir, 'admin.conf');
    const r = await drover(['kubeconfig', 'admin', '--cluster', 'kc', '-f', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(statSync(out).mode & 0o777).toBe(0o600);
    expect(parseYaml(readFileSync(out, 'utf8'))).toMatchObject({ kind: 'Config' });
    const again = await drover(['kubeconfig', 'admin', '--cluster', 'kc', '-f', out]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/admin\.conf exists; nothing was written[\s\S]*--force/);
    const loose = join(dir, 'loose.conf');
    writeFileSync(loose, 'old\n', { mode: 0o644 });
    const forced = await drover(['kubeconfig', 'admin', '--cluster', 'kc', '-f', loose, '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(statSync(loose).mode & 0o777).toBe(0o600);
    expect(readFileSync(loose, 'utf8')).toMatch(/kind: Config/);
  });

  it('delete topology refuses without a tty and --yes; with --yes removes the instances, records an event', async () => {
    const nf = await drover(['delete', 'topology', 'nope', '--yes']);
    expect(nf.code).toBe(3);
    const no = await drover(['delete', 'topology', 'default']);
    expect(no.code).toBe(2);
    expect(no.stderr).toMatch(/refusing to delete topology "default"[\s\S]*nothing was changed[\s\S]*--yes/);
    expect(coord.engine.topology('default')).toBeDefined();
    const viewer = (await drover(['token', 'create', 'look', '--role', 'viewer'])).stdout.trim();
    expect((await drover(['delete', 'topology', 'default', '--yes'], { DROVER_TOKEN: viewer })).code).toBe(4);
    const before = coord.engine.currentAssignments('default').map((a) => a.nodeId);
    expect(before.length).toBe(2);
    const operator = (await drover(['token', 'create', 'op', '--role', 'operator'])).stdout.trim();
    const yes = await drover(['delete', 'topology', 'default', '--yes'], { DROVER_TOKEN: operator });
    expect(yes.code, yes.stderr).toBe(0);
    expect(yes.stdout).toMatch(/topology default deleted: its 2 instance\(s\) are being removed/);
    await waitFor('instances removed from the nodes', () =>
      daemon.agents.every((a) => (a.plan()?.instances ?? []).length === 0),
    );
    expect(coord.engine.currentAssignments('default')).toEqual([]);
    expect(coord.engine.listTopologies().map((t) => t.metadata.name)).toEqual(['kc']);
    const ev = await drover(['events', '--kind', 'topology.deleted']);
    expect(ev.stdout).toMatch(/topology\.deleted\s+default\s+topology default deleted by op/);
    const raw = await fetch(`${coord.api.url}/v1/topologies/default`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${env.DROVER_TOKEN}` },
    });
    expect(raw.status).toBe(404);
  });

  it('join-command works with the lab-style CLI config alone (server + tokenFile), via the API', async () => {
    const cfg = join(dir, 'drover.yaml');
    writeFileSync(cfg, `server: ${coord.api.url}\ntokenFile: ${coord.api.adminTokenFile}\n`);
    const r = await drover(['join-command'], { DROVER_URL: '', DROVER_TOKEN: '', DROVER_CONFIG: cfg });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /^drover-agent join --server tls:\/\/127\.0\.0\.1:\d+ --token drover-join-v1\.[A-Za-z0-9_-]+ --coordinator-key-fingerprint [0-9a-f]{64}\n$/,
    );
    const viewer = (await drover(['token', 'create', 'peek', '--role', 'viewer'])).stdout.trim();
    const denied = await drover(['join-command'], { DROVER_TOKEN: viewer });
    expect(denied.code).toBe(4);
    expect(denied.stderr).toMatch(/needs admin[\s\S]*--coordinator-config/);
  });

  it("join-command's --config is a deprecated alias of --coordinator-config, with a warning", async () => {
    const missing = join(dir, 'no-such-coordinator.yaml');
    const old = await drover(['join-command', '--config', missing]);
    expect(old.stderr).toMatch(/--config is deprecated here[\s\S]*use --coordinator-config/);
    expect(old.stderr).toContain(missing);
    const neu = await drover(['join-command', '--coordinator-config', missing]);
    expect(neu.stderr).not.toMatch(/deprecated/);
    expect(neu.stderr).toContain(missing);
    expect(neu.code).toBe(old.code);
    expect(existsSync(missing)).toBe(false);
    const help = await drover(['join-command', '--help']);
    expect(help.stdout).toMatch(/--coordinator-config FILE/);
  });

  it('commands print their own --help (import openpai, kubeconfig admin, get)', async () => {
    for (const [argv, re] of [
      [['import', 'openpai', '--help'], /^Usage: drover import openpai FILE\|DIR/],
      [['kubeconfig', 'admin', '--help'], /^Usage: drover kubeconfig admin[\s\S]*mode 0600/],
      [['get', '--help'], /^Usage: drover get [\s\S]*-l, --selector/],
    ] as const) {
      const r = await drover([...argv]);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(re);
      expect(r.stdout).toMatch(/Examples:\n {2}drover /);
    }
  });
});
