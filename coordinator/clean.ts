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
import { type Clock, isoNow, systemClock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { CleanResult } from '../protocol/rest/schemas.js';
import { CLEANED_LABEL, type CleanRecord, type PurgeLists } from './engine/purge-lists.js';
import type { Engine } from './engine.js';
import { coordinatorError } from './errors.js';
import { validateTopology } from './topology/index.js';

export { CLEANED_LABEL, type CleanRecord, isCleaned } from './engine/purge-lists.js';

export type { CleanResult };

/**
 * `drover clean`: writes clean records into the purge lists (coordinator/engine/purge-lists.ts,
 * which the engine's plan book reads) and applies the cleaned topology.
 */
export class CleanService {
  constructor(
    private readonly engine: Engine,
    private readonly purge: PurgeLists,
    private readonly log: Logger,
    private readonly clock: Clock = systemClock,
  ) {}

  /** Loads records from the store and re-renders their clusters so purge lists are in the plans. */
  async load(): Promise<void> {
    for (const cluster of await this.purge.load()) this.engine.queue.add(`cluster:${cluster}`);
  }

  record(cluster: string): CleanRecord | undefined {
    return this.purge.record(cluster);
  }

  /** The purge list of a node: only for a purge-cleaned cluster whose cleaned topology is applied. */
  addons(nodeId: string): ReturnType<PurgeLists['addons']> {
    return this.purge.addons(nodeId);
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
    const prev = this.purge.record(cluster);
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
      at: prev?.at ?? isoNow(this.clock),
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
    await this.purge.save(record);
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
    if (!(await this.purge.forget(cluster))) return;
    this.log.info({ cluster }, 'clean record dropped: a topology was applied');
  }
}
