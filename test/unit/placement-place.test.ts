import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Assignment, NodeRecord } from '../../coordinator/model.js';
import { type PlacementInput, place } from '../../coordinator/placement/index.js';
import { parseTopology, type Topology, validateTopology } from '../../coordinator/topology/index.js';
import { assign, haAssignments, haNodes, makeNode, T0, T1 } from '../helpers/cluster-fixtures.js';

const ha = () => parseTopology(readFileSync('examples/ha.yaml', 'utf8'));
const ids = (as: Assignment[]) => as.map((a) => `${a.instanceId}@${a.nodeId}`);
const withState = (nodes: NodeRecord[], id: string, over: Partial<NodeRecord>) =>
  nodes.map((n) => (n.id === id ? { ...n, ...over } : n));

/** A topology with only custom roles (and whatever else `roles` names). */
function custom(roles: Record<string, unknown>, customRoles: Record<string, unknown> = {}): Topology {
  return validateTopology({
    apiVersion: 'drover.dev/v1',
    kind: 'Topology',
    metadata: { name: 'c' },
    cluster: { name: 'c' },
    customRoles: {
      web: { command: '/bin/web', ports: [8080] },
      job: { command: '/bin/job' },
      ...customRoles,
    },
    roles,
  });
}

function first(t: Topology, nodes: NodeRecord[], more: Partial<PlacementInput> = {}) {
  return place({ topology: t, nodes, current: [], now: T0, ...more });
}

describe('place: the HA example', () => {
  it('fills three control-plane nodes and leaves the fourth as the spare', () => {
    const r = first(ha(), haNodes());
    expect(r.unplaced).toEqual([]);
    expect(r.moved).toEqual([]);
    expect(r.removed).toEqual([]);
    expect(r.assignments).toEqual(
      [...haAssignments()].sort((a, b) =>
        a.role < b.role ? -1 : a.role > b.role ? 1 : a.ordinal - b.ordinal,
      ),
    );
    expect(r.added).toEqual(r.assignments);
    expect(r.assignments.some((a) => a.nodeId === 'cp-4')).toBe(false);
  });

  it('a second run changes nothing', () => {
    const r = first(ha(), haNodes());
    const again = place({ topology: ha(), nodes: haNodes(), current: r.assignments, now: T1 });
    expect(again.assignments).toEqual(r.assignments);
    expect([again.added, again.moved, again.removed, again.unplaced]).toEqual([[], [], [], []]);
  });

  it('Suspect, Unreachable and cordoned nodes keep their instances until evicted', () => {
    let nodes = withState(haNodes(), 'cp-1', { state: 'Suspect' });
    nodes = withState(nodes, 'cp-2', { state: 'Unreachable' });
    nodes = withState(nodes, 'cp-3', { cordoned: true, state: 'Cordoned' });
    const r = place({ topology: ha(), nodes, current: haAssignments(), now: T1 });
    expect(r.assignments).toEqual(
      place({ topology: ha(), nodes: haNodes(), current: haAssignments() }).assignments,
    );
    expect([r.added, r.moved, r.removed, r.unplaced]).toEqual([[], [], [], []]);
  });

  it('evicting a dead control-plane node moves its instances to the spare, bumping epochs', () => {
    const nodes = withState(haNodes(), 'cp-2', { state: 'Unreachable' });
    const r = place({
      topology: ha(),
      nodes,
      current: haAssignments(),
      evictNodes: new Set(['cp-2']),
      now: T1,
    });
    expect(
      r.moved.map((m) => [
        m.from.instanceId,
        m.from.nodeId,
        m.to.nodeId,
        m.to.epoch,
        m.to.previousNodeId,
        m.to.since,
      ]),
    ).toEqual([
      ['etcd#1', 'cp-2', 'cp-4', 2, 'cp-2', T1],
      ['kube-apiserver#1', 'cp-2', 'cp-4', 2, 'cp-2', T1],
      ['kube-controller-manager#1', 'cp-2', 'cp-4', 2, 'cp-2', T1],
      ['kube-scheduler#1', 'cp-2', 'cp-4', 2, 'cp-2', T1],
    ]);
    expect([r.added, r.removed, r.unplaced]).toEqual([[], [], []]);
    // everything else stays exactly as it was
    const untouched = haAssignments().filter((a) => a.nodeId !== 'cp-2');
    for (const a of untouched) expect(r.assignments).toContainEqual(a);
  });

  it('a Removed node loses its instances to the spare without an eviction', () => {
    const nodes = withState(haNodes(), 'cp-3', { state: 'Removed' });
    const r = place({ topology: ha(), nodes, current: haAssignments(), now: T1 });
    expect(r.moved.map((m) => m.to.nodeId)).toEqual(['cp-4', 'cp-4', 'cp-4', 'cp-4']);
  });

  it('with no spare, an evicted instance stays put and says why', () => {
    const nodes = withState(
      haNodes().filter((n) => n.id !== 'cp-4'),
      'cp-2',
      { state: 'Unreachable' },
    );
    const r = place({
      topology: ha(),
      nodes,
      current: haAssignments(),
      evictNodes: new Set(['cp-2']),
      now: T1,
    });
    expect(r.moved).toEqual([]);
    expect(r.assignments).toEqual(place({ topology: ha(), nodes, current: haAssignments() }).assignments);
    const etcd = r.unplaced.find((u) => u.instanceId === 'etcd#1')!;
    expect(etcd.reason).toBe(
      'etcd#1: cannot move off cp-2 (node cp-2 is being evicted): 3 nodes match pool=control-plane with cpu-cores>=1, memory>=512Mi, but cp-1 and cp-3 already run etcd (one per node); cp-2 is Unreachable',
    );
    expect(r.unplaced.map((u) => u.instanceId)).toEqual([
      'etcd#1',
      'kube-apiserver#1',
      'kube-controller-manager#1',
      'kube-scheduler#1',
    ]);
  });

  it('a node that is gone for good drops its instance when there is nowhere to go', () => {
    const nodes = haNodes().filter((n) => n.id !== 'cp-4' && n.id !== 'cp-2');
    const r = place({ topology: ha(), nodes, current: haAssignments(), now: T1 });
    expect(r.removed.map((a) => a.instanceId)).toEqual([
      'etcd#1',
      'kube-apiserver#1',
      'kube-controller-manager#1',
      'kube-scheduler#1',
    ]);
    expect(r.unplaced[0]!.reason).toMatch(
      /^etcd#1: node cp-2 is not known; 2 nodes match pool=control-plane with cpu-cores>=1, memory>=512Mi, but cp-1 and cp-3 already run etcd \(one per node\)$/,
    );
  });

  it('scales down from the highest ordinal and up onto the spare', () => {
    const t = ha();
    t.roles['kube-apiserver']!.replicas = 2;
    t.roles.etcd!.replicas = 5;
    const r = place({ topology: t, nodes: haNodes(), current: haAssignments(), now: T1 });
    expect(ids(r.removed)).toEqual(['kube-apiserver#2@cp-3']);
    expect(ids(r.added)).toEqual(['etcd#3@cp-4']);
    expect(r.unplaced.map((u) => u.instanceId)).toEqual(['etcd#4']);
  });
});

describe('place: selectors, resources and reasons', () => {
  it('explains an instance it cannot place, in the issue words', () => {
    const t = ha();
    t.roles['kube-apiserver']!.replicas = 4;
    t.roles['kube-apiserver']!.resources = { cpuCores: 2 };
    const nodes = haNodes().map((n) =>
      n.id === 'cp-4' ? makeNode({ id: 'cp-4', address: '10.0.0.14', pool: 'control-plane', cores: 1 }) : n,
    );
    const r = place({ topology: t, nodes, current: haAssignments(), now: T1 });
    expect(r.unplaced).toHaveLength(1);
    expect(r.unplaced[0]).toEqual({
      instanceId: 'kube-apiserver#3',
      role: 'kube-apiserver',
      reason:
        'kube-apiserver#3: 3 nodes match pool=control-plane with cpu-cores>=2, but cp-1, cp-2 and cp-3 already run kube-apiserver (one per node)',
    });
  });

  it('says plainly when no node matches at all', () => {
    const t = custom({ web: { replicas: 1, nodeSelector: { 'drover.dev/arch': 'arm64' } } });
    expect(first(t, haNodes()).unplaced[0]!.reason).toBe('web#0: no node matches arch=arm64');
    const u = custom({ web: { replicas: 1 } });
    const none = first(
      u,
      haNodes().map((n) => ({ ...n, state: 'Unreachable' as const })),
    );
    expect(none.unplaced[0]!.reason).toBe(
      'web#0: none of the 7 nodes can take it: cp-1, cp-2, cp-3 and 4 more are Unreachable',
    );
  });

  it('selects on derived labels with operators', () => {
    const nodes = [
      makeNode({ id: 'a', address: '10.1.0.1', cores: 2 }),
      makeNode({ id: 'b', address: '10.1.0.2', cores: 8 }),
      makeNode({ id: 'c', address: '10.1.0.3', cores: 16, labels: { gpu: 'yes' } }),
    ];
    const t = custom({
      web: {
        replicas: 3,
        nodeSelector: { 'drover.dev/cpu-cores': { op: 'Gt', values: [4] }, gpu: { op: 'DoesNotExist' } },
      },
    });
    const r = first(t, nodes);
    expect(ids(r.assignments)).toEqual(['web#0@b']);
    expect(r.unplaced.map((u) => u.instanceId)).toEqual(['web#1', 'web#2']);
  });

  it('memory minimums compare with the node facts', () => {
    const nodes = [
      makeNode({ id: 'small', address: '10.1.0.1', memoryGiB: 2 }),
      makeNode({ id: 'big', address: '10.1.0.2', memoryGiB: 16 }),
    ];
    const r = first(custom({ web: { replicas: 1, resources: { memory: '4Gi' } } }), nodes);
    expect(ids(r.assignments)).toEqual(['web#0@big']);
  });

  it('a node that stops matching its selector loses the instance', () => {
    const nodes = haNodes();
    const relabeled = nodes.map((n) =>
      n.id === 'cp-1' ? { ...n, labels: { ...n.labels, pool: 'worker' } } : n,
    );
    const r = place({ topology: ha(), nodes: relabeled, current: haAssignments(), now: T1 });
    expect(new Set(r.moved.map((m) => `${m.from.nodeId}->${m.to.nodeId}`))).toEqual(new Set(['cp-1->cp-4']));
    // cp-1 is a worker now: the everywhere roles pick it up
    expect(ids(r.added)).toEqual(['kube-proxy#2@cp-1', 'kubelet#2@cp-1']);
  });

  it('never places on Pending, unapproved, cordoned or non-Ready nodes', () => {
    const nodes = [
      makeNode({ id: 'p', address: '10.1.0.1', state: 'Pending', approved: false }),
      makeNode({ id: 'u', address: '10.1.0.2', approved: false }),
      makeNode({ id: 'c', address: '10.1.0.3', cordoned: true }),
      makeNode({ id: 's', address: '10.1.0.4', state: 'Suspect' }),
      makeNode({ id: 'd', address: '10.1.0.5', state: 'Draining' }),
      makeNode({ id: 'ok', address: '10.1.0.6' }),
    ];
    const r = first(custom({ web: { replicas: 2 }, job: { everywhere: true } }), nodes);
    expect(ids(r.assignments)).toEqual(['job#0@ok', 'web#0@ok']);
    expect(r.unplaced[0]!.reason).toBe(
      'web#1: none of the 6 nodes can take it: c is cordoned; d is Draining; ok already runs web (one per node); p and u are not approved; s is Suspect',
    );
  });

  it('keeps roles that share a port off the same node', () => {
    const t = custom(
      { web: { replicas: 1 }, api: { replicas: 1 } },
      { api: { command: '/bin/api', ports: [8080] } },
    );
    const r = first(t, [makeNode({ id: 'only', address: '10.1.0.1' })]);
    expect(ids(r.assignments)).toEqual(['api#0@only']);
    expect(r.unplaced[0]!.reason).toBe(
      'web#0: the only node cannot take it: only has port 8080 in use by api#0',
    );
  });

  it('the load balancer and an API server never share a node (both want 6443)', () => {
    const t = ha();
    for (const r of Object.values(t.roles)) r.nodeSelector = {};
    const fleet = [1, 2, 3, 4].map((i) => makeNode({ id: `n${i}`, address: `10.1.0.${i}` }));
    const r = first(t, fleet);
    const lb = r.assignments.find((a) => a.role === 'load-balancer');
    const api = r.assignments.filter((a) => a.role === 'kube-apiserver').map((a) => a.nodeId);
    expect(api).toEqual(['n1', 'n2', 'n3']);
    expect(lb?.nodeId).toBe('n4');
    const three = first(t, fleet.slice(0, 3));
    expect(three.unplaced.map((u) => u.reason)).toEqual([
      'load-balancer#0: none of the 3 nodes can take it: n1, n2 and n3 have port 6443 in use (by kube-apiserver#0, kube-apiserver#1 and kube-apiserver#2)',
    ]);
  });

  it('without one-per-node spread, spreads a portless role by its own count first', () => {
    const t = custom({ job: { replicas: 5, spread: { perNode: false } } });
    const r = first(t, [
      makeNode({ id: 'a', address: '10.1.0.1' }),
      makeNode({ id: 'b', address: '10.1.0.2' }),
    ]);
    expect(ids(r.assignments)).toEqual(['job#0@a', 'job#1@b', 'job#2@a', 'job#3@b', 'job#4@a']);
  });

  it('spreads across a label, and only over nodes that carry it', () => {
    const nodes = ['a', 'b', 'c'].flatMap((z, i) => [
      makeNode({ id: `${z}1`, address: `10.2.${i}.1`, labels: { zone: z } }),
      makeNode({ id: `${z}2`, address: `10.2.${i}.2`, labels: { zone: z } }),
    ]);
    nodes.push(makeNode({ id: 'nozone', address: '10.2.9.9' }));
    const r = first(custom({ web: { replicas: 3, spread: { acrossLabel: 'zone' } } }), nodes);
    const zones = r.assignments.map((a) => nodes.find((n) => n.id === a.nodeId)!.labels.zone);
    expect(zones.sort()).toEqual(['a', 'b', 'c']);
    const four = first(custom({ web: { replicas: 7, spread: { acrossLabel: 'zone' } } }), nodes);
    expect(four.assignments.some((a) => a.nodeId === 'nozone')).toBe(false);
    expect(four.unplaced.map((u) => u.reason)).toEqual([
      'web#6: none of the 7 nodes can take it: a1, a2, b1 and 3 more already run web (one per node); nozone has no zone label (spread across zone)',
    ]);
  });
});

describe('place: pins (OpenPAI explicit layout)', () => {
  const pinned = () => {
    const t = ha();
    t.roles.etcd!.pins = ['cp-3', 'cp-1', 'cp-2'];
    t.roles.etcd!.nodeSelector = { pool: 'nowhere' }; // pins win over the selector
    return t;
  };

  it('puts ordinal i on pins[i], by node id or hostname', () => {
    const nodes = haNodes().map((n) => (n.id === 'cp-3' ? { ...n, id: 'node-3-id', hostname: 'cp-3' } : n));
    const r = first(pinned(), nodes);
    expect(ids(r.assignments.filter((a) => a.role === 'etcd'))).toEqual([
      'etcd#0@node-3-id',
      'etcd#1@cp-1',
      'etcd#2@cp-2',
    ]);
  });

  it('a pinned instance does not move: it waits for its node, with a reason', () => {
    const nodes = withState(haNodes(), 'cp-3', { state: 'Unreachable' });
    const r = first(pinned(), nodes);
    expect(r.unplaced.find((u) => u.instanceId === 'etcd#0')!.reason).toBe(
      'etcd#0: pinned to node cp-3, which is Unreachable',
    );
    const gone = first(
      pinned(),
      haNodes().filter((n) => n.id !== 'cp-3'),
    );
    expect(gone.unplaced.find((u) => u.instanceId === 'etcd#0')!.reason).toBe(
      'etcd#0: pinned to node cp-3, which is not known',
    );
  });

  it('changing a pin moves the instance', () => {
    const before = first(pinned(), haNodes());
    const t = pinned();
    t.roles.etcd!.pins = ['cp-4', 'cp-1', 'cp-2'];
    const r = place({ topology: t, nodes: haNodes(), current: before.assignments, now: T1 });
    expect(r.moved.map((m) => [m.from.instanceId, m.from.nodeId, m.to.nodeId])).toEqual([
      ['etcd#0', 'cp-3', 'cp-4'],
    ]);
  });
});

describe('place: everywhere', () => {
  it('adds an instance on each new matching node, keeps ordinals stable, removes from nodes that leave', () => {
    const base = first(ha(), haNodes());
    const nodes = [...haNodes(), makeNode({ id: 'w-3', address: '10.0.0.23', pool: 'worker' })];
    const grown = place({ topology: ha(), nodes, current: base.assignments, now: T1 });
    expect(ids(grown.added)).toEqual(['kube-proxy#2@w-3', 'kubelet#2@w-3']);
    const shrunk = place({
      topology: ha(),
      nodes: withState(nodes, 'w-1', { state: 'Unreachable' }),
      current: grown.assignments,
      evictNodes: new Set(['w-1']),
      now: T1,
    });
    expect(ids(shrunk.removed)).toEqual(['kube-proxy#0@w-1', 'kubelet#0@w-1']);
    expect(shrunk.added).toEqual([]);
    expect(shrunk.moved).toEqual([]);
    // the freed ordinal is reused by the next newcomer
    const again = place({
      topology: ha(),
      nodes: [...nodes, makeNode({ id: 'w-4', address: '10.0.0.24', pool: 'worker' })],
      current: shrunk.assignments,
      evictNodes: new Set(['w-1']),
      now: T1,
    });
    expect(ids(again.added)).toEqual(['kube-proxy#0@w-4', 'kubelet#0@w-4']);
  });
});

describe('place: operator moves and evictions', () => {
  it('moves an instance to a named node', () => {
    const r = place({
      topology: ha(),
      nodes: haNodes(),
      current: haAssignments(),
      moveTo: new Map([['kube-apiserver#1', 'cp-4']]),
      now: T1,
    });
    expect(r.moved.map((m) => [m.to.instanceId, m.from.nodeId, m.to.nodeId, m.to.epoch])).toEqual([
      ['kube-apiserver#1', 'cp-2', 'cp-4', 2],
    ]);
    expect(r.refusedMoves).toEqual([]);
    // running it again with the same request is a no-op
    const again = place({
      topology: ha(),
      nodes: haNodes(),
      current: r.assignments,
      moveTo: new Map([['kube-apiserver#1', 'cp-4']]),
      now: T1,
    });
    expect([again.added, again.moved, again.removed, again.refusedMoves]).toEqual([[], [], [], []]);
  });

  it('refuses moves that break the rules, and leaves the instance where it is', () => {
    const nodes = withState(haNodes(), 'cp-4', { cordoned: true });
    const r = place({
      topology: ha(),
      nodes,
      current: haAssignments(),
      moveTo: new Map([
        ['kube-apiserver#0', 'cp-2'],
        ['kube-apiserver#1', 'cp-4'],
        ['kube-apiserver#2', 'w-1'],
        ['kubelet#0', 'w-2'],
        ['etcd#9', 'cp-4'],
        ['nope#0', 'cp-4'],
        ['etcd#0', 'ghost'],
      ]),
      now: T1,
    });
    expect(r.moved).toEqual([]);
    expect(r.refusedMoves.map((m) => m.reason)).toEqual([
      'etcd#0: node ghost is not known',
      'etcd#9: not an instance of this topology (replicas: 3)',
      'kube-apiserver#0: cannot move to cp-2: cp-2 already runs kube-apiserver (one per node)',
      'kube-apiserver#1: cannot move to cp-4: cp-4 is cordoned',
      'kube-apiserver#2: cannot move to w-1: w-1 does not match pool=control-plane',
      'kubelet#0: kubelet runs on every matching node; its instances do not move',
      'nope#0: no role nope in the topology',
    ]);
    expect(r.assignments).toEqual(place({ topology: ha(), nodes, current: haAssignments() }).assignments);
  });

  it('an evicted instance leaves its node even when the node is fine', () => {
    const r = place({
      topology: ha(),
      nodes: haNodes(),
      current: haAssignments(),
      evictInstances: new Set(['etcd#0']),
      now: T1,
    });
    expect(r.moved.map((m) => [m.to.instanceId, m.from.nodeId, m.to.nodeId])).toEqual([
      ['etcd#0', 'cp-1', 'cp-4'],
    ]);
  });
});

describe('place: messy input', () => {
  it('drops duplicates (keeping the newest epoch), unknown roles and malformed ids', () => {
    const current = [
      ...haAssignments(),
      assign('etcd', 0, 'cp-4', { epoch: 0 }),
      assign('ghost-role', 0, 'cp-1'),
      { ...assign('etcd', 1, 'cp-2'), instanceId: 'etcd#7' },
    ];
    const r = place({ topology: ha(), nodes: haNodes(), current, now: T1 });
    expect(ids(r.removed)).toEqual(['etcd#0@cp-4', 'etcd#7@cp-2', 'ghost-role#0@cp-1']);
    expect(r.assignments).toEqual(
      place({ topology: ha(), nodes: haNodes(), current: haAssignments() }).assignments,
    );
  });

  it('two instances of a one-per-node role on one node: the higher ordinal moves', () => {
    const current = haAssignments().map((a) => (a.instanceId === 'etcd#1' ? { ...a, nodeId: 'cp-1' } : a));
    const r = place({ topology: ha(), nodes: haNodes(), current, now: T1 });
    expect(r.moved.map((m) => [m.to.instanceId, m.from.nodeId, m.to.nodeId])).toEqual([
      ['etcd#1', 'cp-1', 'cp-2'],
    ]);
  });

  it('is deterministic whatever the input order', () => {
    const nodes = withState(haNodes(), 'cp-2', { state: 'Unreachable' });
    const a = place({
      topology: ha(),
      nodes,
      current: haAssignments(),
      evictNodes: new Set(['cp-2']),
      now: T1,
    });
    const b = place({
      topology: ha(),
      nodes: [...nodes].reverse(),
      current: [...haAssignments()].reverse(),
      evictNodes: new Set(['cp-2']),
      now: T1,
    });
    expect(b).toEqual(a);
  });
});
