import { readFileSync } from 'node:fs';
import { ConfigError, describeOptions, readConfigFile, splitArgs } from '../lib/config.js';
import { createLogger } from '../lib/logger.js';
import { DROVER_VERSION } from '../lib/version.js';
import { type ClusterBackup, checkBackup, restoreBackup } from './backup.js';
import {
  NATS_CONFIG_FLAGS,
  NatsConfigUsageError,
  natsConfigRequest,
  runNatsConfig,
} from './bus/nats-config-cmd.js';
import { busDirOf, CoordinatorOptionsSchema, compileCoordinatorOptions } from './config.js';
import { coordinatorBus, startCoordinator } from './daemon.js';
import { snapshotBlobsFor } from './etcd/snapshot-blobs.js';
import { startHaCoordinator } from './ha/runner.js';
import { migrateStore, openConfiguredStore, type StoreBackend, storeChoice } from './store/open.js';

const DEFAULT_CONFIG = '/etc/drover/coordinator.yaml';

function help(): string {
  const rows = describeOptions(CoordinatorOptionsSchema).map(
    (o) => `  ${o.flag.padEnd(30)} ${o.env.padEnd(34)} ${o.description}`,
  );
  return `drover-coordinator ${DROVER_VERSION}: the Drover control-plane coordinator

Usage: drover-coordinator [--config FILE] [options]
       drover-coordinator migrate --from lowdb|jetstream --to jetstream|lowdb [--config FILE] [options]
       drover-coordinator restore-backup FILE [--config FILE] [options]
       drover-coordinator nats-config [--config FILE] [--listen 0.0.0.0:4222] [--monitor 127.0.0.1:8222]
                          [--tls-hosts HOST,IP,…] [--server-dir DIR] [--out FILE] [--server-name NAME]

nats-config writes the nats-server config for this coordinator's bus from its bus dir (bus.dir,
default <dataDir>/bus), making the operator, account and coordinator keys and the bus CA on the
first run: operator JWT with a full resolver, TLS with a certificate for --tls-hosts (default:
this host's name and addresses), limits. --server-dir (default <bus dir>/server) holds
nats-server's own files (certificate, key, resolver, JetStream), for a server that runs as
another user; --out defaults to <server dir>/nats-server.conf.

restore-backup rebuilds an empty data dir and store from a cluster backup (\`drover backup\`): the
PKI, the plan-signing key, the topology and the etcd snapshot, checked against its SHA-256 first.

migrate copies the state into the other store (which must be empty) and verifies the copy; run it
with the coordinator stopped, then set store.backend to the target.

Configuration comes from the YAML file (default ${DEFAULT_CONFIG}), then DROVER_* environment
variables, then flags; later sources win. Durations accept 2s, 500ms, 1m30s.

  --config FILE                  YAML config file
  --version                      print the version and exit
  --help                         print this help and exit
Options (flag, environment variable, meaning):
${rows.join('\n')}
`;
}

/** Reads the coordinator config (`--config`, env) the way the daemon does. */
function loadOptions(flags: Record<string, string | boolean>): ReturnType<typeof compileCoordinatorOptions> {
  const configPath = typeof flags.config === 'string' ? flags.config : DEFAULT_CONFIG;
  delete flags.config;
  return compileCoordinatorOptions({
    file: readConfigFile(configPath, configPath !== DEFAULT_CONFIG),
    env: process.env,
    flags,
  });
}

/** `drover-coordinator nats-config [--listen H:P] [--tls-hosts a,b] [--server-dir D] [--out F]` */
async function natsConfig(flags: Record<string, string | boolean>): Promise<number> {
  const own: Record<string, string | boolean> = {};
  const rest: Record<string, string | boolean> = {};
  for (const [k, v] of Object.entries(flags)) (NATS_CONFIG_FLAGS.includes(k) ? own : rest)[k] = v;
  try {
    const opts = loadOptions(rest);
    const busDir = busDirOf(opts);
    const req = natsConfigRequest(own, busDir);
    const bus = await runNatsConfig(req, { dir: busDir, tls: opts.bus.tls });
    process.stdout.write(
      [
        `wrote ${bus.configFile} (nats-server on ${req.listen}, monitor ${req.monitor})`,
        `bus keys and creds: ${busDir} (the coordinator's; keep it private)`,
        `nats-server's files: ${req.serverDir}`,
        bus.tls
          ? `TLS: the server certificate names ${req.tlsHosts.join(', ')}; agents verify it against ${bus.tls.caFile} (join tokens carry it)`
          : 'TLS: OFF (bus.tls is false): agents and the coordinator talk in clear text',
        `start it with: nats-server -c ${bus.configFile}`,
        '',
      ].join('\n'),
    );
    return 0;
  } catch (err) {
    if (err instanceof ConfigError || err instanceof NatsConfigUsageError) {
      process.stderr.write(`drover-coordinator nats-config: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`drover-coordinator nats-config: ${(err as Error).message}\n`);
    return 1;
  }
}

const BACKENDS = ['lowdb', 'jetstream'] as const;

/**
 * `drover-coordinator migrate --from lowdb --to jetstream` (or back): copies the state into the
 * other store, which must be empty, and verifies the copy. Run it with the coordinator stopped;
 * then set `store.backend` to the target and start it.
 */
async function migrate(flags: Record<string, string | boolean>): Promise<number> {
  const { from, to, ...rest } = flags;
  const bad = (msg: string) => {
    process.stderr.write(`drover-coordinator migrate: ${msg}\n`);
    return 2;
  };
  const isBackend = (v: unknown): v is StoreBackend =>
    typeof v === 'string' && (BACKENDS as readonly string[]).includes(v);
  if (!isBackend(from))
    return bad(`--from must be one of ${BACKENDS.join(', ')} (got ${JSON.stringify(from ?? null)})`);
  if (!isBackend(to))
    return bad(`--to must be one of ${BACKENDS.join(', ')} (got ${JSON.stringify(to ?? null)})`);
  if (from === to) return bad(`--from and --to are both ${from}: nothing to migrate`);
  let opts: ReturnType<typeof compileCoordinatorOptions>;
  try {
    opts = loadOptions(rest);
  } catch (err) {
    if (err instanceof ConfigError) return bad(`invalid configuration: ${err.message}`);
    throw err;
  }
  const { natsSettings } = await coordinatorBus(opts);
  const choice = (backend: StoreBackend) => storeChoice(opts, natsSettings, { backend });
  const opened: Array<Awaited<ReturnType<typeof openConfiguredStore>>> = [];
  try {
    const source = await openConfiguredStore(choice(from));
    opened.push(source);
    const target = await openConfiguredStore(choice(to));
    opened.push(target);
    const r = await migrateStore(source, target);
    process.stdout.write(
      `copied ${r.keys} key(s) from ${r.from} to ${r.to} and verified them${r.events ? `, and ${r.events} event(s) of its event stream` : ''}; the source is unchanged\nnext: set store.backend: ${to} in the coordinator's config and start it\n`,
    );
    return 0;
  } catch (err) {
    process.stderr.write(`drover-coordinator migrate: ${(err as Error).message}\n`);
    return 1;
  } finally {
    for (const o of opened.reverse()) await o.close().catch(() => {});
  }
}

/**
 * `drover-coordinator restore-backup FILE`: rebuilds this coordinator's data dir and store from a
 * cluster backup (`drover backup`), checked first; both must be empty. Then start the coordinator:
 * agents keep the plan-signing key they pinned, nodes their certificates.
 */
async function restoreBackupCmd(file: string, flags: Record<string, string | boolean>): Promise<number> {
  const fail = (msg: string, code = 1) => {
    process.stderr.write(`drover-coordinator restore-backup: ${msg}\n`);
    return code;
  };
  let backup: ClusterBackup;
  try {
    backup = checkBackup(JSON.parse(readFileSync(file, 'utf8')));
  } catch (err) {
    return fail(`${file}: ${(err as Error).message}`, 2);
  }
  let opts: ReturnType<typeof compileCoordinatorOptions>;
  try {
    opts = loadOptions(flags);
  } catch (err) {
    if (err instanceof ConfigError) return fail(`invalid configuration: ${err.message}`, 2);
    throw err;
  }
  const { natsSettings } = await coordinatorBus(opts);
  const opened = await openConfiguredStore(storeChoice(opts, natsSettings));
  try {
    const r = await restoreBackup(backup, opts.dataDir, opened.store, await snapshotBlobsFor(opened, opts));
    process.stdout.write(
      `restored the backup of cluster ${backup.cluster} (made ${backup.createdAt}) into ${opts.dataDir} and ${opened.describe}: ${r.files} key and certificate file(s), the topology, etcd snapshot ${backup.snapshot.record.id} (revision ${backup.snapshot.record.revision})\nnext: start the coordinator; restore etcd from that snapshot (docs/operations.md, "Backups")\n`,
    );
    return 0;
  } catch (err) {
    return fail((err as Error).message);
  } finally {
    await opened.close().catch(() => {});
  }
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
  if (positionals[0] === 'nats-config' && positionals.length === 1) return natsConfig(flags);
  if (positionals[0] === 'migrate' && positionals.length === 1) return migrate(flags);
  if (positionals[0] === 'restore-backup') {
    if (positionals.length !== 2) {
      process.stderr.write('drover-coordinator restore-backup: give one FILE (from `drover backup`)\n');
      return 2;
    }
    return restoreBackupCmd(positionals[1]!, flags);
  }
  if (positionals.length) {
    process.stderr.write(
      `drover-coordinator: unexpected argument ${JSON.stringify(positionals[0])}; see --help\n`,
    );
    return 2;
  }
  let opts: ReturnType<typeof compileCoordinatorOptions>;
  try {
    opts = loadOptions(flags);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`drover-coordinator: invalid configuration: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const log = createLogger({ name: 'drover-coordinator', level: opts.logLevel });
  let handle: { close(): Promise<void> };
  try {
    // coordinator HA: follow, lead when elected (coordinator/ha/runner.ts); else the single coordinator
    handle = opts.ha.enabled ? await startHaCoordinator(opts, log) : await startCoordinator(opts, log);
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
