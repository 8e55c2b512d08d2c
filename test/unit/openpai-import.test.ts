import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { COORDINATOR_ERRORS } from '../../coordinator/errors.js';
import {
  importOpenPai,
  OPENPAI_ERRORS,
  OpenPaiError,
  parseOpenPai,
  readOpenPaiPath,
} from '../../coordinator/openpai/index.js';
import { place } from '../../coordinator/placement/index.js';
import { etcdMemberCountWarning, topologyWarnings } from '../../coordinator/topology/index.js';
import { assign, makeNode } from '../helpers/cluster-fixtures.js';
import { rmrf, tempDir } from '../helpers/proc.js';

// Shaped like seed 004 (OpenPAI's cluster-configuration.yaml and kubernetes-configuration.yaml):
// solution 2, three masters with etcdids, the dashboard on the first, and one NC24R proxy.
const SKUS = `machine-sku:
  D8SV3:
    mem: 32
    gpu:
      type: generic
      count: 0
    cpu:
      vcore: 8
    os: ubuntu16.04
  NC24R:
    mem: 224
    gpu:
      type: teslak80
      count: 4
    cpu:
      vcore: 24
    os: ubuntu16.04
`;

const MASTERS = `    - hostname: pai-master-1
      hostip: 10.0.3.9
      machine-type: D8SV3
      etcdid: etcdid1
      k8s-role: master
      dashboard: "true"

    - hostname: pai-master-2
      hostip: 10.0.3.10
      machine-type: D8SV3
      etcdid: etcdid2
      k8s-role: master

    - hostname: pai-master-3
      hostip: 10.0.3.11
      machine-type: D8SV3
      etcdid: etcdid3
      k8s-role: master
`;

const WORKERS = `    - hostname: pai-worker-1
      hostip: 10.0.3.21
      machine-type: NC24R
      k8s-role: worker
      pai-worker: "true"

    - hostname: pai-worker-2
      hostip: 10.0.3.22
      machine-type: NC24R
      k8s-role: worker
`;

const PROXY = `    - hostname: pai-proxy
      hostip: 10.0.3.5
      machine-type: NC24R
      k8s-role: proxy
`;

function clusterYaml(list: string, clusterid = 'pai-example'): string {
  return `cluster:\n  clusterid: ${clusterid}\n${SKUS}\nmachine-list:\n${list}`;
}

function k8sYaml(lb?: string, extra = ''): string {
  return `kubernetes:
  cluster-dns: 10.0.3.2
${lb ? `  load-balance-ip: ${lb}\n` : ''}  service-cluster-ip-range: 10.254.0.0/16
  storage-backend: etcd3
  docker-registry: docker.io/openpai
  hyperkube-version: v1.9.4
  etcd-version: 3.2.17
  apiserver-version: v1.9.4
${extra}`;
}

const dir = (list: string, lb?: string) => ({
  'cluster-configuration.yaml': clusterYaml(list),
  'kubernetes-configuration.yaml': k8sYaml(lb),
  'k8s-role-definition.yaml': 'ignored: true\n',
});

function problemsOf(fn: () => unknown): OpenPaiError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(OpenPaiError);
    return e as OpenPaiError;
  }
  throw new Error('expected an OpenPaiError');
}

describe('importOpenPai: the three HA solutions', () => {
  it('solution 2 (proxy node): haproxy load balancer pinned on the proxy, masters run the control plane', () => {
    const { topology: t, source, warnings } = importOpenPai(dir(MASTERS + WORKERS + PROXY, '10.0.3.5'));
    expect(source.haSolution).toBe(2);
    expect(t.metadata).toEqual({
      name: 'pai-example',
      labels: { 'drover.dev/imported-from': 'openpai', 'drover.dev/openpai-ha-solution': '2' },
    });
    expect(t.cluster.apiEndpoint).toEqual({ mode: 'haproxy', address: '10.0.3.5', port: 6443 });
    const masters = ['pai-master-1', 'pai-master-2', 'pai-master-3'];
    for (const r of ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler']) {
      expect(t.roles[r]!.pins, r).toEqual(masters);
      expect(t.roles[r]!.replicas, r).toBe(3);
    }
    const kubeletNodes = [...masters, 'pai-worker-1', 'pai-worker-2'];
    expect(t.roles.kubelet!.pins).toEqual(kubeletNodes);
    expect(t.roles['kube-proxy']!.pins).toEqual(kubeletNodes);
    expect(t.roles['load-balancer']!.pins).toEqual(['pai-proxy']);
    expect(t.roles.dashboard!.pins).toEqual(['pai-master-1']);
    expect(t.cluster.serviceCIDR).toBe('10.254.0.0/16');
    expect(t.cluster.kubernetesVersion).toBe('v1.9.4');
    // cluster-dns is the hosts' resolver in OpenPAI, not a service IP
    expect(t.cluster.clusterDNS).toBe('10.254.0.10');
    expect(warnings.join('\n')).toMatch(/cluster-dns 10\.0\.3\.2 is the hosts' resolver/);
    expect(source.masters.map((m) => m.etcdid)).toEqual(['etcdid1', 'etcdid2', 'etcdid3']);
    expect(source.nodes.find((n) => n.hostname === 'pai-worker-1')!.extra).toEqual({ 'pai-worker': 'true' });
  });

  it('solution 1 (external load balancer): apiEndpoint external at load-balance-ip, no load-balancer role', () => {
    const { topology: t, source } = importOpenPai(dir(MASTERS + WORKERS, '10.0.3.100'));
    expect(source.haSolution).toBe(1);
    expect(t.cluster.apiEndpoint).toEqual({ mode: 'external', address: '10.0.3.100', port: 6443 });
    expect(t.roles['load-balancer']).toBeUndefined();
    expect(t.roles['kube-apiserver']!.replicas).toBe(3);
  });

  it('solution 3 (single master, load-balance-ip = master ip): direct', () => {
    const single = `    - hostname: master
      hostip: 10.0.3.9
      machine-type: D8SV3
      etcdid: etcdid1
      k8s-role: master
      dashboard: "true"
${WORKERS}`;
    const { topology: t, source } = importOpenPai(dir(single, '10.0.3.9'));
    expect(source.haSolution).toBe(3);
    expect(t.cluster.apiEndpoint).toEqual({ mode: 'direct', port: 6443 });
    expect(t.roles['kube-apiserver']).toMatchObject({ replicas: 1, pins: ['master'] });
    expect(t.roles.etcd).toMatchObject({ replicas: 1, pins: ['master'] });
    // no load-balance-ip at all is solution 3 too
    expect(importOpenPai(dir(single)).source.haSolution).toBe(3);
  });

  it('accepts one YAML file holding both sections, and a name override', () => {
    const text = `${clusterYaml(MASTERS + PROXY)}\n${k8sYaml('10.0.3.5')}`;
    const { topology: t } = importOpenPai(text, { name: 'imported' });
    expect(t.metadata.name).toBe('imported');
    expect(t.cluster.name).toBe('imported');
    expect(t.cluster.apiEndpoint.mode).toBe('haproxy');
  });

  it('reads a configuration directory or a single file from disk', async () => {
    const d = tempDir('openpai');
    try {
      mkdirSync(join(d, 'cfg'));
      for (const [f, text] of Object.entries(dir(MASTERS + PROXY, '10.0.3.5')))
        writeFileSync(join(d, 'cfg', f), text);
      writeFileSync(join(d, 'cfg', 'services-configuration.yaml'), 'not: read\n');
      const files = await readOpenPaiPath(join(d, 'cfg'));
      expect(Object.keys(files as object).sort()).toEqual([
        'cluster-configuration.yaml',
        'kubernetes-configuration.yaml',
      ]);
      expect(importOpenPai(files).source.haSolution).toBe(2);
      writeFileSync(join(d, 'one.yaml'), `${clusterYaml(MASTERS + PROXY)}\n${k8sYaml('10.0.3.5')}`);
      expect(typeof (await readOpenPaiPath(join(d, 'one.yaml')))).toBe('string');
      await expect(readOpenPaiPath(join(d, 'missing'))).rejects.toBeInstanceOf(OpenPaiError);
    } finally {
      rmrf(d);
    }
  });
});

describe('importOpenPai: errors name the node and the field', () => {
  it('duplicate hostname', () => {
    const e = problemsOf(() =>
      importOpenPai(
        dir(
          MASTERS + MASTERS.replace(/10\.0\.3\.(9|10|11)/g, '10.0.4.$1').replace(/etcdid(\d)/g, 'etcd-b$1'),
          '10.0.3.100',
        ),
      ),
    );
    expect(e.code).toBe('DROVER_ERR_OPENPAI_CONFIG');
    expect(e.problems[0]).toMatchObject({
      file: 'cluster-configuration.yaml',
      node: 'pai-master-1',
      field: 'machine-list[3] (pai-master-1).hostname',
      message: 'duplicate hostname "pai-master-1": also machine-list[0]',
    });
    expect(e.message).toBe(
      'cluster-configuration.yaml: machine-list[3] (pai-master-1).hostname: duplicate hostname "pai-master-1": also machine-list[0] (and 2 more problems)',
    );
  });

  it('unknown k8s-role', () => {
    const e = problemsOf(() =>
      importOpenPai(dir(MASTERS + WORKERS.replace('k8s-role: worker', 'k8s-role: wroker'), '10.0.3.100')),
    );
    expect(e.problems).toEqual([
      {
        file: 'cluster-configuration.yaml',
        node: 'pai-worker-1',
        field: 'machine-list[3] (pai-worker-1).k8s-role',
        message: 'unknown role "wroker"; expected master, worker, proxy',
      },
    ]);
  });

  it('no master cannot form an etcd cluster at all: refused', () => {
    expect(() => importOpenPai(dir(`${WORKERS}\n`, '10.0.3.100'))).toThrow(/no node has k8s-role: master/);
  });

  it('an even master count imports with the same quorum warning a topology gets, not a refusal', () => {
    const two = MASTERS.split('\n\n').slice(0, 2).join('\n\n');
    const { topology, warnings } = importOpenPai(dir(`${two}\n`, '10.0.3.100'));
    expect(topology.roles.etcd!.replicas).toBe(2);
    const w = warnings.find((x) => /etcd/.test(x));
    expect(w).toBe(
      'cluster-configuration.yaml: machine-list: 2 masters (pai-master-1, pai-master-2) run etcd: 2 etcd members tolerate 0 failures, like 1 (quorum is 2 of 2); use 1 or 3',
    );
    // the topology's own validation says the same about the same count
    expect(topologyWarnings(topology)).toEqual([
      'roles.etcd.replicas: 2 etcd members tolerate 0 failures, like 1 (quorum is 2 of 2); use 1 or 3',
    ]);
    expect(etcdMemberCountWarning(4)).toBe(
      '4 etcd members tolerate 1 failure, like 3 (quorum is 3 of 4); use 3 or 5',
    );
    expect([1, 3, 5].map(etcdMemberCountWarning)).toEqual([undefined, undefined, undefined]);
    const three = importOpenPai(dir(MASTERS + WORKERS, '10.0.3.100'));
    expect(three.warnings.filter((x) => /etcd members/.test(x))).toEqual([]);
  });

  it('per-node roles keep the ordinals of a running cluster (no kubelet#0 shuffle on re-import)', () => {
    const { topology } = importOpenPai(dir(MASTERS + WORKERS, '10.0.3.100'));
    expect(topology.roles.kubelet!.everywhere).toBe(true);
    expect(topology.roles.kubelet!.replicas).toBeUndefined();
    const hosts = ['pai-master-1', 'pai-master-2', 'pai-master-3', 'pai-worker-1', 'pai-worker-2'];
    const nodes = hosts.map((h, i) =>
      makeNode({
        id: h,
        address: `10.0.3.${i + 1}`,
        pool: h.includes('master') ? 'control-plane' : 'worker',
      }),
    );
    // running before the import: kubelets numbered workers first (e.g. by an earlier topology)
    const order = ['pai-worker-1', 'pai-worker-2', 'pai-master-1', 'pai-master-2', 'pai-master-3'];
    const current = ['kubelet', 'kube-proxy'].flatMap((role) =>
      order.map((n, i) => assign(role, i, n, { cluster: topology.metadata.name })),
    );
    const r = place({ topology, nodes, current });
    expect(r.moved.filter((m) => m.to.role === 'kubelet' || m.to.role === 'kube-proxy')).toEqual([]);
    expect(r.removed).toEqual([]);
    const kubelets = r.assignments
      .filter((a) => a.role === 'kubelet')
      .map((a) => `${a.instanceId}@${a.nodeId}`);
    expect(kubelets).toEqual(order.map((n, i) => `kubelet#${i}@${n}`));
    // a fresh cluster: one kubelet per listed node, none elsewhere
    const extra = [...nodes, makeNode({ id: 'stranger', address: '10.0.9.9', pool: 'worker' })];
    const fresh = place({ topology, nodes: extra, current: [] });
    expect(
      fresh.assignments
        .filter((a) => a.role === 'kubelet')
        .map((a) => a.nodeId)
        .sort(),
    ).toEqual(hosts);
  });

  it('duplicate etcdid, and a master without one', () => {
    const e = problemsOf(() =>
      importOpenPai(
        dir(
          MASTERS.replace('etcdid: etcdid3', 'etcdid: etcdid1').replace('      etcdid: etcdid2\n', ''),
          '10.0.3.100',
        ),
      ),
    );
    expect(e.problems.map((p) => `${p.field}: ${p.message}`)).toEqual([
      'machine-list[1] (pai-master-2).etcdid: is required on a master: every master runs an etcd member',
      'machine-list[2] (pai-master-3).etcdid: duplicate etcdid "etcdid1": also machine-list[0] (pai-master-1)',
    ]);
  });

  it('load-balance-ip that contradicts the HA solution', () => {
    expect(() => importOpenPai(dir(MASTERS))).toThrow(
      /kubernetes-configuration\.yaml: kubernetes\.load-balance-ip: is required: 3 masters and no proxy node/,
    );
    expect(() => importOpenPai(dir(MASTERS, '10.0.3.10'))).toThrow(/is master pai-master-2's own address/);
    expect(() => importOpenPai(dir(MASTERS + PROXY, '10.0.3.99'))).toThrow(
      /is 10\.0\.3\.99 but the proxy node pai-proxy is 10\.0\.3\.5/,
    );
  });

  it('bad node fields, a second proxy, a second dashboard, an unknown machine-type — all reported at once', () => {
    const list = `${MASTERS.replace('10.0.3.10', '10.0.3.300').replace('machine-type: D8SV3\n      etcdid: etcdid3', 'machine-type: HUGE\n      etcdid: etcdid3\n      dashboard: "true"')}${PROXY}${PROXY.replace(/pai-proxy/, 'pai-proxy-2').replace('10.0.3.5', '10.0.3.6')}`;
    const e = problemsOf(() => importOpenPai(dir(list, '10.0.3.5')));
    expect(e.problems.map((p) => p.field)).toEqual([
      'machine-list[1] (pai-master-2).hostip',
      'machine-list[2] (pai-master-3).machine-type',
    ]);
    expect(e.problems[0]!.message).toBe('"10.0.3.300" is not an IP address');
    // fix those two; the next pass reports the layout problems
    const fixed = list.replace('10.0.3.300', '10.0.3.10').replace('HUGE', 'D8SV3');
    const e2 = problemsOf(() => importOpenPai(dir(fixed, '10.0.3.5')));
    expect(e2.problems.map((p) => `${p.field}: ${p.message}`)).toEqual([
      "machine-list[4] (pai-proxy-2).k8s-role: a second proxy node (first: pai-proxy); OpenPAI's solution 2 has exactly one proxy",
      'machine-list[2] (pai-master-3).dashboard: only one node may run the dashboard (already pai-master-1)',
    ]);
  });

  it('YAML syntax errors name the file and line; missing files and sections are named', () => {
    const e = problemsOf(() =>
      importOpenPai({
        'cluster-configuration.yaml': 'machine-list:\n  - hostname: [unclosed\n',
        'kubernetes-configuration.yaml': '',
      }),
    );
    expect(e.problems[0]!.file).toBe('cluster-configuration.yaml');
    expect(e.problems[0]!.message).toMatch(/is not valid YAML/);
    expect(e.problems[0]!.field).toMatch(/^line \d+:\d+$/);
    expect(() => importOpenPai({ 'kubernetes-configuration.yaml': k8sYaml('1.2.3.4') })).toThrow(
      /no cluster-configuration\.yaml or layout\.yaml in the configuration directory \(found: kubernetes-configuration\.yaml\)/,
    );
    expect(() => importOpenPai('cluster:\n  clusterid: x\n')).toThrow(
      /machine-list: must be a non-empty list of nodes/,
    );
    expect(() => importOpenPai(dir(MASTERS + PROXY, '10.0.3.5'), { name: 'bad name!' })).toThrow(
      /cannot name a Drover cluster/,
    );
  });

  it('parseOpenPai changes nothing in its input and never throws anything but OpenPaiError on garbage', () => {
    for (const bad of ['', '- a list', 'machine-list: 3', 'machine-list:\n  - 42\n', '{{{']) {
      expect(() => parseOpenPai(bad)).toThrow(OpenPaiError);
    }
  });

  it('the OpenPAI code is registered with the coordinator', () => {
    for (const [code, spec] of Object.entries(OPENPAI_ERRORS)) expect(COORDINATOR_ERRORS[code]).toBe(spec);
  });
});
