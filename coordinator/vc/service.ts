/**
 * VirtualCluster slices across super clusters, run by the coordinator (seed 002).
 *
 * Every cluster the coordinator holds whose topology has a `kubelet` role is a super cluster; its
 * capacity is `capacityFromNodes` over the nodes running a kubelet there. Tenant namespace quotas
 * (N slices, or a quota turned into slices) are kept in the store (`vc/tenants/<name>`), and so is
 * the last placement (`vc/placements`), which every new placement starts from (`previous`): nothing
 * moves unless it must. The placement is recomputed when a tenant changes, when the fleet changes
 * (nodes joining, becoming Unreachable, removed, roles moving: engine events), and on a timer as a
 * backstop; a run whose capacities and tenants are unchanged writes nothing.
 *
 * A Suspect node still counts: capacity, like repair, rides out short blips. Slices move when a
 * node is Unreachable, removed, cordoned or drained. Each tenant whose placement changed gets a
 * `vc.slices-moved` event; slices that fit nowhere give `vc.slices-unplaced`.
 */
import { type Clock, isoNow, systemClock, type Ticker } from '../../lib/clock.js';
import type { Logger } from '../../lib/logger.js';
import type { Event, NodeState } from '../../protocol/index.js';
import type { EventInput } from '../events.js';
import type { Assignment, NodeRecord } from '../model.js';
import type { Store } from '../store/types.js';
import type { Topology } from '../topology/index.js';
import { type Capacity, type CapacityOptions, capacityFromNodes } from './capacity.js';
import { vcError } from './errors.js';
import {
  DEFAULT_SLICE,
  placementAnnotation,
  placeSlices,
  type SlicePlacements,
  type SliceSize,
  slicesForQuota,
  type UnplacedSlices,
} from './placement.js';
import { parseCpuMilli, parseMemoryBytes } from './quantity.js';

/** What the service reads from the engine (the Engine implements it). */
export interface VcEngine {
  listTopologies(): Topology[];
  currentAssignments(cluster: string): Assignment[];
  placementNodes(cluster: string): NodeRecord[];
  events: { emit(e: EventInput): Event; subscribe(fn: (e: Event) => void): () => void };
}

export interface TenantRecord {
  name: string;
  slices: number;
  /** this tenant's slice size; absent: the default `{"cpu":"100m","memory":"100Mi"}` */
  slice?: SliceSize;
  /** the ResourceQuota the slices were computed from, when given as a quota */
  quota?: SliceSize;
  updatedAt: string;
}

export interface SuperClusterView {
  name: string;
  /** Ready (or Suspect) nodes running a kubelet: the ones that count */
  nodes: number;
  capacity: Capacity;
  /** given out to tenants by the last placement */
  used: Capacity;
}

export interface PlacementRecord {
  placements: SlicePlacements;
  unplaced: UnplacedSlices[];
  capacity: Record<string, Capacity>;
  at: string;
}

export interface VcServiceOptions {
  store?: Store;
  logger?: Logger;
  capacity?: CapacityOptions;
  /** backstop re-placement period; default 10 s (0 disables the timer) */
  resyncMs?: number;
  /** how long fleet events are gathered before one re-placement; default 200 ms */
  debounceMs?: number;
  /**
   * The storm guard (RepairPolicy.stormActive): while it holds a super cluster, its Unreachable
   * nodes keep counting, so no slice is re-placed away from nodes that only look dead.
   */
  stormGuard?: (cluster: string) => boolean;
  /** stamps tenant updates and placements, paces the resync and the debounce; default the system clock */
  clock?: Clock;
}

const TENANTS = 'vc/tenants/';
const PLACEMENTS = 'vc/placements';
const NAME = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;
/** Event kinds after which capacity may have changed. */
const FLEET_EVENTS = /^(node\.|role\.(placed|moved|removed)|topology\.applied)/;

export class VcService {
  private tenants = new Map<string, TenantRecord>();
  private last: PlacementRecord = { placements: {}, unplaced: [], capacity: {}, at: '' };
  private signature = '';
  private resync?: Ticker;
  private debounce?: unknown;
  private unsubscribe?: () => void;
  private running: Promise<PlacementRecord> = Promise.resolve(this.last);

  constructor(
    private readonly engine: VcEngine,
    private readonly opts: VcServiceOptions = {},
  ) {
    this.clock = opts.clock ?? systemClock;
  }

  private readonly clock: Clock;

  /** Loads tenants and the last placement, places once, then follows fleet events and the timer. */
  async start(): Promise<void> {
    const store = this.opts.store;
    if (store) {
      for (const e of await store.list<TenantRecord>(TENANTS)) this.tenants.set(e.value.name, e.value);
      const p = await store.get<PlacementRecord>(PLACEMENTS);
      if (p) this.last = p.value;
    }
    this.unsubscribe = this.engine.events.subscribe((e) => {
      if (FLEET_EVENTS.test(e.kind)) this.schedule();
    });
    const every = this.opts.resyncMs ?? 10_000;
    if (every > 0) this.resync = this.clock.every(every, () => void this.replace('resync').catch(() => {}));
    await this.replace('start');
  }

  stop(): void {
    this.resync?.stop();
    if (this.debounce !== undefined) this.clock.clearTimeout(this.debounce);
    this.unsubscribe?.();
  }

  private schedule(): void {
    if (this.debounce !== undefined) return;
    this.debounce = this.clock.setTimeout(() => {
      this.debounce = undefined;
      void this.replace('fleet').catch((err) =>
        this.opts.logger?.error({ err }, 'slice re-placement failed'),
      );
    }, this.opts.debounceMs ?? 200);
  }

  /** Super clusters and their capacity, as placement sees them now. */
  superClusters(): SuperClusterView[] {
    const out: SuperClusterView[] = [];
    const used = this.used();
    for (const t of this.engine.listTopologies()) {
      if (!t.roles.kubelet) continue;
      const cluster = t.metadata.name;
      const kubeletNodes = new Set(
        this.engine
          .currentAssignments(cluster)
          .filter((a) => a.role === 'kubelet')
          .map((a) => a.nodeId),
      );
      // While the storm guard holds this cluster, Unreachable nodes count too: repair moves
      // nothing away from them, and neither does slice placement.
      const held = this.opts.stormGuard?.(cluster) === true;
      const nodes = this.engine
        .placementNodes(cluster)
        .filter((n) => kubeletNodes.has(n.id))
        // a Suspect node rides out the blip, as repair's grace period does
        .map((n) => ({
          facts: n.facts,
          state: (n.state === 'Suspect' || (held && n.state === 'Unreachable')
            ? 'Ready'
            : n.state) as NodeState,
        }));
      const capacity = capacityFromNodes(nodes, this.opts.capacity);
      out.push({
        name: cluster,
        nodes: nodes.filter((n) => n.state === 'Ready').length,
        capacity,
        used: used[cluster] ?? { cpuMilli: 0, memoryBytes: 0 },
      });
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  private readonly held = new Set<string>();

  /** One event when the storm guard starts holding a super cluster's slices, one when it ends. */
  private noteHeld(cluster: string, held: boolean): void {
    if (held === this.held.has(cluster)) return;
    if (held) this.held.add(cluster);
    else this.held.delete(cluster);
    this.engine.events.emit(
      held
        ? {
            kind: 'vc.placement-held',
            severity: 'warning',
            cluster,
            message: `super cluster ${cluster}: the storm guard holds (too many nodes look Unreachable); its slices stay where they are`,
          }
        : {
            kind: 'vc.placement-resumed',
            severity: 'info',
            cluster,
            message: `super cluster ${cluster}: the storm guard released; slices follow its capacity again`,
          },
    );
  }

  listTenants(): TenantRecord[] {
    return [...this.tenants.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  tenant(name: string): TenantRecord | undefined {
    return this.tenants.get(name);
  }

  placement(): PlacementRecord {
    return this.last;
  }

  /** Creates or changes a tenant's quota (slices, or a quota turned into slices) and places again. */
  async setTenant(
    name: string,
    input: { slices?: number; quota?: SliceSize; slice?: SliceSize },
  ): Promise<{ tenant: TenantRecord; placement: PlacementRecord }> {
    if (!NAME.test(name))
      throw vcError(
        'DROVER_ERR_VC_INPUT',
        `tenant name "${name}" must be a DNS name (lower-case letters, digits, "-" and ".")`,
        {
          field: 'name',
        },
      );
    if ((input.slices === undefined) === (input.quota === undefined))
      throw vcError('DROVER_ERR_VC_INPUT', 'give exactly one of slices (a count) or quota ({cpu, memory})', {
        field: input.slices === undefined ? 'slices' : 'quota',
      });
    if (input.slice) {
      const cpu = parseCpuMilli(input.slice.cpu, 'slice.cpu');
      const mem = parseMemoryBytes(input.slice.memory, 'slice.memory');
      if (cpu <= 0 || mem <= 0)
        throw vcError('DROVER_ERR_VC_INPUT', 'slice must ask for some cpu and some memory', {
          field: 'slice',
        });
    }
    const slices = input.quota ? slicesForQuota(input.quota, input.slice ?? DEFAULT_SLICE) : input.slices!;
    // placeSlices checks the count's range; do it here so nothing is stored when it is wrong
    placeSlices({
      superClusters: [],
      tenants: [{ name, slices, ...(input.slice ? { slice: input.slice } : {}) }],
    });
    const rec: TenantRecord = {
      name,
      slices,
      ...(input.slice ? { slice: input.slice } : {}),
      ...(input.quota ? { quota: input.quota } : {}),
      updatedAt: isoNow(this.clock),
    };
    await this.opts.store?.put(`${TENANTS}${name}`, rec);
    this.tenants.set(name, rec);
    return { tenant: rec, placement: await this.replace(`tenant ${name} set`) };
  }

  async deleteTenant(name: string): Promise<boolean> {
    if (!this.tenants.delete(name)) return false;
    await this.opts.store?.delete(`${TENANTS}${name}`);
    await this.replace(`tenant ${name} deleted`);
    return true;
  }

  /** Places the slices again (one run at a time); writes and reports only what changed. */
  replace(why: string): Promise<PlacementRecord> {
    this.running = this.running.then(
      () => this.replaceNow(why),
      () => this.replaceNow(why),
    );
    return this.running;
  }

  private async replaceNow(why: string): Promise<PlacementRecord> {
    const supers = this.superClusters();
    for (const sc of supers) this.noteHeld(sc.name, this.opts.stormGuard?.(sc.name) === true);
    const tenants = this.listTenants().map((t) => ({
      name: t.name,
      slices: t.slices,
      ...(t.slice ? { slice: t.slice } : {}),
    }));
    const signature = JSON.stringify([supers.map((s) => [s.name, s.capacity]), tenants]);
    if (signature === this.signature) return this.last;
    const r = placeSlices({
      superClusters: supers.map((s) => ({ name: s.name, capacity: s.capacity })),
      tenants,
      previous: this.last.placements,
    });
    const before = this.last;
    const next: PlacementRecord = {
      placements: r.placements,
      unplaced: r.unplaced,
      capacity: Object.fromEntries(supers.map((s) => [s.name, s.capacity])),
      at: isoNow(this.clock),
    };
    this.signature = signature;
    this.last = next;
    const changed =
      JSON.stringify([before.placements, before.unplaced]) !==
      JSON.stringify([next.placements, next.unplaced]);
    if (!changed) return next;
    await this.opts.store?.put(PLACEMENTS, next);
    for (const t of tenants) {
      const from = before.placements[t.name];
      const to = next.placements[t.name] ?? {};
      if (from === undefined || placementAnnotation(from) === placementAnnotation(to)) continue;
      this.engine.events.emit({
        kind: 'vc.slices-moved',
        severity: 'warning',
        message: `tenant ${t.name}: slices moved from ${placementAnnotation(from)} to ${placementAnnotation(to)} (${why})`,
        data: { tenant: t.name, from, to },
      });
    }
    for (const u of next.unplaced) {
      const was = before.unplaced.find((x) => x.tenant === u.tenant);
      if (was && was.slices === u.slices) continue;
      this.engine.events.emit({
        kind: 'vc.slices-unplaced',
        severity: 'warning',
        message: `tenant ${u.tenant}: ${u.slices} slice(s) fit on no super cluster: ${u.reason}`,
        data: { tenant: u.tenant, slices: u.slices },
      });
    }
    this.opts.logger?.info(
      { why, placements: next.placements, unplaced: next.unplaced.length },
      'slices placed',
    );
    return next;
  }

  /** `{"r1":1,"r2":1}` for a tenant (the seed's placements annotation). */
  annotation(name: string): string {
    return placementAnnotation(this.last.placements[name] ?? {});
  }

  /** CPU and memory the last placement gives out on each super cluster. */
  used(): Record<string, Capacity> {
    const used: Record<string, Capacity> = {};
    for (const t of this.listTenants()) {
      const cpu = parseCpuMilli((t.slice ?? DEFAULT_SLICE).cpu);
      const mem = parseMemoryBytes((t.slice ?? DEFAULT_SLICE).memory);
      for (const [c, n] of Object.entries(this.last.placements[t.name] ?? {})) {
        const u = used[c] ?? { cpuMilli: 0, memoryBytes: 0 };
        u.cpuMilli += n * cpu;
        u.memoryBytes += n * mem;
        used[c] = u;
      }
    }
    return used;
  }
}
