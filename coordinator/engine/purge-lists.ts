/**
 * The records of `drover clean` (`clean/<cluster>` in the store) and the purge list each node's
 * plan carries from them: the plan book's add-on port. Built at the composition root before the
 * engine, so a node's plan never depends on the HTTP layer; the clean action itself
 * (coordinator/clean.ts) writes the records through here.
 */
import type { PlanPurge } from '../../protocol/index.js';
import type { ClusterState } from '../state/cluster-state.js';
import type { Store } from '../store/types.js';
import type { Topology } from '../topology/index.js';

export const CLEANED_LABEL = 'drover.dev/cleaned';
const KEY = 'clean/';

export interface CleanRecord {
  cluster: string;
  /** when the cluster was first cleaned (ISO) */
  at: string;
  by?: string;
  purge: boolean;
  /** the topology before the first clean: `drover apply` it again to redeploy */
  previous: Topology;
  /** nodeId → instanceId → paths the instance owned (its `dataPaths`) */
  owned: Record<string, Record<string, string[]>>;
}

export const isCleaned = (t: Topology | undefined): boolean => t?.metadata.labels?.[CLEANED_LABEL] === 'true';

export class PurgeLists {
  private readonly records = new Map<string, CleanRecord>();

  constructor(
    private readonly state: ClusterState,
    private readonly store: Store | undefined,
  ) {}

  /** Loads the records from the store; returns their clusters (to re-render, so plans carry the lists). */
  async load(): Promise<string[]> {
    if (!this.store) return [];
    const clusters: string[] = [];
    for (const e of await this.store.list<CleanRecord>(KEY)) {
      this.records.set(e.value.cluster, e.value);
      clusters.push(e.value.cluster);
    }
    return clusters;
  }

  record(cluster: string): CleanRecord | undefined {
    return this.records.get(cluster);
  }

  /** Writes a record (the store first: the reconcile that follows renders the purge lists from it). */
  async save(record: CleanRecord): Promise<void> {
    await this.store?.put(`${KEY}${record.cluster}`, record);
    this.records.set(record.cluster, record);
  }

  /** Drops a cluster's record; false when it had none. */
  async forget(cluster: string): Promise<boolean> {
    if (!this.records.delete(cluster)) return false;
    await this.store?.delete(`${KEY}${cluster}`);
    return true;
  }

  /** The purge list of a node: only for a purge-cleaned cluster whose cleaned topology is applied. */
  addons(nodeId: string): { purge?: PlanPurge[] } | undefined {
    if (this.records.size === 0) return undefined;
    const rec = this.state.nodes.get(nodeId);
    if (!rec) return undefined;
    const r = this.records.get(this.state.clusterOf(rec));
    if (!r?.purge || !isCleaned(this.state.topology(r.cluster))) return undefined;
    const owned = r.owned[nodeId];
    if (!owned) return undefined;
    const purge = Object.entries(owned)
      .filter(([, paths]) => paths.length > 0)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([instanceId, paths]) => ({ instanceId, paths: [...paths].sort() }));
    return purge.length ? { purge } : undefined;
  }
}
