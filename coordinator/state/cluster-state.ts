/**
 * The coordinator's read model of a cluster fleet: topologies, node records (with liveness, in
 * NodeRegistry) and assignments, plus the lookups every other module asks. Its write side is one
 * method, `apply(change)`: a store change as a watch would deliver it (the writers here write the
 * store first, then apply what they wrote), so a store watch can feed it later. Reads are plain
 * queries; nothing in here acts.
 */
import { CLUSTER_LABEL, clusterOfRecord, DEFAULT_CLUSTER } from '../labels.js';
import type { Assignment, NodeRecord } from '../model.js';
import type { NodeRegistry } from '../nodes.js';
import type { Store } from '../store/types.js';
import type { Topology } from '../topology/index.js';

/** One store change: a value (with its revision) written under a key, or deleted (no value). */
export type ClusterStateChange =
  | { kind: 'topology'; name: string; value?: Topology; revision?: number }
  | { kind: 'assignment'; cluster: string; instanceId: string; value?: Assignment; revision?: number };

export interface Revisioned<T> {
  value: T;
  revision?: number;
}

export class ClusterState {
  private readonly topologies = new Map<string, { topology: Topology; revision: number }>();
  private readonly assignments = new Map<string, Map<string, { a: Assignment; revision?: number }>>();

  constructor(readonly nodes: NodeRegistry) {}

  /** Reads topologies and assignments from the store (node records load in NodeRegistry). */
  async load(store: Store): Promise<void> {
    for (const e of await store.list<Topology>('topology/'))
      this.apply({
        kind: 'topology',
        name: e.key.slice('topology/'.length),
        value: e.value,
        revision: e.revision,
      });
    for (const e of await store.list<Assignment>('assignments/'))
      this.apply({
        kind: 'assignment',
        cluster: e.value.cluster,
        instanceId: e.value.instanceId,
        value: e.value,
        revision: e.revision,
      });
  }

  /** The write side: a store change, applied to the model. */
  apply(c: ClusterStateChange): void {
    if (c.kind === 'topology') {
      if (c.value) this.topologies.set(c.name, { topology: c.value, revision: c.revision ?? 0 });
      else this.topologies.delete(c.name);
      return;
    }
    if (c.value) this.assignmentMap(c.cluster).set(c.instanceId, { a: c.value, revision: c.revision });
    else this.assignments.get(c.cluster)?.delete(c.instanceId);
  }

  // ---------------------------------------------------------------- topologies

  /** Clusters with a topology, or with assignments left (a deleted topology's, until they are gone). */
  clusterNames(): string[] {
    const held = [...this.assignments].filter(([, m]) => m.size > 0).map(([name]) => name);
    return [...new Set([...this.topologies.keys(), ...held])].sort();
  }

  /** A cluster's topology; without a name, the default one (see defaultCluster). */
  topology(cluster?: string): Topology | undefined {
    return this.topologies.get(cluster ?? this.defaultCluster() ?? DEFAULT_CLUSTER)?.topology;
  }

  /** A cluster's topology with the store revision it was read or written at. */
  topologyEntry(cluster: string): { topology: Topology; revision: number } | undefined {
    return this.topologies.get(cluster);
  }

  listTopologies(): Topology[] {
    return [...this.topologies.values()].map((t) => t.topology);
  }

  /** Which topology `GET /v1/topology` shows without `?cluster=`; never used for node membership. */
  defaultCluster(): string | undefined {
    if (this.topologies.has(DEFAULT_CLUSTER)) return DEFAULT_CLUSTER;
    if (this.topologies.size === 1) return [...this.topologies.keys()][0];
    return undefined;
  }

  // ---------------------------------------------------------------- nodes

  /** The node's cluster: explicit (its `drover.dev/cluster` label, else `default`); see coordinator/labels.ts. */
  clusterOf(rec: NodeRecord): string {
    return clusterOfRecord(rec);
  }

  /** Node records of a cluster with their effective state, as placement and rendering see them. */
  placementNodes(cluster: string): NodeRecord[] {
    return this.nodes
      .all()
      .filter((n) => n.state !== 'Removed' && n.approved && this.clusterOf(n) === cluster)
      .map((n) => ({ ...n, state: this.nodes.effectiveState(n) }));
  }

  /** Why a node pinned by `cluster`'s topology is not among its nodes, if some node has that id or hostname. */
  pinElsewhere(cluster: string, pin: string): string | undefined {
    const all = this.nodes.all().filter((n) => n.state !== 'Removed');
    const n = all.find((x) => x.id === pin) ?? all.find((x) => x.hostname === pin);
    if (!n) return undefined;
    if (!n.approved) return `waiting for approval (\`drover approve ${n.id}\`)`;
    const c = this.clusterOf(n);
    if (c === cluster) return undefined;
    return `in cluster ${c}, not ${cluster}: a node joins a cluster only explicitly (\`drover label ${n.id} ${CLUSTER_LABEL}=${cluster}\`)`;
  }

  // ---------------------------------------------------------------- assignments

  currentAssignments(cluster: string): Assignment[] {
    return [...(this.assignments.get(cluster)?.values() ?? [])].map((x) => x.a);
  }

  allAssignments(): Assignment[] {
    return [...this.assignments.values()].flatMap((m) => [...m.values()].map((x) => x.a));
  }

  /** One assignment with the store revision it was read or written at. */
  assignmentEntry(cluster: string, instanceId: string): Revisioned<Assignment> | undefined {
    const x = this.assignments.get(cluster)?.get(instanceId);
    return x && { value: x.a, revision: x.revision };
  }

  private assignmentMap(cluster: string): Map<string, { a: Assignment; revision?: number }> {
    let m = this.assignments.get(cluster);
    if (!m) {
      m = new Map();
      this.assignments.set(cluster, m);
    }
    return m;
  }
}
