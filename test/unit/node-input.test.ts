// What a node reports is validated where it is decoded (issue 15, point 8): the rules, the
// decoder, the coordinator's intake, and every renderer defending itself against a bad record
// that got into the store before the rules existed.

import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import {
  haproxyConfig,
  type Member,
  type RenderContext,
  renderInstance,
  renderPlans,
  resolveApiEndpoint,
} from '../../coordinator/catalog/index.js';
import { yamlScalar } from '../../coordinator/catalog/kubeconfig.js';
import { hostPort } from '../../coordinator/catalog/paths.js';
import { placeholderLookup } from '../../coordinator/catalog/roles/custom.js';
import { Engine } from '../../coordinator/engine.js';
import type { NodeRecord } from '../../coordinator/model.js';
import { certSpecFor } from '../../coordinator/pki/profiles.js';
import { MemoryStore } from '../../coordinator/store/index.js';
import { parseTopology, type Topology } from '../../coordinator/topology/index.js';
import { silentLogger } from '../../lib/logger.js';
import {
  DecodeError,
  decodeMessage,
  encode,
  generateSigningKey,
  isHostname,
  isIpAddress,
  isLabelKey,
  isLabelValue,
  PROTOCOL_VERSION,
  type Register,
} from '../../protocol/index.js';
import { echoTopology, RecordingBus, TEST_TIMINGS } from '../helpers/api.js';
import { assign, haAssignments, haNodes, makeNode, nodeMap } from '../helpers/cluster-fixtures.js';
import { sampleFacts } from '../helpers/fixtures.js';
import { waitFor } from '../helpers/wait.js';

const EVIL = '10.0.0.1\n  server evil 6.6.6.6:6443';
const ha = () => parseTopology(readFileSync('examples/ha.yaml', 'utf8'));

describe('the rules (protocol/node-input.ts)', () => {
  it('an address is an IPv4 or IPv6 address and nothing else', () => {
    for (const ok of [
      '10.0.0.1',
      '0.0.0.0',
      '255.255.255.255',
      '::1',
      '::',
      'fe80::1',
      '2001:db8::8a2e:370:7334',
      '::ffff:10.0.0.1',
      '1:2:3:4:5:6:7:8',
    ])
      expect(isIpAddress(ok), ok).toBe(true);
    for (const bad of [
      EVIL,
      '10.0.0.1 ',
      ' 10.0.0.1',
      '10.0.0.1\n',
      'fe80::1%eth0',
      '[::1]',
      '10.0.0.256',
      '010.0.0.1',
      '10.0.0',
      'host.example',
      '',
      '1:2:3:4:5:6:7:8:9',
      '::1\r',
    ])
      expect(isIpAddress(bad), JSON.stringify(bad)).toBe(false);
  });

  it('accepts every address node:net does for generated IPv4 and IPv6, and nothing it refuses', () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), (a) => {
        expect(isIpAddress(a)).toBe(true);
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF:.% \n[]'.split('')), maxLength: 45 }),
        (s) => {
          if (isIpAddress(s)) expect(isIP(s)).not.toBe(0);
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('a hostname is an RFC 1123 name', () => {
    const l63 = 'a'.repeat(63);
    for (const ok of [
      'cp-1',
      'a',
      'node1.example.com',
      'CP-1',
      '1node',
      [l63, l63, l63, 'a'.repeat(61)].join('.'),
    ])
      expect(isHostname(ok), ok).toBe(true);
    for (const bad of [
      '',
      '-a',
      'a-',
      'a_b',
      'a b',
      'a\nb',
      'node.',
      '.node',
      'a..b',
      'a'.repeat(64),
      [l63, l63, l63, 'a'.repeat(62)].join('.'),
      'héte',
    ])
      expect(isHostname(bad), JSON.stringify(bad)).toBe(false);
  });

  it('labels follow Kubernetes label syntax', () => {
    for (const k of ['zone', 'drover.dev/cluster', 'example.com/a_b.c-d', 'A1'])
      expect(isLabelKey(k), k).toBe(true);
    for (const k of [
      '',
      'a b',
      'Example.com/x',
      '/x',
      'a/',
      'x/y/z',
      'a'.repeat(64),
      `${'a'.repeat(254)}/x`,
      'k\n',
    ])
      expect(isLabelKey(k), JSON.stringify(k)).toBe(false);
    for (const v of ['', 'a', 'eu-west_1.b', 'x'.repeat(63)]) expect(isLabelValue(v), v).toBe(true);
    for (const v of ['-a', 'a-', 'a b', 'x'.repeat(64), 'a\nb', 'a/b'])
      expect(isLabelValue(v), JSON.stringify(v)).toBe(false);
  });
});

const register = (o: Partial<Register> = {}): Register => ({
  v: PROTOCOL_VERSION,
  type: 'register',
  nodeId: 'n1',
  hostname: 'n1',
  address: '10.0.0.1',
  labels: {},
  facts: sampleFacts({ hostname: 'n1' }),
  fingerprint: { machineId: 'm1', macs: [] },
  agentVersion: 't',
  ...o,
});

describe('the decoder refuses a bad value, naming the field', () => {
  const refused = (msg: unknown) => {
    try {
      decodeMessage('Register', encode(msg));
    } catch (err) {
      expect(err).toBeInstanceOf(DecodeError);
      return err as DecodeError;
    }
    throw new Error('decoded');
  };

  it('an address with a newline', () => {
    const e = refused(register({ address: EVIL }));
    expect(e.field).toBe('/address');
    expect(e.message).toContain('must be an IP address');
    expect(e.message).toContain('\\n'); // the value, escaped
  });

  it('a hostname, a NIC address, a label key and a label value', () => {
    expect(refused(register({ hostname: 'n1\nx' })).field).toBe('/hostname');
    expect(refused(register({ hostname: 'a_b' })).message).toContain('RFC 1123');
    const nic = { name: 'eth0', mac: '', addresses: ['fe80::1%eth0'], internal: false, virtual: false };
    expect(refused(register({ facts: sampleFacts({ hostname: 'n1', network: [nic] }) })).field).toBe(
      '/facts/network/0/addresses/0',
    );
    expect(refused(register({ facts: sampleFacts({ hostname: 'bad host' }) })).field).toBe('/facts/hostname');
    expect(refused(register({ labels: { 'bad key': 'x' } })).field).toMatch(/^\/labels/);
    const v = refused(register({ labels: { zone: 'a\nb' } }));
    expect(v.field).toBe('/labels/zone');
    expect(v.message).toContain('Kubernetes label value');
  });

  it('an OS platform or architecture that could not be a label', () => {
    const os = { platform: 'linux', distro: 'd', release: 'r', kernel: 'k', arch: 'x64\nevil: 1' };
    expect(refused(register({ facts: sampleFacts({ hostname: 'n1', os }) })).field).toBe('/facts/os/arch');
  });

  it('the same for a facts update', () => {
    const f = { v: PROTOCOL_VERSION, type: 'facts', nodeId: 'n1', facts: sampleFacts({ hostname: 'x\ny' }) };
    expect(() => decodeMessage('FactsUpdate', encode(f))).toThrow(/facts\/hostname/);
  });
});

/** The engine's queue, drained until nothing more comes (as test/helpers/api.ts settles). */
async function settle(e: Engine): Promise<void> {
  for (let i = 0; i < 3; i++) {
    await e.queue.idle();
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function engine(store = new MemoryStore()) {
  const e = new Engine({
    store,
    logger: silentLogger,
    signingKey: generateSigningKey(),
    timings: TEST_TIMINGS,
  });
  e.attachBus(new RecordingBus());
  await e.start();
  return e;
}

describe('the intake refuses it too (for callers that skip the bus), and changes nothing', () => {
  it('a bad address or label on a known node leaves its record as it was', async () => {
    const e = await engine();
    await e.handleRegister(register());
    const before = structuredClone(e.nodes.get('n1'));
    await expect(e.handleRegister(register({ address: EVIL }))).rejects.toThrow(
      /node n1: address "10\.0\.0\.1\\n {2}server evil 6\.6\.6\.6:6443" is not an IP address/,
    );
    await expect(e.handleRegister(register({ hostname: 'n1 evil' }))).rejects.toMatchObject({
      code: 'DROVER_ERR_DECODE',
      field: '/hostname',
    });
    await expect(e.handleRegister(register({ labels: { zone: 'a b' } }))).rejects.toThrow(/label zone/);
    const nic = { name: 'eth0', mac: '', addresses: ['1.2.3.4\n'], internal: false, virtual: false };
    await expect(
      e.handleFacts({
        v: PROTOCOL_VERSION,
        type: 'facts',
        nodeId: 'n1',
        facts: sampleFacts({ hostname: 'n1', network: [nic] }),
      }),
    ).rejects.toMatchObject({ field: '/facts/network/0/addresses/0' });
    expect(e.nodes.get('n1')).toEqual(before);
    await e.close();
  });

  it('a new node with a bad address gets no record', async () => {
    const e = await engine();
    await expect(e.handleRegister(register({ nodeId: 'n2', address: EVIL }))).rejects.toThrow(DecodeError);
    expect(e.nodes.get('n2')).toBeUndefined();
    await e.close();
  });

  it('lowers the case of a hostname (host names are case-insensitive)', async () => {
    const e = await engine();
    await e.handleRegister(register({ hostname: 'N1.Example.COM', facts: sampleFacts({ hostname: 'N1' }) }));
    expect(e.nodes.get('n1')).toMatchObject({ hostname: 'n1.example.com', facts: { hostname: 'n1' } });
    await e.close();
  });
});

describe('a bad record stored before the rules existed is rendered nowhere', () => {
  it('the engine places nothing on it, empties its plan, says so once, and no plan mentions it', async () => {
    const store = new MemoryStore();
    const bad = { ...makeNode({ id: 'bad', address: EVIL }), hostname: 'bad' };
    await store.put('nodes/bad', bad);
    const e = await engine(store);
    await e.handleRegister(register({ nodeId: 'n1', hostname: 'n1', address: '10.0.0.1' }));
    await e.handleRegister(
      register({
        nodeId: 'n2',
        hostname: 'n2',
        address: '10.0.0.2',
        fingerprint: { machineId: 'm2', macs: [] },
      }),
    );
    const topology = structuredClone(echoTopology(3)) as ReturnType<typeof echoTopology> & {
      customRoles: { echo: { env?: Record<string, string> } };
    };
    topology.customRoles.echo.env = { PEERS: '{{role.echo.addresses}}' };
    await e.applyTopology(parseTopology(JSON.stringify(topology)));
    // reconciles of a busy machine are paced: wait until both good nodes have their instance
    await waitFor('echo placed on n1 and n2', async () => {
      await settle(e);
      return ['n1', 'n2'].every((id) => (e.desiredPlan(id)?.instances.length ?? 0) > 0);
    });
    expect(e.allAssignments().map((a) => a.nodeId)).not.toContain('bad');
    expect(e.desiredPlan('bad')?.instances ?? []).toEqual([]);
    for (const id of ['n1', 'n2']) {
      const plan = JSON.stringify(e.desiredPlan(id));
      expect(plan).not.toContain('evil');
      expect(plan).toContain('10.0.0.1,10.0.0.2');
    }
    const refused = e.events.list({ kind: 'node.input-refused' });
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ nodeId: 'bad', data: { field: 'address' } });
    expect(refused[0]!.message).toMatch(/node bad: address .* is not an IP address/);
    await e.close();
  });
});

/** ha.yaml's render context for one instance, with the nodes given. */
function contextFor(t: Topology, nodes: NodeRecord[], instanceId: string): RenderContext {
  const assignments = haAssignments();
  const byId = nodeMap(nodes);
  const members = (role: string): Member[] =>
    assignments
      .filter((a) => a.role === role && byId.has(a.nodeId))
      .map((a) => ({ assignment: a, node: byId.get(a.nodeId)! }));
  const a = assignments.find((x) => x.instanceId === instanceId)!;
  return {
    topology: t,
    role: a.role,
    spec: t.roles[a.role]!,
    assignment: a,
    node: byId.get(a.nodeId)!,
    members,
    // the endpoint as the good fleet has it (resolving it from a bad node refuses, see hostPort)
    api: resolveApiEndpoint(t, (role) =>
      members(role).map((m) => ({ ...m, node: nodeMap(haNodes()).get(m.node.id) ?? m.node })),
    ),
  };
}

const poisoned = (id: string, field: 'address' | 'hostname', value = EVIL) =>
  haNodes().map((n) => (n.id === id ? { ...n, [field]: value } : n));

describe('every renderer refuses node text that would inject config', () => {
  it('haproxy.cfg: a backend with a newline in its address never becomes a second server line', () => {
    const t = ha();
    const ctx = contextFor(t, poisoned('cp-2', 'address'), 'load-balancer#0');
    // the renderer itself, handed the bad member directly
    expect(() => haproxyConfig(ctx, ctx.members('kube-apiserver'))).toThrow(/is neither an IP address nor/);
    // through renderInstance and renderPlans the bad node is left out, the rest renders
    const cfg = renderInstance(ctx).files.find((f) => f.path.endsWith('haproxy.cfg'))!.content;
    expect(cfg).not.toContain('evil');
    expect(cfg.match(/^\s*server /gm)).toHaveLength(2);
    const plans = renderPlans({
      topology: t,
      assignments: haAssignments(),
      nodes: nodeMap(poisoned('cp-2', 'address')),
    });
    const lb = plans.get('lb-1')!.find((i) => i.role === 'load-balancer')!;
    expect(lb.files[0]!.content.match(/^\s*server /gm)).toHaveLength(2);
    expect(plans.get('cp-2')).toEqual([]);
    expect(JSON.stringify([...plans.values()])).not.toContain('evil');
  });

  it('hostPort (URLs, bind lines, etcd peers) takes only an IP or a host name', () => {
    expect(hostPort('10.0.0.1', 1)).toBe('10.0.0.1:1');
    expect(hostPort('::1', 1)).toBe('[::1]:1');
    expect(hostPort('[::1]', 1)).toBe('[::1]:1');
    expect(hostPort('api.example.com', 1)).toBe('api.example.com:1');
    for (const bad of [EVIL, 'a b', '10.0.0.1:99', 'fe80::1%eth0', '[evil\n]'])
      expect(() => hostPort(bad, 1), JSON.stringify(bad)).toThrow(DecodeError);
  });

  it('kubeconfig values: anything but a plain scalar is quoted, so it stays one value', () => {
    for (const v of ['https://10.0.0.1:6443', 'a\nserver: https://6.6.6.6', 'x: y', 'true', '- a'])
      expect(parseYaml(`server: ${yamlScalar(v)}\n`)).toEqual({ server: v });
  });

  it.each([
    ['load-balancer#0', 'lb-1'],
    ['etcd#0', 'cp-1'],
    ['kube-apiserver#0', 'cp-1'],
    ['kube-scheduler#0', 'cp-1'],
    ['kube-controller-manager#0', 'cp-1'],
    ['kubelet#0', 'w-1'],
    ['kube-proxy#0', 'w-1'],
  ])(
    '%s (flags, files, probes) refuses its own node with a bad address or hostname',
    (instanceId, nodeId) => {
      const t = ha();
      for (const [field, value] of [
        ['address', EVIL],
        ['hostname', 'w-1\nExecStartPre=/bin/evil'],
      ] as const) {
        const ctx = contextFor(t, poisoned(nodeId, field, value), instanceId);
        expect(() => renderInstance(ctx)).toThrow(new RegExp(`node ${nodeId}: ${field}`));
      }
    },
  );

  it.each([
    ['etcd#0', 'cp-2'],
    ['kube-apiserver#0', 'cp-2'],
  ])('%s leaves a peer with a bad address out of its flags', (instanceId, peer) => {
    const out = JSON.stringify(renderInstance(contextFor(ha(), poisoned(peer, 'address'), instanceId)));
    expect(out).not.toContain('evil');
    expect(out).not.toContain('cp-2');
    expect(out).toContain('10.0.0.13');
  });

  it('the kwok Node manifest refuses a bad hostname', () => {
    const t = ha();
    const w = makeNode({ id: 'w-1', address: '10.0.0.21', pool: 'worker', binaries: ['kwok', 'kubectl'] });
    const nodes = haNodes().map((n) => (n.id === 'w-1' ? { ...w, hostname: 'w-1\n  evil: true' } : n));
    expect(() => renderInstance(contextFor(t, nodes, 'kubelet#0'))).toThrow(/node w-1: hostname/);
    const fine = renderInstance(
      contextFor(
        t,
        haNodes().map((n) => (n.id === 'w-1' ? w : n)),
        'kubelet#0',
      ),
    );
    expect(fine.simulator).toBe('kwok');
  });

  it('custom-role placeholders: a bad own node is refused, a bad peer is left out', () => {
    const t = parseTopology(
      JSON.stringify({
        ...echoTopology(2),
        customRoles: {
          echo: {
            command: 'node',
            args: ['{{node.address}}', '{{node.hostname}}', '{{role.echo.addresses}}'],
          },
        },
      }),
    );
    const nodes = [makeNode({ id: 'a', address: '10.0.0.1' }), makeNode({ id: 'b', address: EVIL })];
    const assignments = [
      assign('echo', 0, 'a', { cluster: 'default' }),
      assign('echo', 1, 'b', { cluster: 'default' }),
    ];
    const plans = renderPlans({ topology: t, assignments, nodes: nodeMap(nodes) });
    expect(plans.get('a')![0]!.run.args).toEqual(['10.0.0.1', 'a', '10.0.0.1']);
    expect(plans.get('b')).toEqual([]);
    const members = (): Member[] => assignments.map((x, i) => ({ assignment: x, node: nodes[i]! }));
    const ctx: RenderContext = {
      topology: t,
      role: 'echo',
      spec: t.roles.echo!,
      assignment: assignments[1]!,
      node: nodes[1]!,
      members,
      api: resolveApiEndpoint(t, members),
    };
    expect(() => renderInstance(ctx)).toThrow(/node b: address/);
    // the lookup itself sees only what renderInstance hands it: there, the bad peer is gone
    const good = { ...ctx, assignment: assignments[0]!, node: nodes[0]! };
    expect(placeholderLookup({ ...good, members: () => members().slice(0, 1) })('role.echo.addresses')).toBe(
      '10.0.0.1',
    );
  });

  it('certificate SANs: the signer refuses a bad hostname or address', () => {
    const context = { clusterDomain: 'cluster.local', serviceCidr: '10.96.0.0/12' };
    const spec = (node: { id: string; hostname: string; addresses: string[] }) =>
      certSpecFor('apiserver-serving', { node, role: 'kube-apiserver', context });
    expect(spec({ id: 'cp-1', hostname: 'cp-1', addresses: ['10.0.0.11'] }).dnsNames).toContain('cp-1');
    expect(() => spec({ id: 'cp-1', hostname: 'cp-1\nx', addresses: ['10.0.0.11'] })).toThrow(
      /node cp-1: hostname/,
    );
    expect(() => spec({ id: 'cp-1', hostname: 'cp-1', addresses: [EVIL] })).toThrow(/node cp-1: address/);
  });
});
