/**
 * VirtualCluster namespace-quota slices across super clusters (seed 002). A tenant namespace's
 * quota is N *slices* of a fixed size (default `{"cpu":"100m","memory":"100Mi"}`); this decides how
 * many slices each super cluster hosts, in the seed's `{"r1":1,"r2":1}` form.
 *
 * Policy, in two phases, deterministic for the same input:
 *  1. **Keep.** Each tenant keeps its previous slices on each cluster that still exists, up to
 *     what it now asks for and what still fits. Tenants are visited in name order and clusters in
 *     name order, so when a cluster shrinks, the slices that no longer fit are the only ones that
 *     move (the later tenants' on that cluster), and everything else stays put.
 *  2. **Place.** Remaining slices go one at a time, round-robin across tenants in name order (so a
 *     scarce cluster set is shared, not drained by the first tenant), each to the cluster with the
 *     largest free fraction `min(freeCpu/capCpu, freeMem/capMem)`; ties go to the larger absolute
 *     room, then the lower name. Capacity is never exceeded; what cannot be placed is reported in
 *     `unplaced` with the reason.
 */
import type { Capacity } from './capacity.js';
import { vcError } from './errors.js';
import {
  formatCpu,
  formatMemory,
  humanCpu,
  humanMemory,
  parseCpuMilli,
  parseMemoryBytes,
} from './quantity.js';

export interface SliceSize {
  cpu: string | number;
  memory: string | number;
}

export const DEFAULT_SLICE: Readonly<SliceSize> = Object.freeze({ cpu: '100m', memory: '100Mi' });
/** Upper bound on one tenant's slice count, so a typo cannot make placement loop for minutes. */
export const MAX_SLICES_PER_TENANT = 1_000_000;

export interface SuperClusterCapacity {
  name: string;
  capacity: Capacity;
}

export interface TenantQuota {
  name: string;
  slices: number;
  /** this tenant's slice size; default `input.defaultSlice` or DEFAULT_SLICE */
  slice?: SliceSize;
}

/** tenant → super cluster → slice count; zero counts are omitted; keys are sorted */
export type SlicePlacements = Record<string, Record<string, number>>;

export interface PlaceSlicesInput {
  superClusters: SuperClusterCapacity[];
  tenants: TenantQuota[];
  previous?: SlicePlacements;
  defaultSlice?: SliceSize;
}

export interface UnplacedSlices {
  tenant: string;
  slices: number;
  reason: string;
}

export interface PlaceSlicesResult {
  placements: SlicePlacements;
  unplaced: UnplacedSlices[];
  /** capacity left on each super cluster after placement */
  free: Record<string, Capacity>;
}

interface ClusterState {
  name: string;
  cap: Capacity;
  freeCpu: number;
  freeMem: number;
}

interface TenantState {
  name: string;
  want: number;
  cpu: number;
  mem: number;
  placed: Map<string, number>;
  remaining: number;
}

function fits(c: ClusterState, t: TenantState): number {
  return Math.min(Math.floor(c.freeCpu / t.cpu), Math.floor(c.freeMem / t.mem));
}

function take(c: ClusterState, t: TenantState, n: number): void {
  if (n <= 0) return;
  c.freeCpu -= n * t.cpu;
  c.freeMem -= n * t.mem;
  t.placed.set(c.name, (t.placed.get(c.name) ?? 0) + n);
  t.remaining -= n;
}

function freeFraction(c: ClusterState): number {
  const cpu = c.cap.cpuMilli > 0 ? c.freeCpu / c.cap.cpuMilli : 0;
  const mem = c.cap.memoryBytes > 0 ? c.freeMem / c.cap.memoryBytes : 0;
  return Math.min(cpu, mem);
}

function checkName(kind: string, name: unknown, i: number): string {
  if (typeof name !== 'string' || !/^[A-Za-z0-9]([A-Za-z0-9._-]{0,252})$/.test(name))
    throw vcError('DROVER_ERR_VC_INPUT', `${kind}[${i}].name "${String(name)}" is not a valid name`);
  return name;
}

function checkCount(where: string, n: unknown, max = MAX_SLICES_PER_TENANT): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > max)
    throw vcError('DROVER_ERR_VC_INPUT', `${where} must be an integer from 0 to ${max}, got ${String(n)}`);
  return n;
}

export function placeSlices(input: PlaceSlicesInput): PlaceSlicesResult {
  const clusters: ClusterState[] = [];
  const seenC = new Set<string>();
  (input.superClusters ?? []).forEach((sc, i) => {
    const name = checkName('superClusters', sc?.name, i);
    if (seenC.has(name)) throw vcError('DROVER_ERR_VC_INPUT', `superClusters: duplicate name "${name}"`);
    seenC.add(name);
    const cpu = checkCount(
      `superClusters[${i}] (${name}).capacity.cpuMilli`,
      sc.capacity?.cpuMilli,
      Number.MAX_SAFE_INTEGER,
    );
    const mem = checkCount(
      `superClusters[${i}] (${name}).capacity.memoryBytes`,
      sc.capacity?.memoryBytes,
      Number.MAX_SAFE_INTEGER,
    );
    clusters.push({ name, cap: { cpuMilli: cpu, memoryBytes: mem }, freeCpu: cpu, freeMem: mem });
  });
  clusters.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const byName = new Map(clusters.map((c) => [c.name, c]));

  const defaultSlice = input.defaultSlice ?? DEFAULT_SLICE;
  const tenants: TenantState[] = [];
  const seenT = new Set<string>();
  (input.tenants ?? []).forEach((t, i) => {
    const name = checkName('tenants', t?.name, i);
    if (seenT.has(name)) throw vcError('DROVER_ERR_VC_INPUT', `tenants: duplicate name "${name}"`);
    seenT.add(name);
    const want = checkCount(`tenants[${i}] (${name}).slices`, t.slices);
    const slice = t.slice ?? defaultSlice;
    const cpu = parseCpuMilli(slice.cpu, `tenants[${i}] (${name}).slice.cpu`);
    const mem = parseMemoryBytes(slice.memory, `tenants[${i}] (${name}).slice.memory`);
    if (cpu <= 0 || mem <= 0)
      throw vcError(
        'DROVER_ERR_VC_INPUT',
        `tenants[${i}] (${name}).slice must ask for some cpu and some memory`,
      );
    tenants.push({ name, want, cpu, mem, placed: new Map(), remaining: want });
  });
  tenants.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  // Phase 1: keep what was placed before and still fits.
  const previous = input.previous ?? {};
  for (const t of tenants) {
    const prev = previous[t.name];
    if (prev === undefined) continue;
    if (typeof prev !== 'object' || prev === null)
      throw vcError('DROVER_ERR_VC_INPUT', `previous.${t.name} must be an object of cluster → slices`);
    for (const cname of Object.keys(prev).sort()) {
      const n = checkCount(`previous.${t.name}.${cname}`, prev[cname]);
      const c = byName.get(cname);
      if (!c) continue; // the super cluster is gone: its slices are placed again below
      take(c, t, Math.min(n, t.remaining, fits(c, t)));
    }
  }

  // Phase 2: place the rest, one slice at a time, round-robin over tenants.
  const blocked = new Map<string, string>();
  let active = tenants.filter((t) => t.remaining > 0);
  while (active.length) {
    const next: TenantState[] = [];
    for (const t of active) {
      let best: ClusterState | undefined;
      let bestScore = -1;
      let bestRoom = -1;
      for (const c of clusters) {
        const room = fits(c, t);
        if (room < 1) continue;
        const score = freeFraction(c);
        if (score > bestScore || (score === bestScore && room > bestRoom)) {
          best = c;
          bestScore = score;
          bestRoom = room;
        }
      }
      if (!best) {
        blocked.set(t.name, reasonFor(t, clusters));
        continue;
      }
      take(best, t, 1);
      if (t.remaining > 0) next.push(t);
    }
    active = next;
  }

  const placements: SlicePlacements = {};
  const unplaced: UnplacedSlices[] = [];
  for (const t of tenants) {
    const row: Record<string, number> = {};
    for (const c of clusters) {
      const n = t.placed.get(c.name) ?? 0;
      if (n > 0) row[c.name] = n;
    }
    placements[t.name] = row;
    if (t.remaining > 0)
      unplaced.push({
        tenant: t.name,
        slices: t.remaining,
        reason: blocked.get(t.name) ?? reasonFor(t, clusters),
      });
  }
  const free: Record<string, Capacity> = {};
  for (const c of clusters) free[c.name] = { cpuMilli: c.freeCpu, memoryBytes: c.freeMem };
  return { placements, unplaced, free };
}

function reasonFor(t: TenantState, clusters: ClusterState[]): string {
  const size = `cpu ${formatCpu(t.cpu)}, memory ${formatMemory(t.mem)}`;
  if (!clusters.length) return 'no super clusters are defined';
  if (clusters.every((c) => c.cap.cpuMilli < t.cpu || c.cap.memoryBytes < t.mem))
    return `a slice (${size}) is larger than the capacity of every super cluster`;
  const room = clusters
    .slice(0, 5)
    .map((c) => `${c.name} cpu ${humanCpu(c.freeCpu)} memory ${humanMemory(c.freeMem)}`)
    .join('; ');
  return `no super cluster has room for another slice (${size}); free: ${room}${clusters.length > 5 ? '; …' : ''}`;
}

/** The seed's placement annotation value: `{"r1":1,"r2":1}` (sorted keys, zeros omitted). */
export function placementAnnotation(row: Record<string, number>): string {
  const out: Record<string, number> = {};
  for (const k of Object.keys(row).sort()) if (row[k]! > 0) out[k] = row[k]!;
  return JSON.stringify(out);
}

/** Parses the seed's slice annotation, e.g. `{"cpu":"100m", "memory":"100Mi"}`. */
export function parseSliceAnnotation(text: string): SliceSize & { cpuMilli: number; memoryBytes: number } {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw vcError('DROVER_ERR_VC_INPUT', `slice annotation is not JSON: ${text}`);
  }
  const o = v as Record<string, unknown>;
  if (!o || typeof o !== 'object' || !('cpu' in o) || !('memory' in o))
    throw vcError('DROVER_ERR_VC_INPUT', `slice annotation needs "cpu" and "memory": ${text}`);
  const cpu = o.cpu as string | number;
  const memory = o.memory as string | number;
  return {
    cpu,
    memory,
    cpuMilli: parseCpuMilli(cpu, 'slice.cpu'),
    memoryBytes: parseMemoryBytes(memory, 'slice.memory'),
  };
}

/**
 * How many slices a namespace ResourceQuota is: enough to cover it on both resources, i.e.
 * `ceil(max(quota.cpu / slice.cpu, quota.memory / slice.memory))`. The seed's quota of
 * `cpu: 200m, memory: 200Mi` with 100m/100Mi slices is 2.
 */
export function slicesForQuota(quota: SliceSize, slice: SliceSize = DEFAULT_SLICE): number {
  const qc = parseCpuMilli(quota.cpu, 'quota.cpu');
  const qm = parseMemoryBytes(quota.memory, 'quota.memory');
  const sc = parseCpuMilli(slice.cpu, 'slice.cpu');
  const sm = parseMemoryBytes(slice.memory, 'slice.memory');
  if (sc <= 0 || sm <= 0) throw vcError('DROVER_ERR_VC_INPUT', 'slice must ask for some cpu and some memory');
  return Math.max(Math.ceil(qc / sc), Math.ceil(qm / sm));
}
