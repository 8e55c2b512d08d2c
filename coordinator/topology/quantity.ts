const UNITS: Record<string, number> = {
  '': 1,
  K: 1e3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
};

/** Parses a Kubernetes-style byte quantity (`4Gi`, `512Mi`, `8G`, `1.5Gi`, `1073741824`); undefined if invalid. */
export function parseQuantity(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isInteger(v) && v >= 0 ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|Ti|Pi|K|k|M|G|T|P)?\s*$/.exec(v);
  if (!m) return undefined;
  return Math.round(Number(m[1]) * UNITS[m[2] ?? '']!);
}

/** `4294967296` → `4Gi`; exact binary multiples only, else bytes. */
export function formatBytes(n: number): string {
  for (const u of ['Pi', 'Ti', 'Gi', 'Mi', 'Ki'])
    if (n >= UNITS[u]! && n % UNITS[u]! === 0) return `${n / UNITS[u]!}${u}`;
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(1)}Gi`;
  return `${n}`;
}
