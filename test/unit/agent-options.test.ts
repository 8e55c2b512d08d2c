import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AGENT_ERRORS, AGENT_ERRORS_OWN, AgentError } from '../../agent/errors.js';
import {
  collectDisks,
  collectFacts,
  type FactsSource,
  factsKey,
  parseVersion,
  probeBinaries,
} from '../../agent/facts.js';
import { resolveIdentity } from '../../agent/identity.js';
import { compileAgentOptions, describeAgentOptions } from '../../agent/options.js';
import { decodeValue, Facts } from '../../protocol/index.js';
import { tempDir } from '../helpers/proc.js';

describe('agent options', () => {
  it('fills defaults, converts durations and freezes', () => {
    const o = compileAgentOptions({ configText: '' });
    expect(o.dataDir).toBe('/var/lib/drover/agent');
    expect(o.rootDir).toBe('/');
    expect(o.runtime).toBe('systemd');
    expect(o.heartbeatIntervalMs).toBe(2000);
    expect(o.factsIntervalMs).toBe(300_000);
    expect(o.stopRolesOnExit).toBe(false);
    expect(o.nats.servers).toEqual(['nats://127.0.0.1:4222']);
    expect(Object.isFrozen(o)).toBe(true);
    expect(Object.isFrozen(o.nats)).toBe(true);
  });

  it('file < env < flags', () => {
    const o = compileAgentOptions({
      configFile: '/x/agent.yaml',
      configText: [
        'nodeId: from-file',
        'heartbeatInterval: 5s',
        'labels: { zone: a }',
        'nats:',
        '  servers: [nats://10.0.0.1:4222]',
        '  tls: { ca: /ca.pem }',
        'runtime: process',
      ].join('\n'),
      env: { DROVER_NODE_ID: 'from-env', DROVER_HEARTBEAT_INTERVAL: '3s', DROVER_LABELS: 'zone=b,rack=r1' },
      flags: { 'node-id': 'from-flag', 'nats-servers': 'nats://a:1,nats://b:2', 'stop-roles-on-exit': true },
    });
    expect(o.nodeId).toBe('from-flag');
    expect(o.heartbeatIntervalMs).toBe(3000);
    expect(o.labels).toEqual({ zone: 'b', rack: 'r1' });
    expect(o.nats.servers).toEqual(['nats://a:1', 'nats://b:2']);
    expect(o.nats.tls).toEqual({ ca: '/ca.pem' });
    expect(o.runtime).toBe('process');
    expect(o.stopRolesOnExit).toBe(true);
  });

  it('refuses unknown and wrong keys by name', () => {
    const bad = (input: Parameters<typeof compileAgentOptions>[0], match: RegExp) => {
      let err: unknown;
      try {
        compileAgentOptions(input);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(AgentError);
      expect((err as AgentError).code).toBe('DROVER_ERR_CONFIG');
      expect((err as Error).message).toMatch(match);
    };
    bad({ configText: 'nodeid: x' }, /nodeid: (unknown option|unexpected property)/);
    bad(
      { configText: 'nats: { tls: { cafile: x } }' },
      /nats\.tls\.cafile: (unknown option|unexpected property)/,
    );
    bad({ configText: 'runtime: docker' }, /runtime/);
    bad({ configText: 'heartbeatInterval: soon' }, /heartbeatInterval: not a duration/);
    bad({ configText: 'heartbeatInterval: 10ms' }, /heartbeatInterval: must be at least 100ms/);
    bad({ configText: 'nodeId: "a.b"' }, /nodeId/);
    bad({ configText: '', flags: { 'no-such': 'x' } }, /--no-such: unknown flag/);
    bad({ configText: 'nats: { tls: { cert: /c.pem } }' }, /nats\.tls: cert and key/);
    bad({ configText: '- a list' }, /mapping/);
    bad({ configFile: '/nonexistent/agent.yaml' }, /cannot read config file/);
  });

  it('describes every option with its flag and env var', () => {
    const d = describeAgentOptions();
    const byFlag = new Map(d.map((x) => [x.flag, x]));
    for (const flag of [
      '--node-id',
      '--nats-servers',
      '--nats-token',
      '--nats-user',
      '--nats-password',
      '--nats-nkey-seed',
      '--nats-creds-file',
      '--nats-tls-ca',
      '--nats-tls-cert',
      '--nats-tls-key',
      '--advertise-address',
      '--labels',
      '--data-dir',
      '--root-dir',
      '--runtime',
      '--join-token',
      '--heartbeat-interval',
      '--facts-interval',
      '--coordinator-key-fingerprint',
      '--stop-roles-on-exit',
      '--log-level',
    ])
      expect(byFlag.has(flag), flag).toBe(true);
    expect(byFlag.get('--nats-tls-ca')?.env).toBe('DROVER_NATS_TLS_CA');
    expect(d.every((x) => x.description.length > 0)).toBe(true);
  });
});

describe('agent error registry', () => {
  it('codes are unique, prefixed and documented (in docs/agent.md too)', () => {
    const doc = readFileSync(new URL('../../docs/agent.md', import.meta.url), 'utf8');
    for (const [code, spec] of Object.entries(AGENT_ERRORS)) {
      expect(code).toMatch(/^DROVER_ERR_[A-Z_]+$/);
      expect(spec.description.length).toBeGreaterThan(10);
      expect(spec.status).toBeGreaterThanOrEqual(400);
    }
    for (const code of Object.keys(AGENT_ERRORS_OWN)) expect(doc, code).toContain(code);
  });
});

describe('agent identity', () => {
  it('uses the configured id, then the persisted one, then machine-id, else generates and persists', async () => {
    const data = tempDir('id');
    const root = tempDir('root');
    const a = await resolveIdentity({ nodeId: 'cfg-1', dataDir: data, rootDir: root });
    expect(a).toMatchObject({ nodeId: 'cfg-1', source: 'config' });
    const b = await resolveIdentity({ dataDir: data, rootDir: root });
    expect(b).toMatchObject({ nodeId: 'cfg-1', source: 'data-dir' });

    const data2 = tempDir('id');
    mkdirSync(join(root, 'etc'), { recursive: true });
    writeFileSync(join(root, 'etc/machine-id'), '0123456789abcdef0123456789abcdef\n');
    const c = await resolveIdentity({ dataDir: data2, rootDir: root });
    expect(c).toMatchObject({ nodeId: '0123456789abcdef0123456789abcdef', source: 'machine-id' });
    expect(c.fingerprint.machineId).toBe('0123456789abcdef0123456789abcdef');

    const data3 = tempDir('id');
    const d = await resolveIdentity({ dataDir: data3, rootDir: tempDir('root') });
    expect(d.source).toBe('generated');
    expect(d.nodeId).toMatch(/^[0-9a-f]{32}$/);
    expect(readFileSync(join(data3, 'node-id'), 'utf8').trim()).toBe(d.nodeId);
    const again = await resolveIdentity({ dataDir: data3, rootDir: tempDir('root') });
    expect(again.nodeId).toBe(d.nodeId);
  });
});

const emptySource = (over: Partial<FactsSource> = {}): FactsSource => ({
  cpu: async () => ({ cores: 2, physicalCores: 2, manufacturer: 'AMD', brand: 'EPYC', speed: 2.5 }),
  mem: async () => ({ total: 8 * 2 ** 30 }),
  diskLayout: async () => [],
  blockDevices: async () => [],
  fsSize: async () => [],
  osInfo: async () => ({
    platform: 'linux',
    distro: 'Debian',
    release: '12',
    kernel: '6.1',
    arch: 'x64',
    hostname: 'h1',
  }),
  networkInterfaces: async () => [
    { iface: 'eth0', mac: 'aa:bb:cc:dd:ee:ff', ip4: '10.1.1.1', ip6: '', internal: false, virtual: false },
  ],
  graphics: async () => ({ controllers: [] }),
  system: async () => ({ virtual: true, virtualHost: 'KVM' }),
  ...over,
});

describe('agent facts', () => {
  it('falls back to blockDevices, then fsSize, when diskLayout is empty (VMs without partitions)', async () => {
    const blocks = await collectDisks(
      emptySource({
        blockDevices: async () => [
          { name: 'vda', type: 'disk', size: 100, mount: '/' },
          { name: 'vda1', type: 'part', size: 50 },
          { name: 'zram0', type: 'disk', size: 0 },
        ],
      }),
    );
    expect(blocks).toEqual([
      { name: '/dev/vda', type: 'disk', sizeBytes: 100, mount: '/', source: 'blockDevices' },
    ]);
    const fs = await collectDisks(
      emptySource({ fsSize: async () => [{ fs: '/dev/root', type: 'ext4', size: 42, mount: '/' }] }),
    );
    expect(fs).toEqual([{ name: '/dev/root', type: 'fs', sizeBytes: 42, mount: '/', source: 'fsSize' }]);
    const layout = await collectDisks(
      emptySource({ diskLayout: async () => [{ device: '/dev/nvme0n1', type: 'NVMe', size: 7 }] }),
    );
    expect(layout[0]).toMatchObject({ name: '/dev/nvme0n1', source: 'diskLayout' });
    const failing = await collectDisks(
      emptySource({
        diskLayout: async () => {
          throw new Error('boom');
        },
        fsSize: async () => [{ fs: 'overlay', type: 'overlay', size: 9, mount: '/' }],
      }),
    );
    expect(failing).toHaveLength(1);
  });

  it('collects facts from this real host that match the protocol schema', async () => {
    const f = await collectFacts({ machineId: 'm1' });
    expect(() => decodeValue(Facts, f)).not.toThrow();
    expect(f.cpu.cores).toBeGreaterThan(0);
    expect(f.memory.totalBytes).toBeGreaterThan(0);
    expect(f.disks.length).toBeGreaterThan(0);
    expect(f.binaries.etcd?.version).toMatch(/^3\.\d+\.\d+/);
    expect(f.binaries.haproxy?.version).toMatch(/^2\.\d+/);
    expect(f.binaries['nats-server']?.version).toMatch(/^2\.\d+/);
  });

  it('a hung version probe times out and reports unknown', async () => {
    const dir = tempDir('bin');
    writeFileSync(join(dir, 'hangs'), '#!/bin/sh\nexec sleep 30\n', { mode: 0o755 });
    const t = Date.now();
    const b = await probeBinaries({ binaries: { hangs: ['--version'] }, timeoutMs: 300, pathEnv: dir });
    expect(b.hangs).toEqual({ path: join(dir, 'hangs'), version: 'unknown' });
    expect(Date.now() - t).toBeLessThan(5000);
  });

  it('parses version banners and compares facts without the collection time', () => {
    expect(parseVersion('etcd Version: 3.4.23\nGit SHA: Not provided')).toBe('3.4.23');
    expect(parseVersion('HAProxy version 2.6.12-1+deb12u1 2023/12/16')).toBe('2.6.12-1+deb12u1');
    expect(parseVersion('Kubernetes v1.30.2')).toBe('1.30.2');
    expect(parseVersion('nothing here')).toBe('unknown');
  });

  it('factsKey ignores collectedAt only', async () => {
    const src = emptySource();
    const a = await collectFacts({ machineId: 'm', source: src, binaries: { binaries: {} }, now: () => 1 });
    const b = await collectFacts({ machineId: 'm', source: src, binaries: { binaries: {} }, now: () => 2 });
    expect(a.collectedAt).not.toBe(b.collectedAt);
    expect(factsKey(a)).toBe(factsKey(b));
    const c = await collectFacts({
      machineId: 'm',
      source: emptySource({ mem: async () => ({ total: 1 }) }),
      binaries: { binaries: {} },
    });
    expect(factsKey(c)).not.toBe(factsKey(a));
  });
});
