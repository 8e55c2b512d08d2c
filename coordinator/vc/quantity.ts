/**
 * Kubernetes resource quantities (`100m`, `1`, `0.5`, `100Mi`, `1Gi`, `500M`, `1e3`), parsed
 * exactly with BigInt rationals so `0.1` CPU is 100 millicores, not 100.00000000000001. Like
 * Kubernetes, values round *up* to the unit (1m CPU, 1 byte).
 */
import { vcError } from './errors.js';

const DECIMAL: Record<string, number> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
const BINARY: Record<string, number> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 };
const RE = /^(\d+(?:\.\d*)?|\.\d+)(?:[eE]([+-]?\d+))?(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$/;

interface Rational {
  num: bigint;
  den: bigint;
  suffix: string;
}

function parse(what: string, q: string | number): Rational {
  if (typeof q === 'number') {
    if (!Number.isFinite(q) || q < 0)
      throw vcError('DROVER_ERR_VC_QUANTITY', `${what} ${q} must be a finite number >= 0`);
    q = String(q);
  }
  if (typeof q !== 'string')
    throw vcError('DROVER_ERR_VC_QUANTITY', `${what} must be a string like "100m" or "1Gi"`);
  const m = RE.exec(q.trim());
  if (!m)
    throw vcError(
      'DROVER_ERR_VC_QUANTITY',
      `${what} "${q}" is not a Kubernetes quantity (examples: 100m, 1, 0.5, 100Mi, 1Gi, 500M)`,
      { quantity: q },
    );
  const [int, frac = ''] = m[1]!.split('.');
  let num = BigInt(`${int || '0'}${frac}` || '0');
  let den = 10n ** BigInt(frac.length);
  const suffix = m[3] ?? '';
  let exp10 = Number(m[2] ?? 0);
  if (suffix in BINARY) num *= 1n << BigInt(BINARY[suffix]!);
  else exp10 += DECIMAL[suffix]!;
  if (Math.abs(exp10) > 30)
    throw vcError('DROVER_ERR_VC_QUANTITY', `${what} "${q}" is out of range`, { quantity: q });
  if (exp10 >= 0) num *= 10n ** BigInt(exp10);
  else den *= 10n ** BigInt(-exp10);
  return { num, den, suffix };
}

function ceilDiv(a: bigint, b: bigint): bigint {
  return (a + b - 1n) / b;
}

function toSafe(what: string, q: string | number, v: bigint): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER))
    throw vcError('DROVER_ERR_VC_QUANTITY', `${what} "${q}" is too large`);
  return Number(v);
}

/** CPU in millicores: `"100m"` → 100, `"1"` → 1000, `"0.5"` → 500, `2` → 2000. */
export function parseCpuMilli(q: string | number, what = 'cpu'): number {
  const r = parse(what, q);
  if (r.suffix in BINARY)
    throw vcError(
      'DROVER_ERR_VC_QUANTITY',
      `${what} "${q}": CPU takes a decimal suffix (m) or none, not ${r.suffix}`,
    );
  return toSafe(what, q, ceilDiv(r.num * 1000n, r.den));
}

/** Memory in bytes: `"100Mi"` → 104857600, `"1Gi"`, `"500M"` → 500000000, `"1e3"` → 1000. */
export function parseMemoryBytes(q: string | number, what = 'memory'): number {
  const r = parse(what, q);
  if (r.suffix === 'm' || r.suffix === 'u' || r.suffix === 'n')
    throw vcError(
      'DROVER_ERR_VC_QUANTITY',
      `${what} "${q}" is a fraction of a byte (suffix ${r.suffix}); did you mean ${String(q).replace(/[mun]$/, 'Mi')}?`,
      { quantity: q },
    );
  return toSafe(what, q, ceilDiv(r.num, r.den));
}

const MI = 1024 * 1024;
/** Formats millicores and bytes the way Kubernetes users write them (for messages and annotations). */
export function formatCpu(milli: number): string {
  return milli % 1000 === 0 ? String(milli / 1000) : `${milli}m`;
}
export function formatMemory(bytes: number): string {
  if (bytes % (1024 * MI) === 0) return `${bytes / (1024 * MI)}Gi`;
  if (bytes % MI === 0) return `${bytes / MI}Mi`;
  if (bytes % 1024 === 0) return `${bytes / 1024}Ki`;
  return String(bytes);
}

/**
 * Human units for tables and messages (exact quantities stay in JSON): CPU in cores with up to
 * two decimals (`3.5`, `0.25`), memory in the largest binary unit with one decimal (`46.6Gi`).
 */
export function humanCpu(milli: number): string {
  const cores = Math.round(milli / 10) / 100;
  return String(cores);
}
export function humanMemory(bytes: number): string {
  const units = ['Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'];
  if (Math.abs(bytes) < 1024) return `${bytes}B`;
  let v = bytes;
  let u = -1;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  const r = Math.round(v * 10) / 10;
  // 1023.96Mi rounds to 1024.0: say 1Gi instead
  if (Math.abs(r) >= 1024 && u < units.length - 1)
    return `${Math.round((v / 1024) * 10) / 10}${units[u + 1]}`;
  return `${r}${units[u]}`;
}
