import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

export interface LoggerOptions {
  level?: string;
  name: string;
  /** write to this fd or path instead of stdout */
  destination?: string | number;
}

/** Daemons get JSON logs; library code takes a Logger and never calls console. */
export function createLogger(opts: LoggerOptions): Logger {
  const dest = pino.destination({ dest: opts.destination ?? 1, sync: false });
  return pino(
    {
      name: opts.name,
      level: opts.level ?? process.env.DROVER_LOG_LEVEL ?? 'info',
      redact: {
        paths: [
          'token',
          'joinToken',
          '*.token',
          '*.joinToken',
          'authorization',
          '*.authorization',
          'password',
          '*.password',
        ],
        censor: '[redacted]',
      },
    },
    dest,
  );
}

/** A logger that drops everything: the default for library code under test. */
export const silentLogger: Logger = pino({ level: 'silent' });

/**
 * The binding key both daemons name their parts with (`{"component":"engine"}`), so one query
 * (`component=repair`) finds a part's lines in the agent's and the coordinator's logs alike.
 */
export const COMPONENT_KEY = 'component';

/** A child logger for one part of a daemon: `componentLogger(log, 'engine')`. */
export function componentLogger(
  log: Logger,
  component: string,
  bindings: Record<string, unknown> = {},
): Logger {
  return log.child({ ...bindings, [COMPONENT_KEY]: component });
}
