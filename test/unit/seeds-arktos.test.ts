import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { renderDataPartitionConfig } from '../../coordinator/arktos/index.js';
import {
  RenderCache,
  type RenderedInstance,
  renderPlans,
  roleDependencies,
} from '../../coordinator/catalog/index.js';
import type { Assignment } from '../../coordinator/model.js';
import { parseTopology, type Topology, TopologyError } from '../../coordinator/topology/index.js';
import { assign, haAssignments, haNodes, nodeMap } from '../helpers/cluster-fixtures.js';
import { expectGolden } from '../helpers/golden.js';
import { droverCli, type SeedApi, startSeedApi } from '../helpers/seeds.js';

const R = ['$', '{DROVER_ROOT}'].join('');

// Seed 000's two service groups: partition 1 takes tenants before "m" (its start is open, the
// seed's "A" with isRangeStartValid: false), partition 2 takes "m" onwards and has two API servers.
const PARTITIONS = `  partitions:
    - { id: "1", rangeStart: "A", isRangeStartValid: false, rangeEnd: "m", isRangeEndValid: true }
    - { id: "2", rangeStart: "m", isRangeStartValid: true, rangeEnd: "", isRangeEndValid: false, replicas: 2 }
`;

function arktos(partitions = PARTITIONS): Topology {
  const text = readFileSync('examples/ha.yaml', 'utf8')
    // Arktos is a fork: its example keeps the version of the seed, not the upstream pin of ha.yaml
    .replace(/kubernetesVersion: \S+/, 'kubernetesVersion: v1.28.15')
    .replace('  apiEndpoint:', `${partitions}  apiEndpoint:`)
    .replace(
      '  kubelet:',
      '  workload-controller-manager:\n    replicas: 2\n    nodeSelector: { pool: control-plane }\n  kubelet:',
    );
  return parseTopology(text, 'arktos.yaml');
}

const assignments = (): Assignment[] => [
  ...haAssignments(),
  assign('workload-controller-manager', 0, 'cp-1'),
  assign('workload-controller-manager', 1, 'cp-2'),
];

function instance(plans: Map<string, RenderedInstance[]>, id: string): RenderedInstance {
  for (const list of plans.values()) for (const i of list) if (i.id === id) return i;
  throw new Error(`no instance ${id}`);
}
const fileNamed = (i: RenderedInstance, name: string) => i.files.find((f) => f.path.endsWith(`/${name}`));

describe('examples/arktos.yaml', () => {
  it('is the topology these renders use: ha.yaml plus the seed’s partitions and the workload controller manager', () => {
    const example = parseTopology(readFileSync('examples/arktos.yaml', 'utf8'), 'examples/arktos.yaml');
    const derived = arktos();
    expect({ ...example, metadata: derived.metadata, cluster: { ...example.cluster, name: 'ha' } }).toEqual(
      derived,
    );
    expect(example.cluster.partitions?.map((p) => [p.id, p.replicas])).toEqual([
      ['1', 1],
      ['2', 2],
    ]);
  });
});

describe('Arktos partitions in the topology', () => {
  it('kube-apiserver replicas default to the partitions’ sum; bounds default to open when absent', () => {
    const t = arktos();
    expect(t.roles['kube-apiserver']!.replicas).toBe(3);
    const short = parseTopology(
      readFileSync('examples/ha.yaml', 'utf8')
        .replace(
          '  apiEndpoint:',
          '  partitions:\n    - { id: 1, rangeEnd: m }\n    - { id: 2, rangeStart: m }\n  apiEndpoint:',
        )
        .replace(/kube-apiserver:\n {4}replicas: 3\n/, 'kube-apiserver:\n'),
    );
    expect(short.cluster.partitions).toEqual([
      {
        id: '1',
        rangeStart: '',
        isRangeStartValid: false,
        rangeEnd: 'm',
        isRangeEndValid: true,
        replicas: 1,
      },
      {
        id: '2',
        rangeStart: 'm',
        isRangeStartValid: true,
        rangeEnd: '',
        isRangeEndValid: false,
        replicas: 1,
      },
    ]);
    expect(short.roles['kube-apiserver']!.replicas).toBe(2);
  });

  it.each([
    [
      'a gap',
      '  partitions:\n    - { id: "1", rangeEnd: "m" }\n    - { id: "2", rangeStart: "n" }\n',
      'cluster.partitions',
      /tenants from "m" up to "n" are served by no partition/,
    ],
    [
      'an overlap',
      '  partitions:\n    - { id: "1", rangeEnd: "m" }\n    - { id: "2", rangeStart: "k" }\n',
      'cluster.partitions',
      /overlap: tenants from "k" up to "m" are in both/,
    ],
    [
      'an empty range',
      '  partitions:\n    - { id: "1", rangeStart: "z", rangeEnd: "m" }\n',
      'cluster.partitions[0].rangeEnd',
      /must sort after rangeStart "z"/,
    ],
    [
      'a duplicate id',
      '  partitions:\n    - { id: "1", rangeEnd: "m" }\n    - { id: "1", rangeStart: "m" }\n',
      'cluster.partitions[1]',
      /share the service group id "1"/,
    ],
    [
      'a bad field',
      '  partitions:\n    - { id: "1", rangeEnd: "m", replica: 2 }\n    - { id: "2", rangeStart: "m" }\n',
      'cluster.partitions[0].replica',
      /unknown field; did you mean "replicas"\?/,
    ],
  ])('%s is refused with the field path', (_what, parts, path, message) => {
    let err: unknown;
    try {
      arktos(parts);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TopologyError);
    expect((err as TopologyError).path).toBe(path);
    expect((err as Error).message).toMatch(message);
  });

  it('API-server replicas that disagree with the partitions are refused at roles.kube-apiserver.replicas', () => {
    const text = readFileSync('examples/ha.yaml', 'utf8').replace(
      '  apiEndpoint:',
      '  partitions:\n    - { id: "1", rangeEnd: "m" }\n    - { id: "2", rangeStart: "m" }\n  apiEndpoint:',
    );
    expect(() => parseTopology(text)).toThrow(
      /roles\.kube-apiserver\.replicas: is 3 but cluster\.partitions add up to 2/,
    );
  });
});

describe('Arktos partitions in plans (golden)', () => {
  const plans = renderPlans({ topology: arktos(), assignments: assignments(), nodes: nodeMap(haNodes()) });

  it.each([
    ['kube-apiserver-p1', 'kube-apiserver#0'],
    ['kube-apiserver-p2', 'kube-apiserver#2'],
    ['kube-scheduler', 'kube-scheduler#0'],
    ['kube-controller-manager', 'kube-controller-manager#0'],
    ['workload-controller-manager', 'workload-controller-manager#1'],
    ['kubelet', 'kubelet#0'],
    ['kube-proxy', 'kube-proxy#1'],
  ])('%s', (name, id) => {
    expectGolden(`arktos/${name}`, instance(plans, id));
  });

  it('each API server runs with its service group and carries its DataPartitionConfig (the seed’s, byte for byte)', () => {
    const groups = ['kube-apiserver#0', 'kube-apiserver#1', 'kube-apiserver#2'].map(
      (id) => instance(plans, id).run.env.APISERVER_SERVICEGROUPID,
    );
    expect(groups).toEqual(['1', '2', '2']);
    const p1 = fileNamed(instance(plans, 'kube-apiserver#0'), 'datapartition-1.yaml')!;
    expect(p1.content).toBe(readFileSync('test/golden/arktos/datapartition-s1.yaml', 'utf8'));
    const p2 = fileNamed(instance(plans, 'kube-apiserver#1'), 'datapartition-2.yaml')!;
    expect(p2.content).toBe(renderDataPartitionConfig(arktos().cluster.partitions![1]!));
  });

  it('every API client gets one kubeconfig per partition, on that partition’s API server, in one --kubeconfig', () => {
    const cases: Array<[string, string]> = [
      ['kubelet#0', 'kubelet-%.kubeconfig'],
      ['kube-proxy#0', 'kube-proxy-%.kubeconfig'],
      ['kube-scheduler#1', 'scheduler-%.kubeconfig'],
      ['kube-controller-manager#2', 'kubeconfig-%.config'],
      ['workload-controller-manager#0', 'kubeconfig-%.config'],
    ];
    for (const [id, pattern] of cases) {
      const i = instance(plans, id);
      const dir = `/etc/drover/${id.replace('#', '-')}`;
      const names = ['1', '2'].map((n) => pattern.replace('%', n));
      const flag = i.run.args.filter((a) => a.startsWith('--kubeconfig='));
      expect(flag, id).toEqual([`--kubeconfig=${names.map((n) => `${R}${dir}/${n}`).join(' ')}`]);
      const servers = names.map((n) => parseYaml(fileNamed(i, n)!.content).clusters[0].cluster.server);
      // partition 1 is kube-apiserver#0 on cp-1; partition 2's first server is kube-apiserver#1 on cp-2
      expect(servers, id).toEqual(['https://10.0.0.11:6443', 'https://10.0.0.12:6443']);
    }
    expect(instance(plans, 'workload-controller-manager#0').run.args).toContain(
      `--controllerconfig=${R}/etc/drover/workload-controller-manager-0/controllerconfig.json`,
    );
  });

  it('when a partition’s API server moves, its clients’ kubeconfigs follow (also through the render cache)', () => {
    const t = arktos();
    const cache = new RenderCache();
    const nodes = nodeMap(haNodes());
    const before = renderPlans({ topology: t, assignments: assignments(), nodes, options: { cache } });
    const moved = assignments().map((a) =>
      a.instanceId === 'kube-apiserver#1' ? { ...a, nodeId: 'cp-4', epoch: 2 } : a,
    );
    const after = renderPlans({ topology: t, assignments: moved, nodes, options: { cache } });
    const server = (p: typeof after) =>
      parseYaml(fileNamed(instance(p, 'kubelet#1'), 'kubelet-2.kubeconfig')!.content).clusters[0].cluster
        .server;
    expect(server(before)).toBe('https://10.0.0.12:6443');
    expect(server(after)).toBe('https://10.0.0.14:6443');
    expect(roleDependencies('kubelet', t)).toContain('kube-apiserver');
  });
});

describe('GET /v1/tenants/:name/partition (drover tenants resolve)', () => {
  let t: SeedApi | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('names the partition and the API servers that serve a tenant; range edges follow Arktos', async () => {
    t = await startSeedApi();
    for (const id of ['n1', 'n2', 'n3']) await t.register(id, { labels: { 'drover.dev/cluster': 'ark' } });
    const topo = {
      apiVersion: 'drover.dev/v1',
      kind: 'Topology',
      metadata: { name: 'ark' },
      cluster: {
        name: 'ark',
        apiEndpoint: { mode: 'external', address: '10.9.9.9' },
        partitions: [
          { id: '1', rangeStart: 'A', isRangeStartValid: false, rangeEnd: 'm', isRangeEndValid: true },
          { id: '2', rangeStart: 'm', isRangeStartValid: true, rangeEnd: '', isRangeEndValid: false },
        ],
      },
      roles: { etcd: { replicas: 1 }, 'kube-apiserver': {} },
    };
    const put = await t.app.inject({
      method: 'PUT',
      url: '/v1/topology',
      headers: t.auth(t.admin),
      payload: topo,
    });
    expect(put.statusCode, put.body).toBe(200);
    await t.settle();
    const resolve = async (tenant: string, q = '') =>
      t!.app.inject({
        method: 'GET',
        url: `/v1/tenants/${encodeURIComponent(tenant)}/partition${q}`,
        headers: t!.auth(t!.viewer),
      });
    const a = (await resolve('a')).json();
    expect(a.partition).toMatchObject({ id: '1', name: 'partition-1' });
    expect(a.apiServers).toHaveLength(1);
    expect(a.apiServers[0]).toMatchObject({
      instanceId: 'kube-apiserver#0',
      url: expect.stringMatching(/^https:\/\/127\.0\.0\.\d:6443$/),
    });
    // the end is exclusive: "m" itself is in partition 2; "lzzz" still in 1; uppercase sorts first
    expect((await resolve('m')).json().partition.id).toBe('2');
    expect((await resolve('lzzz')).json().partition.id).toBe('1');
    expect((await resolve('Zed')).json().partition.id).toBe('1');
    expect((await resolve('system', '?cluster=ark')).json().partition.id).toBe('2');
    // the CLI prints the same
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    const addr = t.app.server.address() as { port: number };
    const conn = ['--server', `http://127.0.0.1:${addr.port}`, '--token', t.viewer];
    const cli = await droverCli(['tenants', 'resolve', 'm', ...conn]);
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout).toMatch(
      /tenant "m" is served by partition-2 \(service group 2, tenants \["m", \(open\)\)\)/,
    );
    expect(cli.stdout).toMatch(/kube-apiserver#1/);
    const json = await droverCli(['tenants', 'resolve', 'a', '-o', 'json', ...conn]);
    expect(JSON.parse(json.stdout).partition.id).toBe('1');
    expect((await droverCli(['tenants', 'resolve', ...conn])).code).toBe(2);
    const unpartitioned = await startSeedApi();
    await unpartitioned.register('n1', { labels: { 'drover.dev/cluster': 'ark' } });
    await unpartitioned.app.inject({
      method: 'PUT',
      url: '/v1/topology',
      headers: unpartitioned.auth(unpartitioned.admin),
      payload: { ...topo, cluster: { name: 'ark', apiEndpoint: topo.cluster.apiEndpoint } },
    });
    const none = await unpartitioned.app.inject({
      method: 'GET',
      url: '/v1/tenants/a/partition',
      headers: unpartitioned.auth(unpartitioned.viewer),
    });
    expect(none.statusCode).toBe(404);
    expect(none.json().message).toMatch(/not partitioned/);
    await unpartitioned.close();
  });
});
