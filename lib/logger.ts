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

/** One run of a work-queue key's reconcile: its id (unique in its queue) and the key. */
export interface ReconcileRef {
  readonly id: number;
  readonly key: string;
}

/**
 * `log` bound to one reconcile run (`{ reconcile: id, key }`): the work queue's run logger, and
 * any other part's logger for the lines it writes within that run (the repair policy, etcd
 * membership), so one query (`reconcile=42`) finds all of a run's lines, whichever part wrote them.
 */
export function reconcileLogger(log: Logger, run: ReconcileRef): Logger {
  return log.child({ reconcile: run.id, key: run.key });
}
