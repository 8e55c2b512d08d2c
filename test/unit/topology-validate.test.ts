import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  parseTopology,
  type Topology,
  TopologyError,
  validateTopology,
} from '../../coordinator/topology/index.js';
import { TerminalError } from '../../protocol/index.js';

const haText = readFileSync('examples/ha.yaml', 'utf8');
const customText = readFileSync('examples/custom.yaml', 'utf8');

function minimal(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: 'drover.dev/v1',
    kind: 'Topology',
    metadata: { name: 't' },
    cluster: { name: 't' },
    roles: {},
    ...over,
  };
}

function errorOf(f: () => unknown): TopologyError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(TopologyError);
    return err as TopologyError;
  }
  throw new Error('expected a TopologyError');
}

// biome-ignore lint/suspicious/noExplicitAny: test edits reach into arbitrary places of a document
type Loose = any;

/** A copy of the HA example with `edit` applied to its plain object. */
function ha(edit: (t: Record<string, Loose>) => void): Record<string, unknown> {
  const t = structuredClone(parseTopology(haText)) as Record<string, Loose>;
  edit(t);
  return t;
}

describe('parseTopology: the examples', () => {
  it('examples/ha.yaml normalizes with defaults filled in', () => {
    const t = parseTopology(haText, 'examples/ha.yaml');
    expect(t.metadata.name).toBe('ha');
    expect(t.cluster).toEqual({
      name: 'ha',
      kubernetesVersion: 'v1.37.2',
      serviceCIDR: '10.0.0.0/24',
      clusterDNS: '10.0.0.10',
      clusterDomain: 'cluster.local',
      binaries: {},
      apiEndpoint: { mode: 'haproxy', port: 6443 },
      certDir: '/etc/kubernetes/pki',
      logLevel: 2,
    });
    expect(Object.keys(t.roles).sort()).toEqual([
      'etcd',
      'kube-apiserver',
      'kube-controller-manager',
      'kube-proxy',
      'kube-scheduler',
      'kubelet',
      'load-balancer',
    ]);
    expect(t.roles.etcd).toEqual({
      replicas: 3,
      nodeSelector: { pool: 'control-plane' },
      resources: { cpuCores: 1, memoryBytes: 512 * 2 ** 20 },
      spread: { perNode: true },
      pins: [],
      repair: { reassignAfter: 60_000 },
      extraArgs: [],
      env: {},
    });
    expect(t.roles.kubelet!.everywhere).toBe(true);
    expect(t.roles.kubelet!.replicas).toBeUndefined();
    expect(t.customRoles).toEqual({});
  });

  it('examples/custom.yaml defines and uses a custom role', () => {
    const t = parseTopology(customText, 'examples/custom.yaml');
    expect(t.roles.echo!.replicas).toBe(2);
    const echo = t.customRoles.echo!;
    expect(echo.files[0]!.mode).toBe(0o644);
    expect(echo.health).toEqual({
      kind: 'http',
      port: 8080,
      path: '/healthz',
      period: 1000,
      timeout: 500,
      initialDelay: 0,
      failureThreshold: 3,
      successThreshold: 1,
    });
    expect(echo.ports).toEqual([8080]);
  });

  it('normalizing is idempotent, through JSON too', () => {
    for (const text of [haText, customText]) {
      const t = parseTopology(text);
      expect(validateTopology(structuredClone(t))).toEqual(t);
      expect(parseTopology(JSON.stringify(t))).toEqual(t);
    }
  });

  it('does not modify its input', () => {
    const input = ha(() => {});
    const before = structuredClone(input);
    validateTopology(input);
    expect(input).toEqual(before);
  });

  it('defaults: replicas 1, or the pin count; mode direct without a load balancer', () => {
    const t = validateTopology(
      minimal({
        roles: {
          etcd: { pins: ['a', 'b', 'c'] },
          'kube-apiserver': {},
          kubelet: { everywhere: true },
        },
      }),
    );
    expect(t.roles.etcd!.replicas).toBe(3);
    expect(t.roles['kube-apiserver']!.replicas).toBe(1);
    expect(t.cluster.apiEndpoint.mode).toBe('direct');
  });
});

describe('validateTopology: errors name the field', () => {
  const cases: Array<[string, () => unknown, string, string]> = [
    [
      'negative replicas',
      () => ha((t) => (t.roles['kube-apiserver'].replicas = -1)),
      'roles.kube-apiserver.replicas',
      'must be an integer >= 0',
    ],
    [
      'replicas as text',
      () => ha((t) => (t.roles.etcd.replicas = 'three')),
      'roles.etcd.replicas',
      'must be an integer >= 0',
    ],
    [
      'a misspelt field',
      () =>
        ha((t) => {
          t.roles.etcd.replica = 3;
        }),
      'roles.etcd.replica',
      'unknown field; did you mean "replicas"?',
    ],
    ['missing apiVersion', () => ha((t) => delete t.apiVersion), 'apiVersion', 'is required'],
    ['wrong apiVersion', () => ha((t) => (t.apiVersion = 'v1')), 'apiVersion', 'must be drover.dev/v1'],
    ['wrong kind', () => ha((t) => (t.kind = 'Cluster')), 'kind', 'must be Topology'],
    [
      'bad metadata name',
      () => ha((t) => (t.metadata.name = 'has space')),
      'metadata.name',
      'must be a name',
    ],
    [
      'unknown role',
      () => ha((t) => (t.roles['kube-apiservr'] = { replicas: 1 })),
      'roles.kube-apiservr',
      'unknown role "kube-apiservr"',
    ],
    [
      'bad role name',
      () => ha((t) => (t.roles.Web = { replicas: 1 })),
      'roles.Web',
      'is not a valid role name',
    ],
    [
      'replicas and everywhere',
      () => ha((t) => (t.roles.kubelet.replicas = 2)),
      'roles.kubelet.everywhere',
      'cannot be combined with replicas',
    ],
    [
      'etcd everywhere',
      () => ha((t) => (t.roles.etcd = { everywhere: true })),
      'roles.etcd.everywhere',
      'fixed member count',
    ],
    [
      'more pins than replicas',
      () => ha((t) => (t.roles.etcd.pins = ['a', 'b', 'c', 'd'])),
      'roles.etcd.pins',
      '4 pins but replicas is 3',
    ],
    [
      'a node pinned twice',
      () => ha((t) => (t.roles.etcd.pins = ['a', 'b', 'a'])),
      'roles.etcd.pins[2]',
      'pinned twice',
    ],
    [
      'the same node twice in the pins of an everywhere role (its node list)',
      () => ha((t) => (t.roles.kubelet.pins = ['a', 'a'])),
      'roles.kubelet.pins[1]',
      'node a is pinned twice',
    ],
    [
      'a custom role shadowing a built-in',
      () => ha((t) => (t.customRoles = { etcd: { command: '/bin/true' } })),
      'customRoles.etcd',
      'conflicts with the built-in role etcd',
    ],
    [
      'an unknown dependency',
      () => ha((t) => (t.customRoles = { web: { command: '/bin/true', dependsOn: ['databse'] } })),
      'customRoles.web.dependsOn[0]',
      'unknown role "databse"',
    ],
    [
      'haproxy mode without a load balancer',
      () => ha((t) => delete t.roles['load-balancer']),
      'cluster.apiEndpoint.mode',
      'haproxy needs a load-balancer role',
    ],
    [
      'a load balancer scaled to zero',
      () => ha((t) => (t.roles['load-balancer'].replicas = 0)),
      'cluster.apiEndpoint.mode',
      'haproxy needs a load-balancer role',
    ],
    [
      'external mode without an address',
      () => ha((t) => (t.cluster.apiEndpoint = { mode: 'external' })),
      'cluster.apiEndpoint.address',
      'is required when mode is external',
    ],
    [
      'direct mode with three API servers',
      () => ha((t) => (t.cluster.apiEndpoint = { mode: 'direct' })),
      'roles.kube-apiserver.replicas',
      'must be replicas: 1 when cluster.apiEndpoint.mode is direct (got 3)',
    ],
    [
      'an API server without etcd',
      () => ha((t) => delete t.roles.etcd),
      'roles.kube-apiserver',
      'kube-apiserver needs role etcd',
    ],
    [
      'a bad endpoint mode',
      () => ha((t) => (t.cluster.apiEndpoint.mode = 'vip')),
      'cluster.apiEndpoint.mode',
      'must be haproxy, external or direct',
    ],
    [
      'Gt with a word',
      () => ha((t) => (t.roles.etcd.nodeSelector['drover.dev/cpu-cores'] = { op: 'Gt', values: ['many'] })),
      'roles.etcd.nodeSelector["drover.dev/cpu-cores"]',
      'Gt needs exactly one integer value',
    ],
    [
      'an unknown selector operator',
      () => ha((t) => (t.roles.etcd.nodeSelector.zone = { op: 'Near', values: ['a'] })),
      'roles.etcd.nodeSelector.zone',
      'must be a label value, or { op: In|NotIn|Exists|DoesNotExist|Gt|Lt',
    ],
    [
      'In without values',
      () => ha((t) => (t.roles.etcd.nodeSelector.zone = { op: 'In' })),
      'roles.etcd.nodeSelector.zone',
      'In needs at least one value',
    ],
    [
      'a bad label key',
      () => ha((t) => (t.roles.etcd.nodeSelector['bad key'] = 'x')),
      'roles.etcd.nodeSelector["bad key"]',
      'is not a valid key here',
    ],
    [
      'memory in GB',
      () => ha((t) => (t.roles.etcd.resources = { memory: '4GB' })),
      'roles.etcd.resources.memory',
      '"4GB" is not a quantity',
    ],
    [
      'a duration in words',
      () => ha((t) => (t.roles.etcd.repair = { reassignAfter: '15 seconds' })),
      'roles.etcd.repair.reassignAfter',
      'must be a duration such as 500ms, 15s or 1m30s',
    ],
    [
      'restart backoff upside down',
      () => ha((t) => (t.roles.etcd.repair = { restart: { initialBackoff: '10s', maxBackoff: '1s' } })),
      'roles.etcd.repair.restart.maxBackoff',
      'must be >= initialBackoff',
    ],
    [
      'a bad service CIDR',
      () => ha((t) => (t.cluster.serviceCIDR = '10.0.0.0')),
      'cluster.serviceCIDR',
      'is not a CIDR',
    ],
    [
      'cluster DNS outside the service CIDR',
      () => ha((t) => (t.cluster.clusterDNS = '192.168.0.10')),
      'cluster.clusterDNS',
      'is not inside serviceCIDR 10.0.0.0/24',
    ],
    [
      'a binary for an unknown role',
      () => ha((t) => (t.cluster.binaries = { 'kube-apiservr': '/usr/bin/x' })),
      'cluster.binaries.kube-apiservr',
      'unknown built-in role',
    ],
    [
      'a relative binary path',
      () => ha((t) => (t.cluster.binaries = { etcd: 'bin/etcd' })),
      'cluster.binaries.etcd',
      'must be an absolute path',
    ],
    [
      'a port out of range',
      () => ha((t) => (t.cluster.apiEndpoint.port = 70000)),
      'cluster.apiEndpoint.port',
      'must be a port number',
    ],
  ];
  it.each(cases)('%s', (_name, make, path, message) => {
    const err = errorOf(() => validateTopology(make(), 'test.yaml'));
    expect(err.path).toBe(path);
    expect(err.message).toContain(message);
    expect(err.message.startsWith(`test.yaml: ${path}: `)).toBe(true);
    expect(err.code).toBe('DROVER_ERR_TOPOLOGY_INVALID');
    expect(err.status).toBe(400);
    expect(err).toBeInstanceOf(TerminalError);
    expect(err.details).toMatchObject({ path, source: 'test.yaml' });
  });

  const custom = (def: Record<string, unknown>, roles: Record<string, unknown> = { web: {} }) =>
    minimal({ customRoles: { web: { command: '/usr/bin/web', ...def } }, roles });
  const customCases: Array<[string, () => unknown, string, string]> = [
    [
      'a decimal file mode',
      () => custom({ files: [{ path: '/etc/web.conf', mode: 644, content: '' }] }),
      'customRoles.web.files[0].mode',
      'a bare 644 in YAML is decimal',
    ],
    [
      'a relative file path',
      () => custom({ files: [{ path: 'etc/web.conf', content: '' }] }),
      'customRoles.web.files[0].path',
      'must be an absolute path',
    ],
    [
      'a path escaping with ..',
      () => custom({ files: [{ path: '/etc/../root/x', content: '' }] }),
      'customRoles.web.files[0].path',
      'must not contain ".."',
    ],
    [
      'an unknown placeholder',
      () => custom({ args: ['--bind', '{{node.ip}}'] }),
      'customRoles.web.args[1]',
      'unknown placeholder {{node.ip}}',
    ],
    [
      'a placeholder naming a role not in the topology',
      () => custom({ env: { PEERS: '{{role.db.addresses}}' } }),
      'customRoles.web.env.PEERS',
      'refers to role db, which is not in this topology',
    ],
    [
      'an http probe without a port',
      () => custom({ health: { kind: 'http', path: '/' } }),
      'customRoles.web.health.port',
      'is required for a http probe',
    ],
    [
      'an exec probe without a command',
      () => custom({ health: { kind: 'exec' } }),
      'customRoles.web.health.command',
      'is required for an exec probe',
    ],
    [
      'a port listed twice',
      () => custom({ ports: [80, 80] }),
      'customRoles.web.ports[1]',
      'port 80 is listed twice',
    ],
    ['no command', () => custom({ command: '' }), 'customRoles.web.command', 'must be a non-empty string'],
    [
      'an api placeholder without an endpoint',
      () => custom({ args: ['{{api.url}}'] }),
      'cluster.apiEndpoint.mode',
      'direct needs exactly one kube-apiserver',
    ],
  ];
  it.each(customCases)('%s', (_name, make, path, message) => {
    const err = errorOf(() => validateTopology(make()));
    expect(err.path).toBe(path);
    expect(err.message).toContain(message);
  });

  it('lists every problem it found, not only the first', () => {
    const err = errorOf(() =>
      validateTopology(
        ha((t) => {
          t.roles.etcd.replicas = -1;
          t.roles.kubelet.nodeSelector = 7;
          t.cluster.name = '';
        }),
      ),
    );
    expect(err.problems.map((p) => p.path).sort()).toEqual([
      'cluster.name',
      'roles.etcd.replicas',
      'roles.kubelet.nodeSelector',
    ]);
    expect(err.message).toContain('and 2 more problems');
  });

  it('refuses non-objects', () => {
    for (const v of [null, 3, 'x', [], undefined])
      expect(errorOf(() => validateTopology(v)).message).toContain('must be a YAML or JSON object');
  });
});

describe('parseTopology: syntax and line numbers', () => {
  it('reports YAML syntax errors with their line', () => {
    const err = errorOf(() => parseTopology('apiVersion: drover.dev/v1\nkind: [Topology\n', 'bad.yaml'));
    expect(err.path).toBe('');
    expect(err.message).toMatch(/^bad\.yaml: line \d+, column \d+: /);
    expect(err.details).toMatchObject({ line: expect.any(Number) });
  });

  it('refuses duplicate keys', () => {
    const err = errorOf(() => parseTopology('kind: Topology\nkind: Topology\n'));
    expect(err.message.toLowerCase()).toContain('unique');
  });

  it('refuses several documents', () => {
    expect(errorOf(() => parseTopology(`${haText}\n---\n${haText}`)).code).toBe(
      'DROVER_ERR_TOPOLOGY_INVALID',
    );
  });

  it('points at the line of the offending field', () => {
    const text = haText.replace(
      'replicas: 3\n    nodeSelector: { pool: control-plane }\n    resources: { cpuCores: 1, memory: 512Mi }\n    repair:',
      'replicas: -3\n    nodeSelector: { pool: control-plane }\n    resources: { cpuCores: 1, memory: 512Mi }\n    repair:',
    );
    expect(text).not.toBe(haText);
    const line = text.split('\n').findIndex((l) => l.includes('replicas: -3')) + 1;
    const err = errorOf(() => parseTopology(text, 'ha.yaml'));
    expect(err.path).toBe('roles.etcd.replicas');
    expect(err.details).toMatchObject({ line });
    expect(err.message).toContain(`(line ${line})`);
  });

  it('reads JSON', () => {
    expect(
      parseTopology(JSON.stringify(minimal({ roles: { etcd: { replicas: 1 } } }))).roles.etcd!.replicas,
    ).toBe(1);
  });

  it('refuses alias bombs and oversized input', () => {
    const bomb = `a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n`;
    expect(errorOf(() => parseTopology(bomb)).code).toBe('DROVER_ERR_TOPOLOGY_INVALID');
    expect(errorOf(() => parseTopology(`# ${'x'.repeat(1024 * 1024)}`)).message).toContain('larger than');
  });
});

describe('validateTopology: bad input never crashes', () => {
  it('any value at any place gives a TopologyError or a valid topology (fast-check)', () => {
    const base = parseTopology(haText) as unknown as Record<string, unknown>;
    const paths: string[][] = [];
    const walk = (v: unknown, p: string[]) => {
      paths.push(p);
      if (v && typeof v === 'object' && !Array.isArray(v))
        for (const [k, c] of Object.entries(v)) walk(c, [...p, k]);
    };
    walk(base, []);
    fc.assert(
      fc.property(fc.constantFrom(...paths.filter((p) => p.length > 0)), fc.anything(), (path, junk) => {
        const t = structuredClone(base) as Record<string, unknown>;
        let cur = t;
        for (const k of path.slice(0, -1)) cur = cur[k] as Record<string, unknown>;
        cur[path[path.length - 1]!] = junk;
        try {
          const out: Topology = validateTopology(t);
          expect(validateTopology(out)).toEqual(out);
        } catch (err) {
          if (!(err instanceof TopologyError)) throw err;
          expect(err.path.length + err.message.length).toBeGreaterThan(0);
        }
      }),
      { numRuns: 500 },
    );
  });
});
