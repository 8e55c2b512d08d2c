/**
 * The plan book: every node's desired plan, rendered from its cluster's topology and assignments,
 * sealed (content checksum) and signed. A new plan queues the node's push (`onNewPlan`); the
 * push itself is coordinator/engine/node-push.ts.
 */
import type { Clock } from '../../lib/clock.js';
import {
  type InstanceSpec,
  instanceChecksum,
  type NodePlan,
  PROTOCOL_VERSION,
  type SignedPlan,
  type SigningKeyPair,
  sealPlan,
  signPlan,
} from '../../protocol/index.js';
import { etcdTlsOn, RenderCache, type RenderOptions, renderPlans } from '../catalog/index.js';
import type { Assignment, NodeRecord } from '../model.js';
import type { Topology } from '../topology/index.js';
import type { PlanAddons } from './ports.js';

export interface Desired {
  plan: NodePlan;
  signed: SignedPlan;
}

export interface PlanBookPorts {
  clock: Clock;
  signingKey: SigningKeyPair;
  renderOptions?: RenderOptions;
  /** a cluster's etcd transport (coordinator/etcd/transport.ts): `plain` for a legacy plain-HTTP cluster */
  etcdTransport?: (cluster: string) => 'tls' | 'plain';
  /** the coordinator epoch every plan carries (set at start-up) */
  epoch: () => number;
  /** extra plan fields (the purge lists of `drover clean --purge`) */
  planAddons?: PlanAddons;
  /** a node got a new desired plan: push it */
  onNewPlan: (nodeId: string) => void;
  /**
   * The generation the node's agent reports it applied under the current epoch, if any. A new
   * plan's generation is always above it, so an agent never sees a fresh plan as stale, even when
   * this book forgot the node (remove + re-add) or lost count (see `catchUp`).
   */
  appliedGeneration?: (nodeId: string) => number | undefined;
}

export class PlanBook {
  private readonly desired = new Map<string, Desired>();
  private readonly generation = new Map<string, number>();
  /** one render memo per cluster: instance ids repeat across clusters, and a render retains only its own */
  private readonly renderCaches = new Map<string, RenderCache>();
  /** per node, the rendered instance objects its desired plan was last sealed from */
  private readonly sealedFrom = new Map<string, Set<object>>();
  /**
   * Content checksums of rendered instance objects. Rendered specs are never mutated (the render
   * cache hands the same object back while its inputs are unchanged), so identity is a safe key;
   * a topology preview and the reconcile that applies it then checksum each instance once.
   */
  private readonly instanceSums = new WeakMap<object, string>();

  constructor(private readonly p: PlanBookPorts) {}

  get(nodeId: string): Desired | undefined {
    return this.desired.get(nodeId);
  }

  plan(nodeId: string): NodePlan | undefined {
    return this.desired.get(nodeId)?.plan;
  }

  entries(): IterableIterator<[string, Desired]> {
    return this.desired.entries();
  }

  /** Renders every node's instances of a cluster (memoised per cluster, so a preview's work is reused). */
  render(
    cluster: string,
    topology: Topology,
    assignments: Assignment[],
    nodes: Map<string, NodeRecord>,
  ): Map<string, Array<Omit<InstanceSpec, 'checksum'>>> {
    return renderPlans({
      topology,
      assignments,
      nodes,
      options: this.renderOptionsFor(cluster),
    });
  }

  /** Whether a cluster's etcd runs with TLS in its plans (the membership freeze writes its URLs). */
  etcdTls(cluster: string): boolean {
    return etcdTlsOn(this.renderOptionsFor(cluster));
  }

  private renderOptionsFor(cluster: string): RenderOptions {
    const transport = this.p.etcdTransport?.(cluster);
    return {
      ...this.p.renderOptions,
      ...(transport ? { etcdTransport: transport } : {}),
      cache: this.renderCache(cluster),
    };
  }

  /** A cluster without a topology renders nothing: drop its memo. */
  dropRenderCache(cluster: string): void {
    this.renderCaches.delete(cluster);
  }

  /** Forgets a removed node's plan. */
  forget(nodeId: string): void {
    this.desired.delete(nodeId);
    this.sealedFrom.delete(nodeId);
    this.generation.delete(nodeId);
  }

  /** Returns true when the node got a new plan. */
  setDesired(nodeId: string, instances: Array<Omit<InstanceSpec, 'checksum'>>): boolean {
    const cur = this.desired.get(nodeId);
    // The render cache hands back the same objects for unchanged instances: when every one is the
    // object the current plan was sealed from, the plan cannot have changed, and the O(content)
    // checksum pass is skipped (most nodes on most cluster reconciles of a large fleet).
    const inputs = this.sealedFrom.get(nodeId);
    if (
      cur &&
      inputs &&
      inputs.size === instances.length &&
      instances.every((i) => inputs.has(i)) &&
      samePlanAddons(cur.plan, { ...this.p.planAddons?.(nodeId) })
    )
      return false;
    const gen = Math.max(this.generation.get(nodeId) ?? 0, this.p.appliedGeneration?.(nodeId) ?? 0);
    const candidate = this.sealFor(nodeId, instances, gen + 1);
    this.sealedFrom.set(nodeId, new Set<object>(instances));
    if (cur && cur.plan.checksum === candidate.checksum && samePlanAddons(cur.plan, candidate)) return false;
    this.generation.set(nodeId, gen + 1);
    this.desired.set(nodeId, { plan: candidate, signed: signPlan(candidate, this.p.signingKey) });
    this.p.onNewPlan(nodeId);
    return true;
  }

  /**
   * The node's agent applied generation `applied` (under the current epoch) with other content
   * than the desired plan, and the desired plan's generation is not above it: the agent would
   * refuse it as stale forever. Re-issues the same content above that generation. Returns true
   * when it did.
   */
  catchUp(nodeId: string, applied: { generation: number; checksum: string }): boolean {
    const cur = this.desired.get(nodeId);
    if (!cur || applied.generation < cur.plan.generation || applied.checksum === cur.plan.checksum)
      return false;
    this.reissue(nodeId, cur, applied.generation + 1);
    return true;
  }

  /** Re-issues every desired plan under the current epoch (after the epoch was raised mid-run). */
  reissueAll(): void {
    for (const [nodeId, cur] of this.desired)
      this.reissue(nodeId, cur, Math.max(this.generation.get(nodeId) ?? 0, cur.plan.generation) + 1);
  }

  /** The same content (instances and add-ons), re-sealed under a new generation and the current epoch. */
  private reissue(nodeId: string, cur: Desired, generation: number): void {
    const { checksum: _c, ...rest } = cur.plan;
    const plan = sealPlan(
      {
        ...rest,
        generation,
        coordinatorEpoch: this.p.epoch(),
        issuedAt: new Date(this.p.clock.now()).toISOString(),
      },
      (i) => (i as InstanceSpec).checksum,
    );
    this.generation.set(nodeId, generation);
    this.desired.set(nodeId, { plan, signed: signPlan(plan, this.p.signingKey) });
    this.p.onNewPlan(nodeId);
  }

  /** Seals (checksums) a plan for `nodeId` without booking it. */
  sealFor(nodeId: string, instances: Array<Omit<InstanceSpec, 'checksum'>>, generation: number): NodePlan {
    return sealPlan(
      {
        v: PROTOCOL_VERSION,
        type: 'plan',
        nodeId,
        generation,
        coordinatorEpoch: this.p.epoch(),
        issuedAt: new Date(this.p.clock.now()).toISOString(),
        instances: [...instances].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
        ...this.p.planAddons?.(nodeId),
      },
      (i) => {
        let sum = this.instanceSums.get(i);
        if (sum === undefined) {
          sum = instanceChecksum(i);
          this.instanceSums.set(i, sum);
        }
        return sum;
      },
    );
  }

  private renderCache(cluster: string): RenderCache {
    let c = this.renderCaches.get(cluster);
    if (!c) {
      c = new RenderCache();
      this.renderCaches.set(cluster, c);
    }
    return c;
  }
}

/** Same plan add-ons (fields outside the content checksum, e.g. `purge`)? */
function samePlanAddons(a: Pick<NodePlan, 'purge'>, b: Pick<NodePlan, 'purge'>): boolean {
  return JSON.stringify(a.purge ?? null) === JSON.stringify(b.purge ?? null);
}
