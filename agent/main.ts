import { splitArgs } from '../lib/config.js';
import { createLogger } from '../lib/logger.js';
import { DROVER_VERSION } from '../lib/version.js';
import { Agent } from './agent.js';
import { AgentError } from './errors.js';
import {
  type AgentOptions,
  compileAgentOptions,
  DEFAULT_CONFIG_FILE,
  describeAgentOptions,
} from './options.js';

function help(): string {
  const rows = describeAgentOptions();
  const width = Math.max(...rows.map((r) => r.flag.length)) + 2;
  const envWidth = Math.max(...rows.map((r) => r.env.length)) + 2;
  return [
    `drover-agent ${DROVER_VERSION}: the Drover node daemon`,
    '',
    'Usage:',
    '  drover-agent [--config FILE] [options]   run the agent',
    '  drover-agent join [args]                  join this host to a cluster',
    '  drover-agent --version | --help',
    '',
    `Options come from the YAML file (default ${DEFAULT_CONFIG_FILE}), then DROVER_* environment`,
    'variables, then flags, each overriding the one before. Durations take 500ms, 2s, 1m30s.',
    '',
    `  ${'--config FILE'.padEnd(width)}${''.padEnd(envWidth)}YAML config file`,
    ...rows.map((r) => `  ${r.flag.padEnd(width)}${r.env.padEnd(envWidth)}${r.description}`),
    `  ${'--version'.padEnd(width)}${''.padEnd(envWidth)}print the version and exit`,
    `  ${'--help'.padEnd(width)}${''.padEnd(envWidth)}print this help and exit`,
    '',
    'Signals: SIGTERM/SIGINT stop the agent (roles keep running unless --stop-roles-on-exit);',
    'SIGHUP reloads the config and refreshes facts.',
    '',
  ].join('\n');
}

function compile(argv: string[]): AgentOptions {
  const { positionals, flags } = splitArgs(argv);
  if (positionals.length) {
    throw new AgentError('DROVER_ERR_CONFIG', `unexpected argument ${JSON.stringify(positionals[0])}`);
  }
  const configFile = typeof flags.config === 'string' ? flags.config : undefined;
  if (flags.config === true) throw new AgentError('DROVER_ERR_CONFIG', 'flags: --config needs a file');
  delete flags.config;
  return compileAgentOptions({ configFile, env: process.env, flags });
}

async function runDaemon(argv: string[]): Promise<void> {
  let opts: AgentOptions;
  try {
    opts = compile(argv);
  } catch (err) {
    process.stderr.write(`drover-agent: ${(err as Error).message}\n`);
    process.exitCode = 2;
    return;
  }
  const log = createLogger({ name: 'drover-agent', level: opts.logLevel });
  const agent = new Agent(opts, { logger: log });
  // systemClock timers are unref'd; this keeps the process alive until a signal stops it.
  const keepAlive = setInterval(() => {}, 1 << 30);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    agent
      .close()
      .catch((err) => log.error({ err }, 'close failed'))
      .finally(() => {
        clearInterval(keepAlive);
        log.flush?.();
        setTimeout(() => process.exit(0), 50).unref();
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    let next: AgentOptions;
    try {
      next = compile(argv);
    } catch (err) {
      log.error(
        { err: (err as Error).message },
        'reload refused: config is invalid; keeping the running config',
      );
      return;
    }
    agent.reload(next).catch((err) => log.error({ err }, 'reload failed'));
  });
  process.on('uncaughtException', (err) => log.error({ err }, 'uncaught exception'));
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));
  try {
    await agent.start();
  } catch (err) {
    log.error({ err }, 'agent failed to start');
    clearInterval(keepAlive);
    await agent.close().catch(() => {});
    log.flush?.();
    process.exitCode = 1;
  }
}

async function main(argv: string[]): Promise<void> {
  if (argv[0] === 'join') {
    const mod = (await import('./join.js')) as {
      runJoin: (args: string[]) => Promise<number | undefined> | Promise<void>;
    };
    const code = await mod.runJoin(argv.slice(1));
    if (typeof code === 'number') process.exitCode = code;
    return;
  }
  if (argv.includes('--version')) {
    process.stdout.write(`drover-agent ${DROVER_VERSION}\n`);
    return;
  }
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(help());
    return;
  }
  await runDaemon(argv);
}

await main(process.argv.slice(2));
