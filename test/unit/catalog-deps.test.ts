/**
 * A dependency change must change exactly the dependent plans: compare instance checksums
 * (`instanceChecksum`, what the agent restarts on) before and after one placement change.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type EtcdAssignmentExtras,
  etcdInitialCluster,
  RenderCache,
  type RenderedInstance,
  renderDiff,
  renderPlans,
  roleDependencies,
} from '../../coordinator/catalog/index.js';
import type { Assignment } from '../../coordinator/model.js';
import { parseTopology, type Topology } from '../../coordinator/topology/index.js';
import { instanceChecksum } from '../../protocol/index.js';
import { haAssignments, haNodes, makeNode, nodeMap, T1 } from '../helpers/cluster-fixtures.js';

const ha = () => parseTopology(readFileSync('examples/ha.yaml', 'utf8'));
const nodes = [...haNodes(), makeNode({ id: 'lb-2', address: '10.0.0.9', pool: 'lb' })];
const render = (t: Topology, as: Assignment[]) =>
  renderPlans({ topology: t, assignments: as, nodes: nodeMap(nodes) });

/** instance id → checksum, regardless of node */
function sums(p: Map<string, RenderedInstance[]>): Map<string, string> {
  return new Map([...p.values()].flat().map((i) => [i.id, instanceChecksum(i)]));
}

/** ids whose content changed, plus ids that appeared or vanished */
function changedIds(
  before: Map<string, RenderedInstance[]>,
  after: Map<string, RenderedInstance[]>,
): string[] {
  const b = sums(before);
  const a = sums(after);
  const ids = new Set([...a.keys(), ...b.keys()]);
  return [...ids].filter((id) => a.get(id) !== b.get(id)).sort();
}

const move = (as: Assignment[], id: string, nodeId: string): Assignment[] =>
  as.map((a) =>
    a.instanceId === id ? { ...a, nodeId, epoch: a.epoch + 1, previousNodeId: a.nodeId, since: T1 } : a,
  );

describe('a dependency change re-renders exactly the dependent plans (haproxy mode)', () => {
  const t = ha();
  const base = haAssignments();
  const before = render(t, base);

  it('moving an API server re-renders the load balancer and nothing else', () => {
    const after = render(t, move(base, 'kube-apiserver#2', 'cp-4'));
    // the moved instance keeps its content except its bind address; the count did not change
    expect(changedIds(before, after)).toEqual(['kube-apiserver#2', 'load-balancer#0']);
    const d = renderDiff(before, after);
    expect(d.changed).toEqual([{ nodeId: 'lb-1', id: 'load-balancer#0' }]);
    expect(d.removed).toEqual([{ nodeId: 'cp-3', id: 'kube-apiserver#2' }]);
    expect(d.added).toEqual([{ nodeId: 'cp-4', id: 'kube-apiserver#2' }]);
    expect(d.nodes).toEqual(['cp-3', 'cp-4', 'lb-1']);
    const cfg = after.get('lb-1')![0]!.files[0]!.content;
    expect(cfg).toContain('server kube-apiserver-2 10.0.0.14:6443 check fall 1 rise 2');
    expect(cfg).not.toContain('10.0.0.13:6443');
  });

  it('a new API-server set (scale down) re-renders the load balancer only (the lease reconciler needs no count)', () => {
    const after = render(
      t,
      base.filter((a) => a.instanceId !== 'kube-apiserver#2'),
    );
    // kube-apiserver#2 is gone; the others keep their plans
    expect(changedIds(before, after)).toEqual(['kube-apiserver#2', 'load-balancer#0']);
  });

  it('moving the load balancer re-renders everything that points at the API endpoint', () => {
    const after = render(t, move(base, 'load-balancer#0', 'lb-2'));
    expect(changedIds(before, after)).toEqual([
      'kube-apiserver#0', // --external-hostname
      'kube-apiserver#1',
      'kube-apiserver#2',
      'kube-controller-manager#0',
      'kube-controller-manager#1',
      'kube-controller-manager#2',
      'kube-proxy#0',
      'kube-proxy#1',
      'kube-scheduler#0',
      'kube-scheduler#1',
      'kube-scheduler#2',
      'kubelet#0',
      'kubelet#1',
      'load-balancer#0',
    ]);
  });

  it('with a fixed endpoint address, moving the load balancer re-renders only itself', () => {
    const fixed = ha();
    fixed.cluster.apiEndpoint.address = 'api.lab.example';
    const b = render(fixed, base);
    expect(changedIds(b, render(fixed, move(base, 'load-balancer#0', 'lb-2')))).toEqual(['load-balancer#0']);
  });

  it('moving an etcd member re-renders its peers and the API servers, nothing else', () => {
    const after = render(t, move(base, 'etcd#1', 'cp-4'));
    expect(changedIds(before, after)).toEqual([
      'etcd#0',
      'etcd#1',
      'etcd#2',
      'kube-apiserver#0',
      'kube-apiserver#1',
      'kube-apiserver#2',
    ]);
  });

  it('members whose --initial-cluster was frozen at join are not restarted by a peer moving', () => {
    const frozen = (as: Assignment[]) => {
      const nm = nodeMap(nodes);
      const members = as
        .filter((a) => a.role === 'etcd')
        .sort((x, y) => x.ordinal - y.ordinal)
        .map((a) => ({ assignment: a, node: nm.get(a.nodeId)! }));
      const ic = etcdInitialCluster(members);
      return as.map((a) =>
        a.role === 'etcd' ? ({ ...a, initialCluster: ic } as Assignment & EtcdAssignmentExtras) : a,
      );
    };
    const b0 = frozen(base);
    const moved = move(b0, 'etcd#1', 'cp-4').map((a) =>
      a.instanceId === 'etcd#1' ? { ...a, initialCluster: undefined, existing: true } : a,
    );
    const changed = changedIds(render(t, b0), render(t, moved));
    expect(changed).toEqual(['etcd#1', 'kube-apiserver#0', 'kube-apiserver#1', 'kube-apiserver#2']);
  });

  it('a worker joining (everywhere) adds its own instances and changes nothing else', () => {
    const w3 = makeNode({ id: 'w-3', address: '10.0.0.23', pool: 'worker' });
    const as = [
      ...base,
      {
        ...base.find((a) => a.instanceId === 'kubelet#1')!,
        instanceId: 'kubelet#2',
        ordinal: 2,
        nodeId: 'w-3',
      },
    ];
    const after = renderPlans({ topology: t, assignments: as, nodes: nodeMap([...nodes, w3]) });
    expect(changedIds(before, after)).toEqual(['kubelet#2']);
  });
});

describe('direct mode: the API server is the endpoint', () => {
  it('moving it re-renders every API client', () => {
    const t = ha();
    t.cluster.apiEndpoint = { mode: 'direct', port: 6443 };
    t.roles['kube-apiserver']!.replicas = 1;
    delete t.roles['load-balancer'];
    const base = haAssignments().filter(
      (a) => a.role !== 'load-balancer' && !['kube-apiserver#1', 'kube-apiserver#2'].includes(a.instanceId),
    );
    const changed = changedIds(render(t, base), render(t, move(base, 'kube-apiserver#0', 'cp-4')));
    expect(changed).toEqual(
      [
        'kube-apiserver#0',
        ...['kube-controller-manager', 'kube-scheduler'].flatMap((r) => [0, 1, 2].map((i) => `${r}#${i}`)),
        'kube-proxy#0',
        'kube-proxy#1',
        'kubelet#0',
        'kubelet#1',
      ].sort(),
    );
  });
});

describe('roleDependencies tells the truth (fast-check)', () => {
  it('after any one move or removal, every changed instance is the moved one or of a role that depends on it', () => {
    const t = ha();
    const base = haAssignments();
    const before = render(t, base);
    fc.assert(
      fc.property(
        fc.constantFrom(...base.map((a) => a.instanceId)),
        fc.constantFrom(...nodes.map((n) => n.id)),
        fc.boolean(),
        (id, to, remove) => {
          const target = base.find((a) => a.instanceId === id)!;
          const as = remove ? base.filter((a) => a.instanceId !== id) : move(base, id, to);
          const after = render(t, as);
          for (const c of changedIds(before, after)) {
            if (c === id) continue;
            const role = c.split('#')[0]!;
            expect(roleDependencies(role, t)).toContain(target.role);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('RenderCache', () => {
  it('gives exactly the uncached output through any sequence of changes (fast-check)', () => {
    const topologies = [
      ha(),
      (() => {
        const t = ha();
        t.cluster.apiEndpoint.address = 'api.lab.example';
        return t;
      })(),
    ];
    type Step =
      | { kind: 'move'; id: number; to: number }
      | { kind: 'drop'; id: number }
      | { kind: 'topology'; which: number }
      | { kind: 'readdress'; node: number }
      | { kind: 'standin'; on: boolean };
    const step: fc.Arbitrary<Step> = fc.oneof(
      fc.record({ kind: fc.constant('move' as const), id: fc.nat(30), to: fc.nat(10) }),
      fc.record({ kind: fc.constant('drop' as const), id: fc.nat(30) }),
      fc.record({ kind: fc.constant('topology' as const), which: fc.nat(1) }),
      fc.record({ kind: fc.constant('readdress' as const), node: fc.nat(10) }),
      fc.record({ kind: fc.constant('standin' as const), on: fc.boolean() }),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 12 }), (steps) => {
        const cache = new RenderCache();
        let as = haAssignments();
        let t = topologies[0]!;
        let fleet = [...nodes];
        let standin: { command: string; args: string[] } | undefined;
        const check = () => {
          const input = { topology: t, assignments: as, nodes: nodeMap(fleet) };
          const cached = renderPlans({ ...input, options: { standin, cache } });
          expect(cached).toEqual(renderPlans({ ...input, options: { standin } }));
        };
        check();
        for (const s of steps) {
          if (s.kind === 'move' && as.length) {
            const a = as[s.id % as.length]!;
            as = move(as, a.instanceId, fleet[s.to % fleet.length]!.id);
          } else if (s.kind === 'drop' && as.length) as = as.filter((_, i) => i !== s.id % as.length);
          else if (s.kind === 'topology') t = topologies[s.which]!;
          else if (s.kind === 'readdress') {
            const i = s.node % fleet.length;
            fleet = fleet.map((n, j) => (j === i ? { ...n, address: `10.7.0.${j + 1}` } : n));
          } else if (s.kind === 'standin')
            standin = s.on ? { command: '/usr/bin/node', args: ['/opt/standin.mjs'] } : undefined;
          check();
        }
      }),
      { numRuns: 150 },
    );
  });

  it('renders nothing again when nothing changed, and only the dependents after a move', () => {
    const cache = new RenderCache();
    const t = ha();
    renderPlans({ topology: t, assignments: haAssignments(), nodes: nodeMap(nodes), options: { cache } });
    const total = cache.misses;
    expect(total).toBe(haAssignments().length);
    renderPlans({ topology: t, assignments: haAssignments(), nodes: nodeMap(nodes), options: { cache } });
    expect(cache.misses).toBe(total);
    renderPlans({
      topology: t,
      assignments: move(haAssignments(), 'kube-apiserver#2', 'cp-4'),
      nodes: nodeMap(nodes),
      options: { cache },
    });
    // the moved API server, the other two (their dependency set changed) and the load balancer
    expect(cache.misses - total).toBe(4);
  });
});
