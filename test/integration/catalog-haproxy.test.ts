/**
 * The rendered load balancer against real haproxy: every config passes `haproxy -c`, and a running
 * haproxy started with the rendered arguments round-robins over the API-server backends, rides out
 * a dead backend, and picks up a new backend set on SIGUSR2 without dropping open connections.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type RenderedInstance, ROOT, renderPlans } from '../../coordinator/catalog/index.js';
import type { Assignment, NodeRecord } from '../../coordinator/model.js';
import { parseTopology, type Topology } from '../../coordinator/topology/index.js';
import { assign, makeNode, nodeMap } from '../helpers/cluster-fixtures.js';
import { autoCleanup, killAndWait, rmrf, spawnLogged } from '../helpers/proc.js';
import { freePort, requireBinary, tcpOpen, tempDir, waitFor } from '../helpers/servers.js';

const HAPROXY = requireBinary('haproxy');

function topology(port: number): Topology {
  const t = parseTopology(readFileSync('examples/ha.yaml', 'utf8'));
  t.cluster.apiEndpoint.port = port;
  return t;
}

function lbInstance(t: Topology, lbAddress: string, apiAddresses: string[]): RenderedInstance {
  const nodes: NodeRecord[] = [makeNode({ id: 'lb', address: lbAddress, pool: 'lb' })];
  const as: Assignment[] = [assign('load-balancer', 0, 'lb')];
  apiAddresses.forEach((addr, i) => {
    nodes.push(makeNode({ id: `cp-${i}`, address: addr, pool: 'control-plane' }));
    as.push(assign('kube-apiserver', i, `cp-${i}`));
  });
  return renderPlans({ topology: t, assignments: as, nodes: nodeMap(nodes) }).get('lb')![0]!;
}

/** Writes the instance's files under `root` and returns its argv with `${DROVER_ROOT}` expanded. */
function materialize(i: RenderedInstance, root: string): string[] {
  for (const f of i.files) {
    const p = join(root, f.path);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, f.content, { mode: f.mode });
  }
  return i.run.args.map((a) => a.split(ROOT).join(root));
}

async function haproxyCheck(i: RenderedInstance): Promise<{ code: number | null; output: string }> {
  const root = tempDir('lbcheck');
  try {
    const args = materialize(i, root);
    const cfg = args[args.indexOf('-f') + 1]!;
    const p = spawnLogged(HAPROXY, ['-c', '-f', cfg]);
    const code = await p.exited;
    return { code, output: p.output() };
  } finally {
    rmrf(root);
  }
}

/** A TCP server standing in for one API server: answers every connection with its name. */
async function backend(host: string, port: number, name: string): Promise<{ stop(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.on('data', () => s.write(`${name}\n`));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const handle = {
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  autoCleanup(() => handle.stop().catch(() => {}));
  return handle;
}

/** One request through the load balancer: the name of the backend that answered, or an error. */
function ask(host: string, port: number, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error('timeout'));
    }, timeoutMs);
    s.once('connect', () => s.write('who\n'));
    s.once('data', (b) => {
      clearTimeout(timer);
      s.destroy();
      resolve(b.toString().trim());
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    s.once('close', () => {
      clearTimeout(timer);
      reject(new Error('closed without an answer'));
    });
  });
}

describe('rendered haproxy.cfg passes haproxy -c', () => {
  it.each([
    ['three API servers', ['10.0.0.11', '10.0.0.12', '10.0.0.13']],
    ['one API server', ['10.0.0.11']],
    ['no API server placed yet', []],
    ['IPv6 addresses', ['fd00::11', 'fd00::12']],
  ])('%s', async (_name, addrs) => {
    const lbAddr = addrs[0]?.includes(':') ? 'fd00::10' : '10.0.0.10';
    const r = await haproxyCheck(lbInstance(topology(6443), lbAddr, addrs));
    expect(r.output).not.toMatch(/ALERT/);
    expect(r.code, r.output).toBe(0);
  });

  it('haproxy -c rejects a broken config (the check can fail)', async () => {
    const i = lbInstance(topology(6443), '10.0.0.10', ['10.0.0.11']);
    i.files[0]!.content = i.files[0]!.content.replace('mode tcp', 'mode tcpp');
    expect((await haproxyCheck(i)).code).not.toBe(0);
  });
});

describe('the rendered load balancer in front of live backends', () => {
  it('round-robins, survives a dead backend, and reloads a new backend set on SIGUSR2', async () => {
    const lbHost = '127.0.42.10';
    const port = await freePort(lbHost);
    const apis = ['127.0.42.1', '127.0.42.2', '127.0.42.3'];
    const servers = await Promise.all(apis.map((a, i) => backend(a, 6443, `api-${i}`)));
    const t = topology(port);
    const root = tempDir('lb');
    autoCleanup(async () => rmrf(root));
    const inst = lbInstance(t, lbHost, apis);
    expect(inst.run.args.slice(0, 2)).toEqual(['-W', '-db']);
    expect(inst.run.reloadSignal).toBe('SIGUSR2');
    const proc = spawnLogged(HAPROXY, materialize(inst, root));
    autoCleanup(() => killAndWait(proc));
    await waitFor('haproxy frontend', async () => {
      if (proc.child.exitCode !== null) throw new Error(`haproxy exited: ${proc.output()}`);
      return tcpOpen(lbHost, port);
    });
    // rise 2 at inter 1s: wait until all three backends have been seen
    const seen = new Set<string>();
    await waitFor(
      'all backends in rotation',
      async () => {
        seen.add(await ask(lbHost, port).catch(() => ''));
        return seen.has('api-0') && seen.has('api-1') && seen.has('api-2');
      },
      { timeoutMs: 15_000, intervalMs: 50 },
    );
    // round robin: six requests in a row reach every backend twice
    const answers: string[] = [];
    for (let n = 0; n < 6; n++) answers.push(await ask(lbHost, port));
    expect(answers.filter((a) => a === 'api-0').length).toBe(2);
    expect(new Set(answers).size).toBe(3);

    // kill one backend: with redispatch and retries, clients keep getting answers right away
    await servers[1]!.stop();
    let failures = 0;
    for (let n = 0; n < 20; n++) {
      const a = await ask(lbHost, port).catch(() => 'failed');
      if (a === 'failed') failures++;
      else expect(a).not.toBe('api-1');
    }
    expect(failures).toBe(0);

    // a connection held open across the reload, to check the reload does not drop it
    const held = connect({ host: lbHost, port });
    const heldReplies: string[] = [];
    held.on('data', (b) => heldReplies.push(b.toString().trim()));
    held.on('error', () => {});
    held.write('before\n');
    await waitFor('held connection answered', () => heldReplies.length === 1, { timeoutMs: 5000 });

    // new API-server set: api-1 is gone, api-3 joins; re-render, rewrite, SIGUSR2
    await backend('127.0.42.4', 6443, 'api-3');
    const next = lbInstance(t, lbHost, ['127.0.42.1', '127.0.42.3', '127.0.42.4']);
    materialize(next, root);
    proc.child.kill('SIGUSR2');
    await waitFor(
      'new backend in rotation',
      async () => (await ask(lbHost, port).catch(() => '')) === 'api-3',
      {
        timeoutMs: 15_000,
        intervalMs: 50,
      },
    );
    expect(proc.child.exitCode).toBeNull();
    // the connection opened before the reload still works, on the same backend
    held.write('still there?\n');
    await waitFor('held connection answered after the reload', () => heldReplies.length === 2, {
      timeoutMs: 5000,
    });
    expect(heldReplies[1]).toBe(heldReplies[0]);
    held.destroy();
  });
});
