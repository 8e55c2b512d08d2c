/**
 * A small fleet shaped like seed 003 (one load-balancer node, four control-plane nodes of which
 * one is the spare, two workers) for catalog and placement tests.
 */

import type { Assignment, NodeRecord } from '../../coordinator/model.js';
import { deriveLabels } from '../../coordinator/topology/index.js';
import type { Facts, NodeState } from '../../protocol/index.js';
import { sampleFacts } from './fixtures.js';

export const T0 = '2026-11-23T08:00:00.000Z';
export const T1 = '2026-11-23T09:00:00.000Z';

export interface NodeSpec {
  id: string;
  address: string;
  pool?: string;
  labels?: Record<string, string>;
  binaries?: string[];
  cores?: number;
  memoryGiB?: number;
  state?: NodeState;
  cordoned?: boolean;
  approved?: boolean;
}

const BIN_PATHS: Record<string, string> = {
  etcd: '/usr/bin/etcd',
  haproxy: '/usr/sbin/haproxy',
};

export function makeNode(s: NodeSpec): NodeRecord {
  const binaries: Facts['binaries'] = {};
  for (const b of s.binaries ?? ['etcd', 'haproxy'])
    binaries[b] = { path: BIN_PATHS[b] ?? `/usr/local/bin/${b}`, version: b === 'etcd' ? '3.4.23' : '1.0.0' };
  const facts = sampleFacts({
    hostname: s.id,
    cpu: { cores: s.cores ?? 4, physicalCores: 2, model: 'Test CPU' },
    memory: { totalBytes: (s.memoryGiB ?? 8) * 2 ** 30 },
    binaries,
  });
  return {
    id: s.id,
    hostname: s.id,
    address: s.address,
    labels: { ...(s.pool ? { pool: s.pool } : {}), ...(s.labels ?? {}), ...deriveLabels(facts) },
    state: s.state ?? 'Ready',
    facts,
    fingerprint: { machineId: `m-${s.id}`, macs: [] },
    approved: s.approved ?? true,
    cordoned: s.cordoned ?? false,
    createdAt: T0,
    updatedAt: T0,
  };
}

/** lb-1, cp-1…cp-4 (cp-4 is the spare), w-1, w-2; cp-1 has a real kube-apiserver binary. */
export function haNodes(): NodeRecord[] {
  return [
    makeNode({ id: 'lb-1', address: '10.0.0.10', pool: 'lb' }),
    makeNode({
      id: 'cp-1',
      address: '10.0.0.11',
      pool: 'control-plane',
      binaries: ['etcd', 'haproxy', 'kube-apiserver'],
    }),
    makeNode({ id: 'cp-2', address: '10.0.0.12', pool: 'control-plane' }),
    makeNode({ id: 'cp-3', address: '10.0.0.13', pool: 'control-plane' }),
    makeNode({ id: 'cp-4', address: '10.0.0.14', pool: 'control-plane' }),
    makeNode({ id: 'w-1', address: '10.0.0.21', pool: 'worker', binaries: ['kubelet', 'kube-proxy'] }),
    makeNode({ id: 'w-2', address: '10.0.0.22', pool: 'worker' }),
  ];
}

export function assign(
  role: string,
  ordinal: number,
  nodeId: string,
  over: Partial<Assignment> = {},
): Assignment {
  return {
    instanceId: `${role}#${ordinal}`,
    role,
    ordinal,
    nodeId,
    epoch: 1,
    cluster: 'ha',
    since: T0,
    ...over,
  };
}

/** What placement gives examples/ha.yaml on haNodes(): cp-1…cp-3 run the control plane. */
export function haAssignments(): Assignment[] {
  const cp = ['cp-1', 'cp-2', 'cp-3'];
  return [
    assign('load-balancer', 0, 'lb-1'),
    ...cp.map((n, i) => assign('etcd', i, n)),
    ...cp.map((n, i) => assign('kube-apiserver', i, n)),
    ...cp.map((n, i) => assign('kube-scheduler', i, n)),
    ...cp.map((n, i) => assign('kube-controller-manager', i, n)),
    assign('kubelet', 0, 'w-1'),
    assign('kubelet', 1, 'w-2'),
    assign('kube-proxy', 0, 'w-1'),
    assign('kube-proxy', 1, 'w-2'),
  ];
}

export const nodeMap = (nodes: NodeRecord[]): Map<string, NodeRecord> => new Map(nodes.map((n) => [n.id, n]));
