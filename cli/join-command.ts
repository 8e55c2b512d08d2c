import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { compileCoordinatorOptions } from '../coordinator/config.js';
import {
  agentNatsUrls,
  defaultHostAddresses,
  formatJoinCommand,
  type JoinCommandParts,
  shellQuote,
} from '../coordinator/join-info.js';
import { ConfigError, readConfigFile, splitArgs } from '../lib/config.js';
import { signingKeyFromPem } from '../protocol/index.js';
import { ApiClient } from './client.js';
import { CliError } from './errors.js';
import { resolveSettings, type Settings } from './settings.js';

export { formatJoinCommand, type JoinCommandParts, shellQuote };

/**
 * `drover join-command`: prints the one-liner that joins a host to this coordinator's fleet,
 * `drover-agent join --server nats://… --token … [--ca …] [--coordinator-key-fingerprint …]`.
 *
 * Where it gets what it needs:
 * - with `--coordinator-config FILE`, or when the CLI has no server configured, from what the
 *   coordinator itself uses (its config and plan-signing key, with `--token` from
 *   `drover token create --join`; default
 *   /etc/drover/coordinator.yaml): on the coordinator host, as root or a member of the `drover`
 *   group;
 * - when the CLI has a server (DROVER_CONFIG, DROVER_URL or ~/.config/drover/config.yaml, as the
 *   lab's drover.yaml sets), from the API (`GET /v1/join-command`, an admin token), from anywhere.
 */

export const DEFAULT_COORDINATOR_CONFIG = '/etc/drover/coordinator.yaml';

export const JOIN_COMMAND_USAGE = `Usage: drover join-command [--coordinator-config FILE] [--server URL] [--token TOKEN] [--ca FILE]

Prints the command that joins a host to this coordinator's fleet; run it as root on the new host.

When the CLI has a server configured (DROVER_CONFIG, DROVER_URL, or server: in
~/.config/drover/config.yaml; the lab's drover.yaml sets it), it asks the coordinator's API
(an admin token). Otherwise, or with --coordinator-config, it reads the coordinator's own
config and signing key on this host (root or the drover group) and needs --token.
Via the API, each call makes a fresh join token: one host, valid 24h.

Options:
  --coordinator-config FILE  the coordinator's config (default ${DEFAULT_COORDINATOR_CONFIG});
                             --config FILE is an old, deprecated spelling of it
  --server URL    NATS URL(s) agents should use (default: the coordinator's own nats.servers,
                  with a loopback host replaced by this host's first non-loopback address, or
                  via the API by the address the API was reached at)
  --token TOKEN   join token to print (from drover token create --join; via the API a fresh
                  single-use 24h token is made when it is not given)
  --ca FILE       CA file for the agent's --ca (default: nats.tls.ca)
  --help          print this help

Example:
  export DROVER_CONFIG=/tmp/drover-lab/drover.yaml; drover join-command
  sudo drover join-command --coordinator-config /etc/drover/coordinator.yaml
`;

export interface JoinCommandOptions {
  /** coordinator config file; default /etc/drover/coordinator.yaml (a missing default file is fine) */
  configFile?: string;
  /** NATS URL(s) for agents, comma-separated; default from the config */
  server?: string;
  token?: string;
  caFile?: string;
  /** DROVER_* overrides, as the coordinator would see them; default process.env */
  env?: Record<string, string | undefined>;
  /** this host's addresses, to replace a loopback NATS host; default os.networkInterfaces() */
  hostAddresses?: () => string[];
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
}

class JoinCommandError extends Error {
  override name = 'JoinCommandError';
}

function readSecretFile(path: string, what: string, hint: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim() || undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'EACCES')
      throw new JoinCommandError(`cannot read the ${what} ${path}: permission denied (${hint})`);
    throw new JoinCommandError(`cannot read the ${what} ${path}: ${(err as Error).message}`);
  }
}

/** Prints the join one-liner; returns the exit code (0 printed, 1 missing data, 2 bad config/flags). */
export async function runJoinCommand(opts: JoinCommandOptions = {}): Promise<number> {
  const out = opts.stdout ?? ((t: string) => process.stdout.write(t));
  const err = opts.stderr ?? ((t: string) => process.stderr.write(t));
  const configFile = opts.configFile ?? DEFAULT_COORDINATOR_CONFIG;
  const access = 'run it as root, or as a member of the drover group';
  try {
    let file: { path: string; text: string } | undefined;
    try {
      file = readConfigFile(configFile, opts.configFile !== undefined);
    } catch (e) {
      if (/EACCES|permission denied/i.test((e as Error).message))
        throw new JoinCommandError(`cannot read ${configFile}: permission denied (${access})`);
      throw e;
    }
    const cfg = compileCoordinatorOptions({ file, env: opts.env ?? process.env });

    let natsUrl = opts.server;
    for (const s of natsUrl?.split(',') ?? []) {
      let scheme = '';
      try {
        scheme = new URL(s.trim()).protocol;
      } catch {}
      if (!['nats:', 'tls:', 'ws:', 'wss:'].includes(scheme))
        throw new ConfigError(
          '--server',
          '',
          `${JSON.stringify(s)} is not a nats://, tls://, ws:// or wss:// URL`,
        );
    }
    if (!natsUrl) {
      try {
        natsUrl = agentNatsUrls(cfg.nats.servers, (opts.hostAddresses ?? defaultHostAddresses)(), (t) =>
          err(`note: ${t}\n`),
        );
      } catch (e) {
        throw new JoinCommandError((e as Error).message);
      }
    }

    // join tokens are made by the running coordinator (it holds the bus keys and the store)
    const token = opts.token;
    if (!token)
      throw new JoinCommandError(
        'reading the coordinator config, this command cannot make a join token (the running coordinator makes them): ' +
          'create one with `drover token create --join` and pass it with --token, or run `drover join-command` with DROVER_URL set (it asks the API, which makes one)',
      );

    let fingerprint: string | undefined;
    const keyFile = join(cfg.dataDir, 'plan-signing-key.pem');
    const pem = readSecretFile(keyFile, 'plan-signing key', access);
    if (!pem)
      throw new JoinCommandError(
        `${keyFile} does not exist yet: start drover-coordinator once (it creates its plan-signing key), since the agent must pin its fingerprint at join`,
      );
    try {
      fingerprint = signingKeyFromPem(pem).fingerprint;
    } catch (e) {
      throw new JoinCommandError(`${keyFile}: ${(e as Error).message}`);
    }

    const caFile = opts.caFile ?? cfg.nats.tls?.ca;
    out(
      `${formatJoinCommand({ natsUrl, joinToken: token, caFile, coordinatorKeyFingerprint: fingerprint })}\n`,
    );
    if (caFile) err(`note: copy ${caFile} to the same path on the new host first\n`);
    return 0;
  } catch (e) {
    if (e instanceof ConfigError) {
      err(`drover join-command: ${e.message}\n`);
      return 2;
    }
    if (e instanceof JoinCommandError) {
      err(`drover join-command: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

/** What `GET /v1/join-command` answers. */
interface JoinCommandView extends JoinCommandParts {
  command: string;
  notes: string[];
}

/** The join one-liner from the coordinator's API; `--server`, `--token` and `--ca` still win. */
export async function runJoinCommandViaApi(
  settings: Settings,
  opts: Pick<JoinCommandOptions, 'server' | 'token' | 'caFile'> & {
    stdout: (t: string) => void;
    stderr: (t: string) => void;
  },
): Promise<number> {
  const client = new ApiClient(settings);
  try {
    const v = await client.get<JoinCommandView>('/v1/join-command');
    const parts = {
      natsUrl: opts.server ?? v.natsUrl,
      joinToken: opts.token ?? v.joinToken,
      caFile: opts.caFile ?? v.caFile,
      coordinatorKeyFingerprint: v.coordinatorKeyFingerprint,
    };
    for (const n of v.notes) if (!(opts.server && /loopback/.test(n))) opts.stderr(`note: ${n}\n`);
    opts.stdout(`${formatJoinCommand(parts)}\n`);
    return 0;
  } catch (e) {
    if (!(e instanceof CliError)) throw e;
    opts.stderr(
      `drover join-command: ${e.message} (asked ${settings.server}, from ${settings.source.server})\n`,
    );
    opts.stderr(
      `  hint: ${e.hint ?? 'check the CLI config'}; on the coordinator host, \`drover join-command --coordinator-config ${DEFAULT_COORDINATOR_CONFIG}\` reads the coordinator's files instead\n`,
    );
    return e.exitCode;
  }
}

/** `drover join-command [flags]` from argv (after the command word). */
export async function joinCommandMain(
  argv: string[],
  io: Pick<JoinCommandOptions, 'stdout' | 'stderr'> & { env?: NodeJS.ProcessEnv } = {},
) {
  const err = io.stderr ?? ((t: string) => process.stderr.write(t));
  const out = io.stdout ?? ((t: string) => process.stdout.write(t));
  const { positionals, flags } = splitArgs(argv, new Set(['help']));
  if (flags.help) {
    out(JOIN_COMMAND_USAGE);
    return 0;
  }
  const known = new Set(['coordinator-config', 'config', 'server', 'token', 'ca']);
  for (const [name, v] of Object.entries(flags)) {
    if (!known.has(name)) {
      err(`drover join-command: unknown option --${name} (see drover join-command --help)\n`);
      return 2;
    }
    if (typeof v !== 'string' || v === '') {
      err(`drover join-command: --${name} needs a value\n`);
      return 2;
    }
  }
  if (positionals.length > 0) {
    err(`drover join-command: unexpected argument ${JSON.stringify(positionals[0])}\n`);
    return 2;
  }
  if (flags.config !== undefined && flags['coordinator-config'] !== undefined) {
    err('drover join-command: pass --coordinator-config only (--config is its old, deprecated name)\n');
    return 2;
  }
  if (flags.config !== undefined)
    err(
      "drover join-command: warning: --config is deprecated here (it is the coordinator's config, unlike drover's global --config); use --coordinator-config\n",
    );
  const coordinatorConfig = (flags['coordinator-config'] ?? flags.config) as string | undefined;
  const pick = {
    server: flags.server as string | undefined,
    token: flags.token as string | undefined,
    caFile: flags.ca as string | undefined,
  };
  if (coordinatorConfig === undefined) {
    // the CLI knows a coordinator (the lab's drover.yaml, DROVER_URL): ask its API
    let settings: Settings | undefined;
    try {
      settings = resolveSettings({ flags: {}, env: io.env ?? process.env });
    } catch (e) {
      if (!(e instanceof CliError)) throw e;
      err(`drover join-command: ${e.message}\n`);
      return e.exitCode;
    }
    if (settings.source.server !== 'default')
      return runJoinCommandViaApi(settings, { ...pick, stdout: out, stderr: err });
  }
  return runJoinCommand({ configFile: coordinatorConfig, ...pick, ...io });
}
