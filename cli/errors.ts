/** Exit codes scripts can rely on (docs/cli.md lists them). */
export const EXIT = {
  OK: 0,
  /** the server refused or failed the operation, or could not be reached */
  FAILED: 1,
  /** bad command line or invalid input file */
  USAGE: 2,
  /** the node, role, instance, task or token does not exist */
  NOT_FOUND: 3,
  /** no token, a wrong token, or a token whose role may not do this */
  UNAUTHORIZED: 4,
  /** --wait gave up before the operation finished */
  TIMEOUT: 5,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error the CLI prints as `drover: <message>` (plus a hint) before exiting with `exitCode`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
    readonly hint?: string,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export function usage(message: string, hint = 'see `drover --help`'): CliError {
  return new CliError(message, EXIT.USAGE, hint);
}

export function exitForStatus(status: number): ExitCode {
  if (status === 404) return EXIT.NOT_FOUND;
  if (status === 401 || status === 403 || status === 429) return EXIT.UNAUTHORIZED;
  if (status === 400 || status === 413 || status === 415) return EXIT.USAGE;
  return EXIT.FAILED;
}
