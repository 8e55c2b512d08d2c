import { createInterface } from 'node:readline/promises';

/**
 * Asks on the terminal before a destructive command (`drover delete topology NAME`). Undefined
 * when stdin or stderr is not a terminal: such a command then needs `--yes`.
 */
export function terminalConfirm(
  proc: Pick<NodeJS.Process, 'stdin' | 'stderr'> = process,
): ((question: string) => Promise<boolean>) | undefined {
  if (!proc.stdin.isTTY || !proc.stderr.isTTY) return undefined;
  return async (question) => {
    const rl = createInterface({ input: proc.stdin, output: proc.stderr });
    try {
      const answer = await rl.question(`${question} [y/N] `);
      return /^y(es)?$/i.test(answer.trim());
    } finally {
      rl.close();
    }
  };
}
