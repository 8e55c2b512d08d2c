/**
 * Arktos data partitions (seeds 000/001): API servers are split into *service groups*, each
 * serving a range of tenants given by a `DataPartitionConfig`.
 *
 * Range semantics are Arktos' own. The seeds show the fields but not whether the bounds are
 * inclusive; Arktos' design (CentaurusInfra/arktos docs/design-proposals/apiserver/
 * Data-Partition-Design.md, `type DataPartitionConfig`) says "Range start is inclusive", "Range end
 * is exclusive", and an `isRange*Valid: false` bound is open (the value is then ignored: the seed's
 * `rangeStart: "A", isRangeStartValid: false` means "from the first tenant"). So a tenant `t` is
 * in a partition iff
 *     (!isRangeStartValid || t >= rangeStart) && (!isRangeEndValid || t < rangeEnd)
 * compared as Go compares strings: byte-wise on UTF-8, which is what `compareTenants` does (JS `<`
 * compares UTF-16 code units and disagrees with Go beyond the BMP).
 *
 * Drover requires the partitions to tile the whole tenant space: no overlap (a tenant served by two
 * groups would be written by both) and no gap (a tenant in a gap is served by no API server and
 * its objects silently vanish from every watch). So exactly one partition has an open start,
 * exactly one an open end, and each partition's end is the next one's start. The seed's note still
 * applies on top: every API server always loads the `default` tenant whatever its range.
 */
import { arktosError } from './errors.js';

export interface Partition {
  /** the service group id (`serviceGroupId`, exported as APISERVER_SERVICEGROUPID), e.g. "1" */
  id: string;
  /** `metadata.name` of the DataPartitionConfig; default `partition-<id>` */
  name?: string;
  rangeStart: string;
  isRangeStartValid: boolean;
  rangeEnd: string;
  isRangeEndValid: boolean;
  /** API-server replicas in this service group */
  replicas: number;
}

const ID_RE = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,62})$/;
const NAME_RE = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;

/** Go's string ordering: byte-wise over UTF-8. Negative when a < b. */
export function compareTenants(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export function partitionName(p: Partition): string {
  return p.name ?? `partition-${p.id}`;
}

/** Is `tenant` in `p`'s range? Start inclusive, end exclusive, invalid bounds open (see above). */
export function partitionContains(p: Partition, tenant: string): boolean {
  return (
    (!p.isRangeStartValid || compareTenants(tenant, p.rangeStart) >= 0) &&
    (!p.isRangeEndValid || compareTenants(tenant, p.rangeEnd) < 0)
  );
}

function describe(p: Partition): string {
  const s = p.isRangeStartValid ? `"${p.rangeStart}"` : '(open)';
  const e = p.isRangeEndValid ? `"${p.rangeEnd}"` : '(open)';
  return `${partitionName(p)} [${s}, ${e})`;
}

function checkOne(p: Partition, i: number): void {
  const at = (f: string) => `partitions[${i}]${p && typeof p.id === 'string' ? ` (${p.id})` : ''}.${f}`;
  const bad = (f: string, msg: string) =>
    arktosError('DROVER_ERR_ARKTOS_PARTITION', `${at(f)} ${msg}`, { field: at(f), index: i });
  if (!p || typeof p !== 'object')
    throw arktosError('DROVER_ERR_ARKTOS_PARTITION', `partitions[${i}] must be an object`);
  if (typeof p.id !== 'string' || !ID_RE.test(p.id))
    throw bad('id', `"${String(p.id)}" must match ${ID_RE.source}`);
  if (p.name !== undefined && (typeof p.name !== 'string' || !NAME_RE.test(p.name)))
    throw bad('name', `"${String(p.name)}" is not a valid object name`);
  for (const f of ['isRangeStartValid', 'isRangeEndValid'] as const)
    if (typeof p[f] !== 'boolean') throw bad(f, 'must be true or false');
  for (const f of ['rangeStart', 'rangeEnd'] as const)
    if (typeof p[f] !== 'string') throw bad(f, 'must be a string');
  if (p.isRangeStartValid && p.rangeStart === '')
    throw bad('rangeStart', 'is empty but isRangeStartValid is true');
  if (p.isRangeEndValid && p.rangeEnd === '') throw bad('rangeEnd', 'is empty but isRangeEndValid is true');
  if (p.isRangeStartValid && p.isRangeEndValid && compareTenants(p.rangeStart, p.rangeEnd) >= 0)
    throw bad(
      'rangeEnd',
      `"${p.rangeEnd}" must sort after rangeStart "${p.rangeStart}" (the range is empty)`,
    );
  if (!Number.isInteger(p.replicas) || p.replicas < 1 || p.replicas > 99)
    throw bad('replicas', `must be an integer from 1 to 99, got ${String(p.replicas)}`);
}

/**
 * Checks every partition and that together they tile the tenant space exactly once. Returns the
 * partitions ordered by range. Throws DROVER_ERR_ARKTOS_* naming the partitions at fault.
 */
export function validatePartitions(ps: readonly Partition[]): Partition[] {
  if (!Array.isArray(ps) || ps.length === 0)
    throw arktosError('DROVER_ERR_ARKTOS_PARTITION', 'at least one data partition is required', {
      field: 'partitions',
    });
  ps.forEach(checkOne);
  for (const [key, label] of [
    [(p: Partition) => p.id, 'service group id'],
    [partitionName, 'name'],
  ] as const) {
    const seen = new Map<string, number>();
    ps.forEach((p, i) => {
      const k = key(p);
      if (seen.has(k))
        throw arktosError(
          'DROVER_ERR_ARKTOS_PARTITION',
          `partitions[${seen.get(k)}] and partitions[${i}] share the ${label} "${k}"`,
          { field: `partitions[${i}]`, partitions: [k] },
        );
      seen.set(k, i);
    });
  }
  const sorted = [...ps].sort((a, b) => {
    if (!a.isRangeStartValid || !b.isRangeStartValid)
      return Number(a.isRangeStartValid) - Number(b.isRangeStartValid);
    return compareTenants(a.rangeStart, b.rangeStart);
  });
  const first = sorted[0]!;
  if (first.isRangeStartValid)
    throw arktosError(
      'DROVER_ERR_ARKTOS_GAP',
      `tenants before "${first.rangeStart}" are served by no partition: ${describe(first)} is the lowest and its start is not open`,
      { partitions: [partitionName(first)], before: first.rangeStart },
    );
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1]!;
    const b = sorted[i]!;
    const overlap = (why: string) =>
      arktosError('DROVER_ERR_ARKTOS_OVERLAP', `${describe(a)} and ${describe(b)} overlap: ${why}`, {
        partitions: [partitionName(a), partitionName(b)],
      });
    if (!b.isRangeStartValid) throw overlap('both have an open start');
    if (!a.isRangeEndValid) throw overlap(`the first has an open end, so it also holds "${b.rangeStart}"`);
    const c = compareTenants(b.rangeStart, a.rangeEnd);
    if (c < 0) throw overlap(`tenants from "${b.rangeStart}" up to "${a.rangeEnd}" are in both`);
    if (c > 0)
      throw arktosError(
        'DROVER_ERR_ARKTOS_GAP',
        `tenants from "${a.rangeEnd}" up to "${b.rangeStart}" are served by no partition (between ${describe(a)} and ${describe(b)})`,
        { partitions: [partitionName(a), partitionName(b)], from: a.rangeEnd, to: b.rangeStart },
      );
  }
  const last = sorted[sorted.length - 1]!;
  if (last.isRangeEndValid)
    throw arktosError(
      'DROVER_ERR_ARKTOS_GAP',
      `tenants from "${last.rangeEnd}" on are served by no partition: ${describe(last)} is the highest and its end is not open`,
      { partitions: [partitionName(last)], from: last.rangeEnd },
    );
  return sorted;
}

/** The partition that serves `tenant` (after validating the set, so there is exactly one). */
export function resolveTenant(partitions: readonly Partition[], tenant: string): Partition {
  if (typeof tenant !== 'string' || tenant === '')
    throw arktosError('DROVER_ERR_ARKTOS_TENANT', 'tenant name must be a non-empty string');
  const sorted = validatePartitions(partitions);
  const hit = sorted.find((p) => partitionContains(p, tenant));
  // unreachable after validation: the partitions tile the whole space
  if (!hit) throw arktosError('DROVER_ERR_ARKTOS_GAP', `no partition serves tenant "${tenant}"`);
  return hit;
}

/** The environment an API server of this service group runs with (seed: `export APISERVER_SERVICEGROUPID=2`). */
export function serviceGroupEnv(p: Pick<Partition, 'id'>): { APISERVER_SERVICEGROUPID: string } {
  return { APISERVER_SERVICEGROUPID: p.id };
}

/** YAML double-quoted scalar (JSON string escapes are valid YAML escapes). */
function q(s: string): string {
  return JSON.stringify(s);
}

/** The DataPartitionConfig manifest, laid out exactly as the seed shows it. */
export function renderDataPartitionConfig(p: Partition): string {
  return [
    'apiVersion: v1',
    'kind: DataPartitionConfig',
    `serviceGroupId: ${q(p.id)}`,
    `rangeStart: ${q(p.rangeStart)}`,
    `isRangeStartValid: ${p.isRangeStartValid}`,
    `rangeEnd: ${q(p.rangeEnd)}`,
    `isRangeEndValid: ${p.isRangeEndValid}`,
    'metadata:',
    `  name: ${q(partitionName(p))}`,
    '',
  ].join('\n');
}

/** All partitions' manifests as one multi-document file for `kubectl apply -f`, in range order. */
export function renderDataPartitionConfigs(ps: readonly Partition[]): string {
  return validatePartitions(ps).map(renderDataPartitionConfig).join('---\n');
}
