/** Widest free-text cell (REASONS, FIRST REASON) in table output; `-o wide` and json show all. */
export const REASON_WIDTH = 60;

/** `text` cut to `width` characters, the last one an ellipsis when it was cut. */
export function truncate(text: string, width: number): string {
  const chars = [...text];
  return chars.length <= width ? text : `${chars.slice(0, Math.max(1, width - 1)).join('')}…`;
}
