import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { lookupRunAs, prepareRunAs } from '../../agent/run-as.js';
import { renderUnit } from '../../agent/runtime/systemd.js';
import { type RenderedInstance, renderPlans } from '../../coordinator/catalog/index.js';
import { ROLE_PRIVILEGES } from '../../coordinator/catalog/roles/least-privilege.js';
import { parseTopology } from '../../coordinator/topology/index.js';
import { checkLabDirReachable } from '../../lab/preflight.js';
import { silentLogger } from '../../lib/logger.js';
import type { InstanceSpec } from '../../protocol/index.js';
import { sleeper } from '../helpers/agent-instances.js';
import { haAssignments, haNodes, nodeMap } from '../helpers/cluster-fixtures.js';
import { rmrf, tempDir } from '../helpers/proc.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmrf(d);
});
const fresh = (p: string) => {
  const d = tempDir(p);
  dirs.push(d);
  return d;
};

const etcdSpec = (): InstanceSpec => ({
  id: 'etcd#0',
  role: 'etcd',
  epoch: 1,
  checksum: 'x',
  simulated: false,
  files: [],
  run: { command: 'etcd', args: [], env: {}, runAs: { user: 'etcd', group: 'etcd' } },
  restart: {
    policy: 'always',
    initialBackoffMs: 1000,
    maxBackoffMs: 5000,
    resetAfterMs: 10_000,
    crashLoopThreshold: 5,
  },
  dataPaths: ['/var/lib/etcd/etcd-0-e1', '/etc/kubernetes/pki/etcd-0'],
  certificates: [
    {
      profile: 'etcd-server',
      commonName: 'cp-1',
      organizations: [],
      dnsNames: [],
      ipAddresses: [],
      certPath: '/etc/kubernetes/pki/etcd-0/etcd-server.crt',
      keyPath: '/etc/kubernetes/pki/etcd-0/etcd-server.key',
      caPath: '/etc/kubernetes/pki/etcd-0/etcd-ca.crt',
    },
  ],
});

describe('least privilege: what each role runs as', () => {
  const plans = renderPlans({
    topology: parseTopology(readFileSync('examples/ha.yaml', 'utf8')),
    assignments: haAssignments(),
    nodes: nodeMap(haNodes()),
    options: {},
  });
  const all: RenderedInstance[] = [...plans.values()].flat();
  const of = (role: string) => all.find((i) => i.role === role)!;

  it('etcd runs as etcd and haproxy as haproxy, with no capabilities; the kubelet stays root and unconfined', () => {
    expect(of('etcd').run.runAs).toEqual({ user: 'etcd', group: 'etcd' });
    expect(of('load-balancer').run.runAs).toEqual({ user: 'haproxy', group: 'haproxy' });
    for (const r of ['etcd', 'load-balancer'])
      expect(of(r).run.unit?.extraService).toMatchObject({
        NoNewPrivileges: 'yes',
        ProtectSystem: 'full',
        CapabilityBoundingSet: '',
      });
    expect(of('kube-apiserver').run.runAs).toBeUndefined();
    expect(of('kube-apiserver').run.unit?.extraService).toMatchObject({ NoNewPrivileges: 'yes' });
    expect(of('kubelet').run.runAs).toBeUndefined();
    expect(of('kubelet').run.unit?.extraService?.NoNewPrivileges).toBeUndefined();
    expect(of('kubelet').run.unit?.extraService?.CapabilityBoundingSet).toBeUndefined();
    // every role says why
    for (const p of Object.values(ROLE_PRIVILEGES)) expect(p.why.length).toBeGreaterThan(20);
  });

  it('a load balancer on a port below 1024 keeps exactly CAP_NET_BIND_SERVICE', () => {
    const t = parseTopology(readFileSync('examples/ha.yaml', 'utf8').replace(/port: 6443/, 'port: 443'));
    if (t.cluster.apiEndpoint.port !== 443)
      return expect.fail('examples/ha.yaml has no apiEndpoint port to change');
    const lb = [
      ...renderPlans({ topology: t, assignments: haAssignments(), nodes: nodeMap(haNodes()) }).values(),
    ]
      .flat()
      .find((i) => i.role === 'load-balancer')!;
    expect(lb.run.unit?.extraService).toMatchObject({
      CapabilityBoundingSet: 'CAP_NET_BIND_SERVICE',
      AmbientCapabilities: 'CAP_NET_BIND_SERVICE',
    });
  });

  it('the systemd unit carries User= and Group= and the sandboxing, and systemd-analyze accepts it', () => {
    const text = renderUnit(
      sleeper('etcd#0', {
        runAs: { user: 'etcd', group: 'etcd', uid: 1, gid: 1 },
        unit: { extraService: { NoNewPrivileges: 'yes', CapabilityBoundingSet: '' } },
      }),
    );
    expect(text).toMatch(/^User=etcd$/m);
    expect(text).toMatch(/^Group=etcd$/m);
    expect(text).toMatch(/^NoNewPrivileges=yes$/m);
    expect(text).toMatch(/^CapabilityBoundingSet=$/m);
    const dir = fresh('unit');
    writeFileSync(join(dir, 'drover-etcd-0.service'), text);
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', join(dir, 'drover-etcd-0.service')], {
      encoding: 'utf8',
    });
    if (r.error) return; // no systemd-analyze on this host (setup installs it)
    expect(r.stderr).not.toMatch(/Unknown key|Invalid|Failed to parse/i);
  });
});

describe('least privilege on the host: the agent prepares the role user', () => {
  it("gives the instance's data dir (0700) and certificates to the user, and makes missing parents searchable", async () => {
    if (process.getuid?.() !== 0) return;
    const root = fresh('run-as');
    const spec = etcdSpec();
    mkdirSync(join(root, 'etc/kubernetes/pki/etcd-0'), { recursive: true });
    writeFileSync(join(root, 'etc/kubernetes/pki/etcd-0/etcd-server.key'), 'k', { mode: 0o600 });
    const ids = await prepareRunAs(root, spec, silentLogger);
    const want = lookupRunAs({ user: 'etcd', group: 'etcd' })!;
    expect(ids).toMatchObject({ uid: want.uid, gid: want.gid });
    const data = statSync(join(root, 'var/lib/etcd/etcd-0-e1'));
    expect([data.uid, data.mode & 0o777]).toEqual([want.uid, 0o700]);
    expect(statSync(join(root, 'var/lib/etcd')).mode & 0o005).toBe(0o005);
    expect(statSync(join(root, 'etc/kubernetes/pki/etcd-0/etcd-server.key')).uid).toBe(want.uid);
  });

  it('refuses to start when the user cannot reach its paths, naming the directory, and changes nothing', async () => {
    if (process.getuid?.() !== 0) return;
    const outer = fresh('run-as-closed');
    const root = join(outer, 'closed', 'root');
    mkdirSync(root, { recursive: true });
    chmodSync(join(outer, 'closed'), 0o700);
    const err = await prepareRunAs(root, etcdSpec(), silentLogger).catch((e) => e);
    expect(err.code).toBe('DROVER_ERR_RUN_AS');
    expect(err.message).toContain(`${join(outer, 'closed')} (mode 0700`);
    expect(err.message).toMatch(/runs as etcd/);
    // nothing was handed over
    expect(statSync(join(root, 'var/lib/etcd/etcd-0-e1')).uid).toBe(0);
  });

  it('refuses a binary the user cannot execute (under a private dir), naming it', async () => {
    if (process.getuid?.() !== 0) return;
    const root = fresh('run-as-bin');
    const priv = join(root, 'private');
    mkdirSync(priv, { mode: 0o700 });
    chmodSync(priv, 0o700);
    writeFileSync(join(priv, 'etcd'), '#!/bin/sh\n', { mode: 0o755 });
    const err = await prepareRunAs(join(root, 'node'), etcdSpec(), silentLogger, join(priv, 'etcd')).catch(
      (e) => e,
    );
    expect(err.code).toBe('DROVER_ERR_RUN_AS');
    expect(err.message, err.message).toContain(`cannot execute ${join(priv, 'etcd')}`);
    expect(err.message).toContain(`${priv} (mode 0700`);
  });

  it('the lab refuses a dir under one other users cannot search', () => {
    const outer = fresh('lab-closed');
    mkdirSync(join(outer, 'private'), { mode: 0o700 });
    chmodSync(join(outer, 'private'), 0o700);
    expect(() => checkLabDirReachable(join(outer, 'private', 'lab'))).toThrow(
      expect.objectContaining({ code: 'DROVER_ERR_LAB_DIR_UNREACHABLE' }),
    );
    expect(() => checkLabDirReachable(join(outer, 'open-lab'))).not.toThrow();
  });
});
