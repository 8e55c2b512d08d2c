/** kubectl-like columns: upper-case headers, left-aligned, three spaces between columns. */
export function formatTable(
  headers: string[],
  rows: Array<Array<string | number | undefined>>,
  opts: { noHeaders?: boolean } = {},
): string {
  const all = [
    ...(opts.noHeaders ? [] : [headers]),
    ...rows.map((r) => r.map((c) => (c === undefined || c === '' ? '<none>' : String(c)))),
  ];
  if (all.length === 0) return '';
  const widths = headers.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return `${all
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
        .join('   ')
        .trimEnd(),
    )
    .join('\n')}\n`;
}

/** `2m5s`, `3h`, `4d` like kubectl's AGE column. */
export function age(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '<never>';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${s % 60 ? `${s % 60}s` : ''}`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${m % 60 ? `${m % 60}m` : ''}`;
  return `${Math.floor(h / 24)}d`;
}
