import { ConfigError, describeOptions, readConfigFile, splitArgs } from '../lib/config.js';
import { createLogger } from '../lib/logger.js';
import { DROVER_VERSION } from '../lib/version.js';
import { CoordinatorOptionsSchema, compileCoordinatorOptions } from './config.js';
import { startCoordinator } from './daemon.js';

const DEFAULT_CONFIG = '/etc/drover/coordinator.yaml';

function help(): string {
  const rows = describeOptions(CoordinatorOptionsSchema).map(
    (o) => `  ${o.flag.padEnd(30)} ${o.env.padEnd(34)} ${o.description}`,
  );
  return `drover-coordinator ${DROVER_VERSION}: the Drover control-plane coordinator

Usage: drover-coordinator [--config FILE] [options]

Configuration comes from the YAML file (default ${DEFAULT_CONFIG}), then DROVER_* environment
variables, then flags; later sources win. Durations accept 2s, 500ms, 1m30s.

  --config FILE                  YAML config file
  --version                      print the version and exit
  --help                         print this help and exit
Options (flag, environment variable, meaning):
${rows.join('\n')}
`;
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  if (argv.includes('--version')) {
    process.stdout.write(`drover-coordinator ${DROVER_VERSION}\n`);
    return 0;
  }
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(help());
    return 0;
  }
  const { positionals, flags } = splitArgs(argv);
  if (positionals.length) {
    process.stderr.write(
      `drover-coordinator: unexpected argument ${JSON.stringify(positionals[0])}; see --help\n`,
    );
    return 2;
  }
  const configPath = typeof flags.config === 'string' ? flags.config : DEFAULT_CONFIG;
  delete flags.config;
  let opts: ReturnType<typeof compileCoordinatorOptions>;
  try {
    opts = compileCoordinatorOptions({
      file: readConfigFile(configPath, configPath !== DEFAULT_CONFIG),
      env: process.env,
      flags,
    });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`drover-coordinator: invalid configuration: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const log = createLogger({ name: 'drover-coordinator', level: opts.logLevel });
  let handle: Awaited<ReturnType<typeof startCoordinator>>;
  try {
    handle = await startCoordinator(opts, log);
  } catch (err) {
    log.fatal({ err }, 'cannot start');
    process.stderr.write(`drover-coordinator: cannot start: ${(err as Error).message}\n`);
    return 1;
  }
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      log.info({ signal: sig }, 'shutting down');
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  await handle.close();
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`drover-coordinator: ${(err as Error).stack ?? err}\n`);
    process.exitCode = 1;
  },
);
