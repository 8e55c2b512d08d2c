/**
 * `drover lab …`: placeholder until the lab engineer's implementation replaces this file. It
 * exists so the CLI's `lab` hook builds and says plainly that nothing happens yet.
 */
export async function runLab(argv: string[]): Promise<number> {
  process.stderr.write(`drover lab${argv.length ? ` ${argv.join(' ')}` : ''}: not implemented yet\n`);
  return 2;
}
