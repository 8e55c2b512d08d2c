import { describe, expect, it } from 'vitest';
import type { NodeRecord } from '../../coordinator/model.js';
import { noNodeReason, summarizeRejections, unplacedReasons } from '../../coordinator/placement/explain.js';
import { place } from '../../coordinator/placement/index.js';
import { validateTopology } from '../../coordinator/topology/index.js';
import { makeNode } from '../helpers/cluster-fixtures.js';

const node = (id: string) => ({ id }) as NodeRecord;

describe('placement reasons: one clear reason per instance, de-duplicated', () => {
  it('4 nodes match the selector, 3 already run the role and 1 is cordoned: says exactly that', () => {
    const t = validateTopology({
      apiVersion: 'drover.dev/v1',
      kind: 'Topology',
      metadata: { name: 'default' },
      cluster: { name: 'default' },
      customRoles: { 'kube-apiserver-x': { command: '/bin/api' } },
      roles: { 'kube-apiserver-x': { replicas: 5, nodeSelector: { pool: 'control-plane' } } },
    });
    const nodes = [1, 2, 3, 4].map((i) =>
      makeNode({ id: `cp-${i}`, address: `10.0.0.${i}`, pool: 'control-plane', cordoned: i === 4 }),
    );
    nodes.push(makeNode({ id: 'w-1', address: '10.0.1.1', pool: 'worker' }));
    const r = place({ topology: t, nodes, current: [] });
    expect(r.unplaced.map((u) => u.reason)).toEqual([
      'kube-apiserver-x#3: 4 nodes match pool=control-plane, but cp-1, cp-2 and cp-3 already run kube-apiserver-x (one per node); cp-4 is cordoned',
      'kube-apiserver-x#4: 4 nodes match pool=control-plane, but cp-1, cp-2 and cp-3 already run kube-apiserver-x (one per node); cp-4 is cordoned',
    ]);
    for (const u of r.unplaced) expect(u.reason).not.toMatch(/no Ready node|no node matches/);
    // the role view shows the two instances once
    expect(unplacedReasons(r.unplaced)).toEqual([
      'kube-apiserver-x#3 and kube-apiserver-x#4 unschedulable: 4 nodes match pool=control-plane, but cp-1, cp-2 and cp-3 already run kube-apiserver-x (one per node); cp-4 is cordoned',
    ]);
  });

  it('groups nodes by cause with singular and plural verbs, never "is already run"', () => {
    expect(
      summarizeRejections([
        { node: node('a'), why: { kind: 'spread', role: 'etcd' } },
        { node: node('b'), why: { kind: 'state', state: 'Unreachable' } },
        { node: node('c'), why: { kind: 'state', state: 'Unreachable' } },
      ]),
    ).toBe('a already runs etcd (one per node); b and c are Unreachable');
  });

  it('no matching node at all is said plainly, without a count', () => {
    const spec = validateTopology({
      apiVersion: 'drover.dev/v1',
      kind: 'Topology',
      metadata: { name: 'x' },
      cluster: { name: 'x' },
      roles: { etcd: { replicas: 3, nodeSelector: { pool: 'db' } } },
    }).roles.etcd!;
    expect(noNodeReason('etcd#0', spec, 0, [])).toBe('etcd#0: no node matches pool=db');
  });

  it('different reasons stay separate lines, in order', () => {
    expect(
      unplacedReasons([
        { instanceId: 'a#1', reason: 'a#1: x' },
        { instanceId: 'b#0', reason: 'b#0: y' },
        { instanceId: 'a#2', reason: 'a#2: x' },
      ]),
    ).toEqual(['a#1 and a#2 unschedulable: x', 'b#0 unschedulable: y']);
  });
});
