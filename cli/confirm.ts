import { createInterface } from 'node:readline/promises';
import { isatty } from 'node:tty';

/**
 * Asks on the terminal before a destructive command (`drover delete topology NAME`). Undefined
 * when stdin or stderr is not a terminal: such a command then needs `--yes`. It checks the file
 * descriptors, not `process.stdin`: touching that stream makes a piped stdin non-blocking, and
 * `drover apply -f -` then fails to read it (EAGAIN).
 */
export function terminalConfirm(): ((question: string) => Promise<boolean>) | undefined {
  if (!isatty(0) || !isatty(2)) return undefined;
  return async (question) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    try {
      const answer = await rl.question(`${question} [y/N] `);
      return /^y(es)?$/i.test(answer.trim());
    } finally {
      rl.close();
    }
  };
}
