import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ROLE_CATALOG } from '../../coordinator/catalog/catalog.js';
import { renderPlans, simulatorPaths } from '../../coordinator/catalog/render.js';
import { KWOK_STAGES } from '../../coordinator/catalog/roles/kwok-stages.js';
import type { RenderedInstance } from '../../coordinator/catalog/types.js';
import {
  decideBootstrap,
  KUBELET_API_RBAC,
  KWOK_NODE_GROUP,
  KWOK_RBAC,
  objectPath,
} from '../../coordinator/kube/bootstrap.js';
import { certSpecFor } from '../../coordinator/pki/profiles.js';
import { parseTopology } from '../../coordinator/topology/index.js';
import { assign, haAssignments, haNodes, makeNode, nodeMap } from '../helpers/cluster-fixtures.js';

const ha = () => parseTopology(readFileSync('examples/ha.yaml', 'utf8'));
const SA = { publicKeyPem: 'PUB', privateKeyPem: 'PRIV' };

function instance(plans: Map<string, RenderedInstance[]>, id: string): RenderedInstance {
  for (const list of plans.values()) for (const i of list) if (i.id === id) return i;
  throw new Error(`no instance ${id}`);
}

/** haNodes with w-2 a worker that has kwok and kubectl but no kubelet (the lab's workers). */
function nodes() {
  return haNodes().map((n) =>
    n.id === 'w-2'
      ? makeNode({
          id: 'w-2',
          address: '10.0.0.22',
          pool: 'worker',
          binaries: ['kwok', 'kubectl', 'kube-proxy'],
        })
      : n,
  );
}

describe('the kubelet role simulated by kwok', () => {
  const plans = renderPlans({
    topology: ha(),
    assignments: haAssignments(),
    nodes: nodeMap(nodes()),
    options: { pki: { serviceAccount: SA }, standin: { command: '/usr/bin/node', args: ['standin.mjs'] } },
  });

  it('runs kwok where the node has kwok and kubectl but no kubelet, labelled simulated (kwok)', () => {
    const k = instance(plans, 'kubelet#1');
    expect(k.simulated).toBe(true);
    expect(k.simulator).toBe('kwok');
    expect(k.run.command).toBe('sh');
    expect(k.run.args).toContain('/usr/local/bin/kwok');
    expect(k.run.args).toContain('--manage-single-node=w-2');
    expect(k.run.args).toContain('--server-address=10.0.0.22:10248');
    expect(k.run.args.some((a) => a.startsWith('--config=') && a.endsWith('/kwok-stages.yaml'))).toBe(true);
    // a pod CIDR of its own: two kwok nodes never hand out the same pod IP
    expect(k.run.args).toContain('--cidr=10.244.1.0/24');
    expect(k.health).toMatchObject({ kind: 'http', port: 10248, path: '/healthz' });
    // its files: kubeconfig (kwok-node cert), the Node it registers, kwok's stages
    const node = JSON.parse(k.files.find((f) => f.path.endsWith('/node.json'))!.content);
    expect(node.metadata.name).toBe('w-2');
    expect(node.metadata.annotations['drover.dev/simulated']).toBe('kwok');
    expect(node.status.addresses).toContainEqual({ type: 'InternalIP', address: '10.0.0.22' });
    expect(k.files.find((f) => f.path.endsWith('/kwok-stages.yaml'))!.content).toBe(KWOK_STAGES);
    const kc = k.files.find((f) => f.path.endsWith('/kwok.kubeconfig'))!.content;
    expect(kc).toMatch(/client-certificate: .*kwok-node\.crt/);
    expect(kc).toContain('server: https://10.0.0.10:6443');
  });

  it('asks for the kwok-node identity, not system:node (the Node authorizer lets a node list only itself)', () => {
    const k = instance(plans, 'kubelet#1');
    expect(k.certificates!.map((c) => [c.profile, c.commonName, c.organizations])).toEqual([
      ['kwok-node', 'drover:kwok:w-2', [KWOK_NODE_GROUP]],
    ]);
    const spec = certSpecFor('kwok-node', {
      node: { id: 'w-2', hostname: 'w-2', addresses: ['10.0.0.22'] },
      role: 'kubelet',
      context: { clusterDomain: 'cluster.local', serviceCidr: '10.0.0.0/24' },
    });
    expect(spec.usages).toEqual(['clientAuth']);
  });

  it('keeps the real kubelet where it is installed, and the kubelet flags out of kwok', () => {
    const real = instance(plans, 'kubelet#0');
    expect(real.simulated).toBe(false);
    expect(real.simulator).toBeUndefined();
    expect(real.run.command).toBe('/usr/local/bin/kubelet');
    const t = ha();
    t.roles.kubelet!.extraArgs = ['--max-pods=50'];
    const p = renderPlans({ topology: t, assignments: haAssignments(), nodes: nodeMap(nodes()) });
    expect(instance(p, 'kubelet#1').run.args).not.toContain('--max-pods=50');
    expect(instance(p, 'kubelet#0').run.args).toContain('--max-pods=50');
  });

  it('falls back to the stand-in without kwok or kubectl, and never simulates a pinned binary', () => {
    const t = ha();
    const bare = makeNode({ id: 'w-3', address: '10.0.0.23', pool: 'worker', binaries: ['kwok'] });
    expect(simulatorPaths(ROLE_CATALOG.kubelet, t, bare)).toBeUndefined();
    const withBoth = makeNode({
      id: 'w-4',
      address: '10.0.0.24',
      pool: 'worker',
      binaries: ['kwok', 'kubectl'],
    });
    expect(simulatorPaths(ROLE_CATALOG.kubelet, t, withBoth)).toEqual({
      kwok: '/usr/local/bin/kwok',
      kubectl: '/usr/local/bin/kubectl',
    });
    t.cluster.binaries.kubelet = '/opt/k8s/kubelet';
    expect(simulatorPaths(ROLE_CATALOG.kubelet, t, withBoth)).toBeUndefined();
    const p = renderPlans({
      topology: ha(),
      assignments: [assign('kubelet', 0, 'w-3')],
      nodes: nodeMap([bare]),
      options: { standin: { command: '/usr/bin/node', args: ['standin.mjs'] } },
    });
    expect(instance(p, 'kubelet#0')).toMatchObject({ simulated: true, simulator: 'standin' });
  });
});

describe('cluster bootstrap objects', () => {
  it('the kwok RBAC only for a cluster with a kwok-simulated kubelet; the kubelet-API binding with an API server', () => {
    expect(decideBootstrap(ha(), haAssignments(), nodeMap(nodes()))).toEqual([
      ...KUBELET_API_RBAC,
      ...KWOK_RBAC,
    ]);
    expect(decideBootstrap(ha(), haAssignments(), nodeMap(haNodes()))).toEqual(KUBELET_API_RBAC);
    expect(
      decideBootstrap(
        ha(),
        haAssignments().filter((a) => a.role !== 'kube-apiserver' && a.role !== 'kubelet'),
        nodeMap(haNodes()),
      ),
    ).toEqual([]);
  });

  it("binds the API server's kubelet client (not system:masters) to system:kubelet-api-admin only", () => {
    const [binding] = KUBELET_API_RBAC as unknown as [Record<string, unknown>];
    expect(binding).toMatchObject({
      kind: 'ClusterRoleBinding',
      roleRef: { kind: 'ClusterRole', name: 'system:kubelet-api-admin' },
      subjects: [{ kind: 'User', name: 'kube-apiserver-kubelet-client' }],
    });
  });

  it('binds the kwok-node group to a ClusterRole that can list nodes and update pod status', () => {
    const [role, binding] = KWOK_RBAC as unknown as [Record<string, unknown>, Record<string, unknown>];
    const rules = role.rules as Array<{ resources: string[]; verbs: string[] }>;
    const can = (res: string, verb: string) =>
      rules.some((r) => r.resources.includes(res) && r.verbs.includes(verb));
    expect(can('nodes', 'list')).toBe(true);
    expect(can('pods/status', 'patch')).toBe(true);
    expect(can('leases', 'update')).toBe(true);
    expect(can('secrets', 'get')).toBe(false);
    expect(binding.subjects).toEqual([
      { apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: KWOK_NODE_GROUP },
    ]);
    expect(objectPath(KWOK_RBAC[1]!).item).toBe(
      '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/drover%3Akwok-node',
    );
    expect(() => objectPath({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'x' } })).toThrow(
      /not a bootstrap kind/,
    );
  });
});
