import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatStatus, parseLabArgs, runLab } from '../../cli/lab.js';
import {
  compileLabUpOptions,
  fleetLayout,
  LAB_ERROR_CODES,
  LabError,
  labUp,
  loadLabTopology,
  netNames,
  poolSizes,
  preflight,
  readState,
  roleProcesses,
} from '../../lab/index.js';
import { isAlive, readStat, spawnDetached, terminate, withDescendants } from '../../lab/procs.js';
import { withLock } from '../../lab/state.js';
import { rmrf, tempDir } from '../helpers/proc.js';

const HA = new URL('../../examples/ha.yaml', import.meta.url).pathname;

function io() {
  let out = '';
  let err = '';
  return {
    io: {
      out: (t: string) => {
        out += t;
      },
      err: (t: string) => {
        err += t;
      },
      env: {} as NodeJS.ProcessEnv,
    },
    out: () => out,
    err: () => err,
  };
}

function labErr(fn: () => unknown): LabError {
  try {
    fn();
  } catch (e) {
    if (e instanceof LabError) return e;
    throw e;
  }
  throw new Error('expected a LabError');
}

describe('lab layout', () => {
  it('7 hosts: 1 load balancer, 4 control-plane (3 + the spare), 2 workers on 127.0.0.2…8', () => {
    const l = fleetLayout(7, '127.0.0');
    expect(l.map((n) => `${n.name}=${n.address}:${n.labels.pool}`)).toEqual([
      'lb-1=127.0.0.2:lb',
      'cp-1=127.0.0.3:control-plane',
      'cp-2=127.0.0.4:control-plane',
      'cp-3=127.0.0.5:control-plane',
      'cp-4=127.0.0.6:control-plane',
      'worker-1=127.0.0.7:worker',
      'worker-2=127.0.0.8:worker',
    ]);
    expect(poolSizes(4)).toEqual({ lb: 1, 'control-plane': 3, worker: 0 });
    expect(poolSizes(12)).toEqual({ lb: 1, 'control-plane': 4, worker: 7 });
  });

  it('refuses a node count that cannot hold the HA control plane, naming the range', () => {
    for (const n of [3, 0, 61, 2.5]) {
      const e = labErr(() => fleetLayout(n, '127.0.0'));
      expect(e.code).toBe('DROVER_ERR_LAB_USAGE');
      expect(e.message).toContain('from 4 to 60');
    }
  });

  it('labels every host with the topology cluster (drover.dev/cluster), as the join sets it', () => {
    const l = fleetLayout(4, '127.0.0', { clusters: ['ha'] });
    expect(l.map((n) => n.labels)).toEqual([
      { pool: 'lb', 'drover.dev/cluster': 'ha' },
      ...[1, 2, 3].map(() => ({ pool: 'control-plane', 'drover.dev/cluster': 'ha' })),
    ]);
  });

  it('several clusters: hosts <cluster>-<i> split evenly, at least one each', () => {
    const l = fleetLayout(5, '127.0.0', { clusters: ['r1', 'r2'] });
    expect(l.map((n) => `${n.name}=${n.address}:${n.labels['drover.dev/cluster']}`)).toEqual([
      'r1-1=127.0.0.2:r1',
      'r1-2=127.0.0.3:r1',
      'r1-3=127.0.0.4:r1',
      'r2-1=127.0.0.5:r2',
      'r2-2=127.0.0.6:r2',
    ]);
    expect(fleetLayout(2, '127.0.0', { clusters: ['r1', 'r2'] }).map((n) => n.name)).toEqual([
      'r1-1',
      'r2-1',
    ]);
    expect(labErr(() => fleetLayout(1, '127.0.0', { clusters: ['r1', 'r2'] })).message).toContain(
      'at least one host for each',
    );
  });

  it('--pending N: N more hosts pending-1… after the others, marked to join without the token', () => {
    const l = fleetLayout(4, '127.0.0', { clusters: ['ha'], pending: 2 });
    expect(l.slice(4).map((n) => `${n.name}=${n.address}:${n.pool}:${n.pending}`)).toEqual([
      'pending-1=127.0.0.6:worker:true',
      'pending-2=127.0.0.7:worker:true',
    ]);
    expect(l.slice(0, 4).every((n) => !n.pending)).toBe(true);
    for (const p of [-1, 1.5, 57])
      expect(labErr(() => fleetLayout(4, '127.0.0', { pending: p })).message).toContain('--pending must be');
  });

  it('interface names fit the kernel limit of 15 bytes and differ between lab dirs', () => {
    const a = netNames('/tmp/a');
    const b = netNames('/tmp/b');
    for (const name of [a.bridge, a.hostVeth(60), a.peerVeth(60)])
      expect(name.length).toBeLessThanOrEqual(15);
    expect(a.bridge).not.toBe(b.bridge);
    expect(a.netns('worker-1').startsWith(a.netnsPrefix)).toBe(true);
  });
});

describe('lab up options', () => {
  it('defaults: ./.lab, 7 nodes, examples/ha.yaml, loopback 127.0.0, ports 7480/4222', () => {
    const o = compileLabUpOptions({}, '/srv/x');
    expect(o).toMatchObject({
      dir: '/srv/x/.lab',
      nodes: 7,
      netns: false,
      subnet: '127.0.0',
      apiPort: 7480,
      natsPort: 4222,
    });
    expect(o.topology.endsWith('examples/ha.yaml')).toBe(true);
    expect(Object.isFrozen(o)).toBe(true);
    expect(compileLabUpOptions({ netns: true }).subnet).toBe('10.77.0');
  });

  it('refuses bad input by name', () => {
    const cases: Array<[Parameters<typeof compileLabUpOptions>[0], string]> = [
      [{ unreachableAfter: 'soon' }, '--unreachable-after takes a duration'],
      [{ heartbeatInterval: '2s', unreachableAfter: '3s' }, 'at least two heartbeat intervals'],
      [{ subnet: '10.77.0' }, 'must start with 127'],
      [{ netns: true, subnet: '127.0.9' }, 'not loopback'],
      [{ subnet: '127.0' }, 'three octets'],
      [{ apiPort: 70000 }, '--api-port'],
      [{ logLevel: 'loud' }, '--log-level'],
    ];
    for (const [opts, msg] of cases) expect(labErr(() => compileLabUpOptions(opts)).message).toContain(msg);
  });
});

describe('lab topology', () => {
  it('applies examples/ha.yaml as is without timing flags', () => {
    const t = loadLabTopology(HA, {});
    expect(t.changes).toEqual([]);
    expect(t.text).toBe(readFileSync(HA, 'utf8'));
    expect(t.pools.sort()).toEqual(['control-plane', 'lb', 'worker']);
  });

  it('--etcd-reassign-after replaces the topology etcd repair delay (which would otherwise win), keeping comments', () => {
    const t = loadLabTopology(HA, { etcdReassignAfter: '4s', reassignAfter: '2s' });
    expect(t.changes).toEqual(['roles.etcd.repair.reassignAfter 60s → 4s']);
    expect(t.text).toContain('reassignAfter: 4s');
    expect(t.text).not.toContain('reassignAfter: 60s');
    expect(t.text).toContain('# etcd moves only after a long outage');
  });

  it('one cluster per document: examples/superclusters.yaml gives r1 and r2, each applied on its own', () => {
    const t = loadLabTopology(new URL('../../examples/superclusters.yaml', import.meta.url).pathname, {});
    expect(t.clusters.map((c) => c.name)).toEqual(['r1', 'r2']);
    for (const c of t.clusters) {
      expect(c.text).toContain(`name: ${c.name}`);
      expect(c.text).not.toContain('---');
    }
    expect(loadLabTopology(HA, {}).clusters.map((c) => c.name)).toEqual(['ha']);
    const dir = tempDir('lab-topo2');
    try {
      const twice = join(dir, 'twice.yaml');
      const one = readFileSync(HA, 'utf8');
      writeFileSync(twice, `${one}\n---\n${one}`);
      expect(labErr(() => loadLabTopology(twice, {})).message).toContain('defines the cluster "ha" twice');
      const empty = join(dir, 'empty.yaml');
      writeFileSync(empty, '# nothing\n');
      expect(labErr(() => loadLabTopology(empty, {})).message).toContain('is empty');
    } finally {
      rmrf(dir);
    }
  });

  it('an invalid topology is refused before anything starts, naming the field', () => {
    const dir = tempDir('lab-topo');
    try {
      const bad = join(dir, 'bad.yaml');
      writeFileSync(
        bad,
        readFileSync(HA, 'utf8').replace(
          'replicas: 3\n    nodeSelector: { pool: control-plane }\n    resources',
          'replicas: -3\n    nodeSelector: { pool: control-plane }\n    resources',
        ),
      );
      const e = labErr(() => loadLabTopology(bad, {}));
      expect(e.code).toBe('DROVER_ERR_LAB_USAGE');
      expect(e.message).toMatch(/roles\.etcd\.replicas/);
    } finally {
      rmrf(dir);
    }
  });
});

describe('lab preflight', () => {
  const dist = new URL('../../dist/', import.meta.url).pathname;
  it('names the Debian package of every missing program, and iproute2 only for --netns', () => {
    const missing = new Set(['etcd', 'haproxy', 'ip']);
    const find = (b: string) => (missing.has(b) ? undefined : `/usr/bin/${b}`);
    const e = labErr(() => preflight({ netns: false, distDir: dist, find }));
    expect(e.code).toBe('DROVER_ERR_LAB_MISSING_PACKAGES');
    expect(e.message).toContain(
      'etcd (the control plane store (a real 3-member cluster)) is not installed — Debian package etcd-server',
    );
    expect(e.message).toContain('Debian package haproxy');
    expect(e.message).not.toContain('iproute2');
    expect(e.hint).toContain('apt-get install -y etcd-server haproxy');
    expect(labErr(() => preflight({ netns: true, distDir: dist, find, isRoot: true })).hint).toContain(
      'iproute2',
    );
  });

  it('--netns needs root', () => {
    const e = labErr(() =>
      preflight({ netns: true, distDir: dist, find: (b) => `/usr/bin/${b}`, isRoot: false }),
    );
    expect(e.code).toBe('DROVER_ERR_LAB_NOT_ROOT');
  });

  it('lab up checks before it starts anything: a missing topology leaves no directory behind', async () => {
    const dir = join(tempDir('lab-pre'), 'lab');
    await expect(labUp({ dir, topology: '/nonexistent/topology.yaml' })).rejects.toMatchObject({
      code: 'DROVER_ERR_LAB_USAGE',
    });
    expect(existsSync(dir)).toBe(false);
  });
});

describe('drover lab command line', () => {
  it('parses flags in both forms and refuses unknown ones', () => {
    expect(parseLabArgs(['up', '--nodes', '5', '--netns', '--dir=/x'])).toEqual({
      positionals: ['up'],
      flags: { nodes: '5', netns: true, dir: '/x' },
    });
    expect(() => parseLabArgs(['up', '--bogus'])).toThrow(/unknown flag --bogus/);
    expect(() => parseLabArgs(['up', '--nodes'])).toThrow(/needs a value/);
  });

  it('usage errors exit 2 and name the problem; a missing lab exits 3', async () => {
    const dir = tempDir('lab-cli');
    try {
      const cases: Array<[string[], number, string]> = [
        [['frobnicate'], 2, 'unknown lab command "frobnicate"'],
        [['down', '--nodes', '3', '--dir', dir], 2, '--nodes is a flag of `lab up`'],
        [['kill-host', '--dir', dir], 2, 'usage: drover lab kill-host NODE'],
        [['up', '--nodes', 'many', '--dir', dir], 2, '--nodes takes a whole number'],
        [['up', '--nodes', '3', '--dir', dir], 2, 'from 4 to 60'],
        [['status', '--dir', dir], 3, `no lab in ${dir}`],
        [['kill-host', 'cp-1', '--dir', dir], 3, 'no lab in'],
        [['stop', '--dir', dir], 2, 'usage: drover lab stop coordinator|nats'],
        [['stop', 'etcd', '--dir', dir], 2, 'lab start/stop takes coordinator or nats, not "etcd"'],
        [['start', 'coordinator', 'nats', '--dir', dir], 2, 'usage: drover lab start coordinator|nats'],
        [['start', 'nats', '--kill', '--dir', dir], 2, '--kill is a flag of `lab stop`'],
        [['stop', 'nats', '--pending', '1', '--dir', dir], 2, '--pending is a flag of `lab up`'],
        [['up', '--pending', 'two', '--dir', dir], 2, '--pending takes a whole number'],
        [
          ['up', '--pending', '57', '--dir', dir],
          2,
          '--pending must be a whole number from 0 to 53 (at most 60 hosts in all)',
        ],
        [['stop', 'coordinator', '--dir', dir], 3, 'no lab in'],
        [['start', 'nats-server', '--dir', dir], 3, 'no lab in'],
      ];
      for (const [argv, code, msg] of cases) {
        const c = io();
        expect(await runLab(argv, c.io), argv.join(' ')).toBe(code);
        expect(c.err()).toContain(msg);
      }
      const h = io();
      expect(await runLab(['--help'], h.io)).toBe(0);
      expect(h.out()).toContain('kill-host NODE');
      expect(h.out()).toContain('stop coordinator|nats [--kill]');
      expect(h.out()).toContain('--pending N');
    } finally {
      rmrf(dir);
    }
  });

  it('a damaged lab.json is reported, not trusted', async () => {
    const dir = tempDir('lab-state');
    try {
      writeFileSync(join(dir, 'lab.json'), '{"version":1,"dir":"/x"}');
      const c = io();
      expect(await runLab(['status', '--dir', dir], c.io)).toBe(1);
      expect(c.err()).toMatch(/is not a lab state file/);
      writeFileSync(join(dir, 'lab.json'), '{nope');
      expect(labErr(() => readState(dir)).code).toBe('DROVER_ERR_LAB_STATE');
    } finally {
      rmrf(dir);
    }
  });

  it('status marks simulated instances and explains stale copies on a partitioned host', () => {
    const text = formatStatus({
      state: {
        dir: '/l',
        mode: 'loopback',
        coordinator: { apiUrl: 'http://127.0.0.1:7480', adminTokenFile: '/l/t' },
        nats: { url: 'tls://127.0.0.1:4222' },
        bus: { dir: '/l/coordinator/data/bus', caFile: '/l/coordinator/data/bus/ca.crt' },
      } as never,
      nats: 'running',
      coordinator: 'running',
      nodes: [
        {
          name: 'cp-1',
          pool: 'control-plane',
          address: '127.0.0.3',
          labState: 'partitioned',
          agent: 'frozen',
          pid: 7,
          processes: [
            { instanceId: 'kube-apiserver#0', role: 'kube-apiserver', pid: 9, startTime: '1', node: 'cp-1' },
          ],
          api: {
            state: 'Unreachable',
            plan: { converged: true, generation: 2 },
            instances: [{ id: 'kube-apiserver#0', simulated: true } as never],
          },
        },
      ],
      duplicates: [{ instanceId: 'kube-apiserver#0', nodes: ['cp-1', 'cp-4'], stale: true }],
      apiError: 'down',
      problems: ['cp-1 is partitioned (`drover lab heal cp-1`)'],
      notes: [],
    });
    // the API did not answer: convergence is unknown, never "converged"
    expect(text).toContain('convergence unknown (down)');
    expect(text).not.toMatch(/(?<!not )converged/);
    expect(text).toContain('NOT READY (exit 1):\n  - cp-1 is partitioned');
    expect(text).toContain('kube-apiserver#0*');
    expect(text).toContain('frozen 7');
    expect(text).toContain('stale copy is fenced when it heals');
    expect(text).not.toContain('runs twice');
    // the bus's auth and TLS are stated
    expect(text).toContain(
      'bus tls://127.0.0.1:4222   auth: a NATS user per host (JWT, /l/coordinator/data/bus)   TLS: bus CA /l/coordinator/data/bus/ca.crt',
    );
  });
});

describe('lab processes', () => {
  it('spawns detached, tells a live process from a recycled pid, and finds role processes by pidfile', async () => {
    const dir = tempDir('lab-proc');
    try {
      const ref = await spawnDetached({
        command: 'sleep',
        args: ['30'],
        log: join(dir, 'logs', 'sleep.log'),
      });
      expect(isAlive(ref)).toBe(true);
      expect(readStat(ref.pid)?.pgrp).toBe(ref.pid); // its own process group
      expect(isAlive({ pid: ref.pid, startTime: '1' })).toBe(false);
      const run = join(dir, 'data', 'run');
      mkdirSync(run, { recursive: true });
      writeFileSync(
        join(run, 'etcd-0.json'),
        JSON.stringify({ id: 'etcd#0', pid: ref.pid, startTime: ref.startTime, inst: { role: 'etcd' } }),
      );
      writeFileSync(
        join(run, 'old.json'),
        JSON.stringify({ id: 'etcd#1', pid: ref.pid, startTime: '12', inst: { role: 'etcd' } }),
      );
      writeFileSync(join(run, 'torn.json'), '{"id":');
      expect(roleProcesses({ name: 'cp-1', dataDir: join(dir, 'data') })).toEqual([
        { instanceId: 'etcd#0', role: 'etcd', pid: ref.pid, startTime: ref.startTime, node: 'cp-1' },
      ]);
      expect(withDescendants([ref.pid]).map((p) => p.pid)).toEqual([ref.pid]);
      expect(await terminate([readStat(ref.pid)!], { graceMs: 2000 })).toEqual([]);
      expect(isAlive(ref)).toBe(false);
    } finally {
      rmrf(dir);
    }
  });

  it('the lab lock serialises commands and takes over a lock whose holder is gone', async () => {
    const dir = tempDir('lab-lock');
    try {
      const order: string[] = [];
      const a = withLock(dir, async () => {
        order.push('a-start');
        await new Promise((r) => setTimeout(r, 200));
        order.push('a-end');
      });
      await new Promise((r) => setTimeout(r, 20));
      const b = withLock(dir, async () => order.push('b'));
      await Promise.all([a, b]);
      expect(order).toEqual(['a-start', 'a-end', 'b']);
      const gone = spawn('true');
      await new Promise((r) => gone.once('exit', r));
      writeFileSync(join(dir, 'lab.lock'), String(gone.pid));
      expect(await withLock(dir, async () => 'taken over', 2000)).toBe('taken over');
    } finally {
      rmrf(dir);
    }
  });
});

describe('lab error codes', () => {
  it('every code has an exit code and a description, and docs/lab.md lists it', () => {
    const doc = readFileSync(new URL('../../docs/lab.md', import.meta.url), 'utf8');
    for (const [code, spec] of Object.entries(LAB_ERROR_CODES)) {
      expect(code).toMatch(/^DROVER_ERR_LAB_[A-Z_]+$/);
      expect([1, 2, 3, 5]).toContain(spec.exit);
      expect(spec.description.length).toBeGreaterThan(20);
      expect(doc, `${code} in docs/lab.md`).toMatch(
        new RegExp(`\\|\\s*\`${code}\`\\s*\\|\\s*${spec.exit}\\s*\\|`),
      );
    }
  });
});
