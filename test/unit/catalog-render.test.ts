import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  type EtcdAssignmentExtras,
  type RenderedInstance,
  ROLE_CATALOG,
  renderPlans,
  resolveApiEndpoint,
  roleDependencies,
} from '../../coordinator/catalog/index.js';
import type { Assignment } from '../../coordinator/model.js';
import { BUILTIN_ROLES, parseTopology, type Topology } from '../../coordinator/topology/index.js';
import { decodeMessage, encode, PROTOCOL_VERSION, sealPlan } from '../../protocol/index.js';
import { assign, haAssignments, haNodes, makeNode, nodeMap, T1 } from '../helpers/cluster-fixtures.js';
import { expectGolden } from '../helpers/golden.js';

const haText = readFileSync('examples/ha.yaml', 'utf8');
const ha = () => parseTopology(haText);
const STANDIN = { command: '/usr/bin/node', args: ['/opt/drover/standin.mjs'] };

/** ha.yaml plus the Arktos and OpenPAI extras, so every built-in renders. */
function haWithExtras(): Topology {
  const t = structuredClone(ha()) as unknown as Record<string, Record<string, unknown>>;
  t.roles!['workload-controller-manager'] = { replicas: 2, nodeSelector: { pool: 'control-plane' } };
  t.roles!.dashboard = { pins: ['cp-1'] };
  return parseTopology(JSON.stringify(t));
}

function extrasAssignments(): Assignment[] {
  return [
    ...haAssignments(),
    assign('workload-controller-manager', 0, 'cp-1'),
    assign('workload-controller-manager', 1, 'cp-2'),
    assign('dashboard', 0, 'cp-1'),
  ];
}

function instance(plans: Map<string, RenderedInstance[]>, id: string): RenderedInstance {
  for (const list of plans.values()) for (const i of list) if (i.id === id) return i;
  throw new Error(`no instance ${id}`);
}

describe('renderPlans: golden output for every role', () => {
  const plans = renderPlans({
    topology: haWithExtras(),
    assignments: extrasAssignments(),
    nodes: nodeMap(haNodes()),
    options: { standin: STANDIN },
  });

  it.each([
    ['etcd', 'etcd#0'],
    ['kube-apiserver', 'kube-apiserver#0'],
    ['kube-apiserver-standin', 'kube-apiserver#1'],
    ['kube-scheduler', 'kube-scheduler#0'],
    ['kube-controller-manager', 'kube-controller-manager#0'],
    ['kubelet', 'kubelet#0'],
    ['kubelet-standin', 'kubelet#1'],
    ['kube-proxy', 'kube-proxy#0'],
    ['load-balancer', 'load-balancer#0'],
    ['workload-controller-manager', 'workload-controller-manager#1'],
    ['dashboard', 'dashboard#0'],
  ])('%s', (name, id) => {
    expectGolden(name, instance(plans, id));
  });

  it('covers every built-in role', () => {
    const rendered = new Set([...plans.values()].flat().map((i) => i.role));
    expect([...rendered].sort()).toEqual([...BUILTIN_ROLES].sort());
  });

  it('custom role (examples/custom.yaml)', () => {
    const t = parseTopology(readFileSync('examples/custom.yaml', 'utf8'));
    const nodes = haNodes();
    const p = renderPlans({
      topology: t,
      assignments: [
        assign('echo', 0, 'w-1', { cluster: 'custom' }),
        assign('echo', 1, 'w-2', { cluster: 'custom' }),
      ],
      nodes: nodeMap(nodes),
    });
    expectGolden('custom-echo', instance(p, 'echo#0'));
    expect(instance(p, 'echo#1').run.args).toContain('10.0.0.22');
  });

  it('an etcd member that replaced a dead one joins the existing cluster', () => {
    const as = haAssignments().map((a) =>
      a.instanceId === 'etcd#2' ? { ...a, nodeId: 'cp-4', epoch: 2, previousNodeId: 'cp-3', since: T1 } : a,
    );
    const p = renderPlans({ topology: ha(), assignments: as, nodes: nodeMap(haNodes()) });
    expectGolden('etcd-existing', instance(p, 'etcd#2'));
  });

  it('Kubernetes before 1.24 runs the kubelet against docker', () => {
    const t = ha();
    t.cluster.kubernetesVersion = 'v1.18.20';
    const p = renderPlans({ topology: t, assignments: haAssignments(), nodes: nodeMap(haNodes()) });
    const k = instance(p, 'kubelet#0');
    expect(k.run.args).toContain('--container-runtime=docker');
    expect(k.run.args.some((a) => a.startsWith('--container-runtime-endpoint'))).toBe(false);
    const api = instance(p, 'kube-apiserver#0');
    expect(api.run.args.some((a) => a.startsWith('--service-account-issuer'))).toBe(false);
  });
});

describe('renderPlans: structure', () => {
  const nodes = haNodes();
  const plans = renderPlans({
    topology: haWithExtras(),
    assignments: extrasAssignments(),
    nodes: nodeMap(nodes),
  });

  it('gives every node a plan, sorted by instance id, and each is a valid signed-plan body', () => {
    expect([...plans.keys()]).toEqual(nodes.map((n) => n.id).sort());
    for (const [nodeId, instances] of plans) {
      expect(instances.map((i) => i.id)).toEqual(instances.map((i) => i.id).sort());
      const plan = sealPlan({
        v: PROTOCOL_VERSION,
        type: 'plan',
        nodeId,
        generation: 1,
        coordinatorEpoch: 1,
        issuedAt: T1,
        instances,
      });
      expect(decodeMessage('NodePlan', encode(plan))).toEqual(plan);
    }
    expect(plans.get('cp-4')).toEqual([]);
  });

  it('binds everything to the node address and probes it there, per the issue table', () => {
    const want: Record<string, { kind: string; port: number; path?: string }> = {
      'kube-apiserver': { kind: 'https', port: 6443, path: '/livez' },
      'kube-scheduler': { kind: 'https', port: 10259, path: '/healthz' },
      'kube-controller-manager': { kind: 'https', port: 10257, path: '/healthz' },
      kubelet: { kind: 'http', port: 10248, path: '/healthz' },
      'kube-proxy': { kind: 'http', port: 10256, path: '/healthz' },
      etcd: { kind: 'http', port: 2379, path: '/health' },
      'load-balancer': { kind: 'tcp', port: 6443 },
    };
    for (const [nodeId, instances] of plans) {
      const address = nodes.find((n) => n.id === nodeId)!.address;
      for (const i of instances) {
        const w = want[i.role];
        if (!w) continue;
        expect(i.health).toMatchObject({ ...w, host: address });
        expect(i.ports).toContain(w.port);
      }
    }
  });

  it('points every kubeconfig at the load balancer in haproxy mode', () => {
    for (const i of [...plans.values()].flat()) {
      const kc = i.files.find((f) => f.path.endsWith('/kubeconfig'));
      if (kc) expect(kc.content).toContain('server: https://10.0.0.10:6443');
    }
  });

  it('points kubeconfigs at the given address in external mode, and at the API server in direct mode', () => {
    const ext = ha();
    ext.cluster.apiEndpoint = { mode: 'external', address: 'k8s.example.com', port: 443 };
    const pe = renderPlans({ topology: ext, assignments: haAssignments(), nodes: nodeMap(nodes) });
    expect(instance(pe, 'kubelet#0').files[0]!.content).toContain('server: https://k8s.example.com:443');
    expect(instance(pe, 'kube-apiserver#0').run.args).toContain('--external-hostname=k8s.example.com');

    const direct = ha();
    direct.cluster.apiEndpoint = { mode: 'direct', port: 6443 };
    direct.roles['kube-apiserver']!.replicas = 1;
    delete direct.roles['load-balancer'];
    const as = haAssignments().filter(
      (a) =>
        a.role !== 'load-balancer' &&
        a.instanceId !== 'kube-apiserver#1' &&
        a.instanceId !== 'kube-apiserver#2',
    );
    const pd = renderPlans({ topology: direct, assignments: as, nodes: nodeMap(nodes) });
    expect(instance(pd, 'kube-scheduler#2').files[0]!.content).toContain('server: https://10.0.0.11:6443');
    expect(instance(pd, 'kube-apiserver#0').run.args).toContain('--endpoint-reconciler-type=lease');
  });

  it('endpoint reconciler: lease from 1.11, master-count with --apiserver-count before, none on loopback', () => {
    const as = haAssignments();
    const topo = ha();
    const args = (t: Topology, ns = nodes) =>
      instance(renderPlans({ topology: t, assignments: as, nodes: nodeMap(ns) }), 'kube-apiserver#0').run
        .args;
    expect(args(topo)).toContain('--endpoint-reconciler-type=lease');
    expect(args(topo).some((a) => a.startsWith('--apiserver-count'))).toBe(false);
    const old = ha();
    old.cluster.kubernetesVersion = 'v1.10.13';
    expect(args(old)).toEqual(
      expect.arrayContaining(['--apiserver-count=3', '--endpoint-reconciler-type=master-count']),
    );
    // the real API server refuses to publish a loopback address as the kubernetes endpoint
    const loop = nodes.map((n) => ({ ...n, address: n.address.replace(/^10\.0\.0\./, '127.0.90.') }));
    expect(args(topo, loop)).toContain('--endpoint-reconciler-type=none');
  });

  it('uses the stand-in only for missing Kubernetes binaries, never for etcd or haproxy', () => {
    const bare = [makeNode({ id: 'x', address: '10.0.9.1', pool: 'control-plane', binaries: [] })];
    const as = [
      assign('etcd', 0, 'x'),
      assign('kube-apiserver', 0, 'x'),
      assign('load-balancer', 0, 'x'),
      assign('kubelet', 0, 'x'),
    ];
    const p = renderPlans({
      topology: ha(),
      assignments: as,
      nodes: nodeMap(bare),
      options: { standin: STANDIN },
    });
    const byRole = Object.fromEntries(p.get('x')!.map((i) => [i.role, i]));
    expect(byRole.etcd!.simulated).toBe(false);
    expect(byRole.etcd!.run.command).toBe('etcd');
    expect(byRole['load-balancer']!.simulated).toBe(false);
    expect(byRole['load-balancer']!.run.command).toBe('haproxy');
    expect(byRole['kube-apiserver']!.simulated).toBe(true);
    expect(byRole['kube-apiserver']!.run.command).toBe('/usr/bin/node');
    expect(byRole['kube-apiserver']!.run.args.slice(0, 3)).toEqual([
      '/opt/drover/standin.mjs',
      'kube-apiserver',
      '--v=2',
    ]);
    expect(byRole['kube-apiserver']!.run.unit?.type).toBeUndefined(); // no sd_notify from a stand-in
    expect(byRole.kubelet!.simulated).toBe(true);
    // without a stand-in the real (missing) binary is rendered and the agent reports the failure
    const q = renderPlans({ topology: ha(), assignments: as, nodes: nodeMap(bare) });
    expect(q.get('x')!.find((i) => i.role === 'kube-apiserver')!).toMatchObject({
      simulated: false,
      run: { command: 'kube-apiserver' },
    });
  });

  it('takes binary paths from the topology first, then from facts', () => {
    const t = ha();
    t.cluster.binaries = { 'kube-apiserver': '/opt/k8s/bin/kube-apiserver' };
    const p = renderPlans({
      topology: t,
      assignments: haAssignments(),
      nodes: nodeMap(nodes),
      options: { standin: STANDIN },
    });
    expect(instance(p, 'kube-apiserver#0').run.command).toBe('/opt/k8s/bin/kube-apiserver');
    expect(instance(p, 'etcd#0').run.command).toBe('/usr/bin/etcd');
  });

  it('appends extraArgs and env, and applies restart overrides', () => {
    const t = ha();
    t.roles.etcd!.extraArgs = ['--quota-backend-bytes=8589934592'];
    t.roles.etcd!.env = { GOMAXPROCS: '2' };
    t.roles.etcd!.repair = { restart: { initialBackoff: 500, crashLoopThreshold: 9 } };
    const e = instance(
      renderPlans({ topology: t, assignments: haAssignments(), nodes: nodeMap(nodes) }),
      'etcd#1',
    );
    expect(e.run.args.at(-1)).toBe('--quota-backend-bytes=8589934592');
    expect(e.run.env).toEqual({ GOMAXPROCS: '2' });
    expect(e.restart).toMatchObject({ initialBackoffMs: 500, crashLoopThreshold: 9, maxBackoffMs: 60_000 });
  });

  it('skips assignments to unknown nodes and to roles no longer in the topology', () => {
    const t = ha();
    delete t.roles.kubelet;
    const p = renderPlans({
      topology: t,
      assignments: [...haAssignments(), assign('etcd', 7, 'gone')],
      nodes: nodeMap(nodes),
    });
    expect([...p.values()].flat().some((i) => i.role === 'kubelet')).toBe(false);
    expect(instance(p, 'etcd#0').run.args.find((a) => a.startsWith('--initial-cluster='))).not.toContain(
      'etcd-7',
    );
  });

  it('is deterministic and does not depend on input order', () => {
    const a = renderPlans({ topology: ha(), assignments: haAssignments(), nodes: nodeMap(nodes) });
    const b = renderPlans({
      topology: ha(),
      assignments: [...haAssignments()].reverse(),
      nodes: nodeMap([...nodes].reverse()),
    });
    expect(b).toEqual(a);
  });

  it('etcd: bootstrap members start new; a scale-up member and a frozen initial cluster are honoured', () => {
    const as = [...haAssignments(), assign('etcd', 3, 'cp-4', { since: T1 })];
    const t = ha();
    t.roles.etcd!.replicas = 4;
    const p = renderPlans({ topology: t, assignments: as, nodes: nodeMap(nodes) });
    const flag = (id: string, f: string) => instance(p, id).run.args.find((a) => a.startsWith(`--${f}=`));
    expect(flag('etcd#0', 'initial-cluster-state')).toBe('--initial-cluster-state=new');
    expect(flag('etcd#3', 'initial-cluster-state')).toBe('--initial-cluster-state=existing');
    expect(flag('etcd#3', 'initial-cluster')).toBe(
      '--initial-cluster=etcd-0=http://10.0.0.11:2380,etcd-1=http://10.0.0.12:2380,etcd-2=http://10.0.0.13:2380,etcd-3=http://10.0.0.14:2380',
    );
    const frozen: Assignment & EtcdAssignmentExtras = {
      ...haAssignments()[1]!,
      initialCluster: 'etcd-0=http://10.0.0.11:2380',
      existing: true,
    };
    const q = renderPlans({ topology: ha(), assignments: [frozen], nodes: nodeMap(nodes) });
    expect(instance(q, 'etcd#0').run.args).toEqual(
      expect.arrayContaining([
        '--initial-cluster=etcd-0=http://10.0.0.11:2380',
        '--initial-cluster-state=existing',
      ]),
    );
  });

  it('API endpoint resolution', () => {
    const none = resolveApiEndpoint(ha(), () => []);
    expect(none).toEqual({ host: '127.0.0.1', port: 6443, url: 'https://127.0.0.1:6443', via: 'unresolved' });
  });

  it('the catalog describes every built-in', () => {
    for (const r of BUILTIN_ROLES) {
      const d = ROLE_CATALOG[r];
      expect(d.name).toBe(r);
      expect(d.restart.policy).toBe('always');
      expect(d.defaultSpread.perNode).toBe(true);
    }
    expect(ROLE_CATALOG.etcd.stateful).toBe(true);
    expect(roleDependencies('load-balancer')).toEqual(['kube-apiserver']);
    expect(roleDependencies('kube-scheduler', ha())).toEqual(['kube-apiserver', 'load-balancer']);
    const ext = ha();
    ext.cluster.apiEndpoint = { mode: 'external', address: '10.1.1.1', port: 6443 };
    expect(roleDependencies('kubelet', ext)).toEqual([]);
    expect(roleDependencies('kube-apiserver', ext)).toEqual(['etcd', 'kube-apiserver']);
  });
});
