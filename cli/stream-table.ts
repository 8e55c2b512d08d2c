/**
 * A table printed a few rows at a time (`events --watch`, `get nodes --watch`): the widths are set
 * by the header, the first rows and `minWidths` (room for the usual values: `Ready,Cordoned`,
 * `role.unschedulable`), then kept, so later rows line up under the header. A later cell wider
 * than its column pushes only its own row out of line, never the rows after it.
 */
export class StreamTable {
  private readonly widths: number[];
  private headerDone: boolean;
  private sized = false;

  constructor(
    private readonly headers: string[],
    opts: { noHeaders?: boolean; minWidths?: number[] } = {},
  ) {
    this.widths = headers.map((h, i) => Math.max(opts.noHeaders ? 0 : h.length, opts.minWidths?.[i] ?? 0));
    this.headerDone = !!opts.noHeaders;
  }

  /** The text for the next rows (with the header before the first ones). */
  rows(rows: Array<Array<string | number | undefined>>): string {
    const cells = rows.map((r) => r.map((c) => (c === undefined || c === '' ? '<none>' : String(c))));
    if (!this.sized)
      for (const r of cells)
        r.forEach((c, i) => {
          this.widths[i] = Math.max(this.widths[i] ?? 0, c.length);
        });
    this.sized ||= cells.length > 0;
    const all = this.headerDone ? cells : [this.headers, ...cells];
    this.headerDone = true;
    return all
      .map(
        (r) =>
          `${r
            .map((c, i) => (i === r.length - 1 ? c : c.padEnd(this.widths[i]!)))
            .join('   ')
            .trimEnd()}\n`,
      )
      .join('');
  }
}
