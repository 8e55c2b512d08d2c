/**
 * `drover clean [--purge]`: paictl's `clean` (seed 004), done through the ordinary plan path.
 *
 * Cleaning a cluster applies its topology with no roles (labelled `drover.dev/cleaned: "true"`),
 * so placement produces nothing, every node's plan becomes empty, and each agent stops and removes
 * its instances the way it does for any role that leaves a plan. Data stays on the nodes.
 *
 * With `--purge` the nodes' plans also carry a `purge` list: for every instance the node ran
 * before the clean, the paths it owned (`InstanceSpec.dataPaths`: its config dir, etcd's data dir,
 * the kubelet's root dir, …). The agent deletes them after stopping the instance; it never runs a
 * command for it, deletes only under its root, and skips any instance still in its plan. The
 * purge list is offered only while the cluster's applied topology is the cleaned one, so applying
 * a real topology again (by any path) can never purge the new instances' data.
 *
 * The record of a clean (`clean/<cluster>` in the store: the topology before it and what each
 * node owned) survives restarts, so `drover clean` then `drover clean --purge` still knows what
 * to delete after the plans were emptied.
 */
import type { Logger } from '../lib/logger.js';
import type { PlanPurge } from '../protocol/index.js';
import type { CleanResult } from '../protocol/rest/schemas.js';
import type { Engine } from './engine.js';
import { coordinatorError } from './errors.js';
import type { Store } from './store/types.js';
import { type Topology, validateTopology } from './topology/index.js';

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

export type { CleanResult };

export const isCleaned = (t: Topology | undefined): boolean => t?.metadata.labels?.[CLEANED_LABEL] === 'true';

/** Holds clean records and feeds the engine's `planAddons` hook with purge lists. */
export class CleanService {
  private readonly records = new Map<string, CleanRecord>();

  constructor(
    private readonly engine: Engine,
    private readonly store: Store | undefined,
    private readonly log: Logger,
  ) {
    engine.planAddons = (nodeId) => this.addons(nodeId);
  }

  /** Loads records from the store and re-renders their clusters so purge lists are in the plans. */
  async load(): Promise<void> {
    if (!this.store) return;
    for (const e of await this.store.list<CleanRecord>(KEY)) {
      this.records.set(e.value.cluster, e.value);
      this.engine.queue.add(`cluster:${e.value.cluster}`);
    }
  }

  record(cluster: string): CleanRecord | undefined {
    return this.records.get(cluster);
  }

  /** The purge list of a node: only for a purge-cleaned cluster whose cleaned topology is applied. */
  addons(nodeId: string): { purge?: PlanPurge[] } | undefined {
    if (this.records.size === 0) return undefined;
    const rec = this.engine.nodes.get(nodeId);
    if (!rec) return undefined;
    const r = this.records.get(this.engine.clusterOf(rec));
    if (!r?.purge || !isCleaned(this.engine.topology(r.cluster))) return undefined;
    const owned = r.owned[nodeId];
    if (!owned) return undefined;
    const purge = Object.entries(owned)
      .filter(([, paths]) => paths.length > 0)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([instanceId, paths]) => ({ instanceId, paths: [...paths].sort() }));
    return purge.length ? { purge } : undefined;
  }

  /** Cleans a cluster: every role stops everywhere; with `purge`, their data is deleted too. */
  async clean(input: { cluster?: string; purge: boolean; by?: string }): Promise<CleanResult> {
    const t = this.engine.topology(input.cluster);
    if (!t) {
      const names = this.engine.listTopologies().map((x) => x.metadata.name);
      throw coordinatorError(
        'DROVER_ERR_TOPOLOGY_NOT_FOUND',
        input.cluster
          ? `no topology for cluster ${JSON.stringify(input.cluster)}${names.length ? ` (have: ${names.join(', ')})` : ''}`
          : names.length
            ? `several clusters have topologies (${names.join(', ')}); pass --cluster NAME`
            : 'no topology applied yet: there is nothing to clean',
        { cluster: input.cluster },
      );
    }
    const cluster = t.metadata.name;
    const prev = this.records.get(cluster);
    const owned: CleanRecord['owned'] = structuredClone(prev?.owned ?? {});
    const stopping: CleanResult['stopping'] = [];
    for (const n of this.engine.placementNodes(cluster)) {
      const instances = this.engine.desiredPlan(n.id)?.instances ?? [];
      if (instances.length === 0) continue;
      stopping.push({ nodeId: n.id, instances: instances.map((i) => i.id).sort() });
      const mine = owned[n.id] ?? {};
      for (const i of instances) mine[i.id] = [...new Set([...(mine[i.id] ?? []), ...(i.dataPaths ?? [])])];
      owned[n.id] = mine;
    }
    const record: CleanRecord = {
      cluster,
      at: prev?.at ?? new Date().toISOString(),
      ...(input.by ? { by: input.by } : {}),
      purge: input.purge || prev?.purge === true,
      previous: prev?.previous ?? t,
      owned,
    };
    const cleaned = validateTopology(
      {
        ...t,
        metadata: { ...t.metadata, labels: { ...t.metadata.labels, [CLEANED_LABEL]: 'true' } },
        roles: {},
      },
      'drover clean',
    );
    // The record goes first: the reconcile that the apply triggers renders the purge lists from it.
    await this.store?.put(`${KEY}${cluster}`, record);
    this.records.set(cluster, record);
    await this.engine.applyTopology(cleaned);
    this.engine.events.emit({
      kind: 'cluster.cleaned',
      severity: 'warning',
      cluster,
      message: `cluster ${cluster} cleaned${record.purge ? ' with purge' : ''}${input.by ? ` by ${input.by}` : ''}: every role stops on every node${record.purge ? ' and its data is deleted' : '; data is kept'}`,
      data: { purge: record.purge, nodes: stopping.length },
    });
    this.log.warn({ cluster, purge: record.purge, by: input.by }, 'cluster cleaned');
    const purging = record.purge
      ? Object.entries(owned)
          .map(([nodeId, m]) => ({ nodeId, paths: Object.values(m).reduce((k, p) => k + p.length, 0) }))
          .filter((x) => x.paths > 0)
          .sort((a, b) => (a.nodeId < b.nodeId ? -1 : 1))
      : [];
    const count = stopping.reduce((k, s) => k + s.instances.length, 0);
    return {
      cluster,
      purge: record.purge,
      stopping: stopping.sort((a, b) => (a.nodeId < b.nodeId ? -1 : 1)),
      purging,
      message: `cluster ${cluster} cleaned: ${count} instance(s) on ${stopping.length} node(s) stop${
        record.purge
          ? `; ${purging.reduce((k, p) => k + p.paths, 0)} path(s) on ${purging.length} node(s) are deleted`
          : '; data is kept (drover clean --purge deletes it)'
      }. Redeploy with drover apply -f TOPOLOGY`,
    };
  }

  /** A real topology was applied to `cluster`: its clean record (and any purge list) is dropped. */
  async forget(cluster: string): Promise<void> {
    if (!this.records.delete(cluster)) return;
    await this.store?.delete(`${KEY}${cluster}`);
    this.log.info({ cluster }, 'clean record dropped: a topology was applied');
  }
}
