import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { ConfigError, readConfigFile, splitArgs } from '../../lib/config.js';
import { signingKeyFromPem } from '../../protocol/index.js';
import { compileCoordinatorOptions } from '../config.js';

/**
 * `drover join-command`: prints the one-liner that joins a host to this coordinator's fleet,
 * `drover-agent join --server nats://… --token … [--ca …] [--coordinator-key-fingerprint …]`.
 * It reads what the coordinator itself uses (its config, join token and plan-signing key), so it
 * runs on the coordinator host as root or as a member of the `drover` group.
 */

export const DEFAULT_COORDINATOR_CONFIG = '/etc/drover/coordinator.yaml';

export const JOIN_COMMAND_USAGE = `Usage: drover join-command [--config FILE] [--server URL] [--token TOKEN] [--ca FILE]

Prints the command that joins a host to this coordinator's fleet; run it as root on the new host.

Options:
  --config FILE   coordinator config (default ${DEFAULT_COORDINATOR_CONFIG})
  --server URL    NATS URL(s) agents should use (default: the coordinator's own nats.servers,
                  with a loopback host replaced by this host's first non-loopback address)
  --token TOKEN   join token to print (default: joinToken, joinTokenFile or <dataDir>/join-token)
  --ca FILE       CA file for the agent's --ca (default: nats.tls.ca)
  --help          print this help
`;

export interface JoinCommandParts {
  natsUrl: string;
  joinToken: string;
  caFile?: string;
  /** sha256 hex of the coordinator's plan-signing key, so the agent pins it at join */
  coordinatorKeyFingerprint?: string;
}

/** Quotes a word for a POSIX shell only when it needs it. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9@%+=:,./_-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The one-liner, e.g. `drover-agent join --server nats://10.0.0.1:4222 --token abc`. */
export function formatJoinCommand(parts: JoinCommandParts): string {
  if (!parts.natsUrl.trim()) throw new TypeError('formatJoinCommand: natsUrl is empty');
  if (!parts.joinToken.trim()) throw new TypeError('formatJoinCommand: joinToken is empty');
  const words = ['drover-agent', 'join', '--server', parts.natsUrl, '--token', parts.joinToken];
  if (parts.caFile) words.push('--ca', parts.caFile);
  if (parts.coordinatorKeyFingerprint)
    words.push('--coordinator-key-fingerprint', parts.coordinatorKeyFingerprint);
  return words.map((w, i) => (i < 2 ? w : shellQuote(w))).join(' ');
}

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

function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host.startsWith('127.') || host === '[::1]' || host === '::1';
}

function defaultHostAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces()))
    for (const a of list ?? []) if (!a.internal && a.family === 'IPv4') out.push(a.address);
  return out;
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
      const hostAddr = (opts.hostAddresses ?? defaultHostAddresses)()[0];
      const urls = cfg.nats.servers.map((s) => {
        let u: URL;
        try {
          u = new URL(s);
        } catch {
          return s;
        }
        if (!isLoopbackHost(u.hostname)) return s;
        if (!hostAddr)
          throw new JoinCommandError(
            `the coordinator reaches NATS at ${s}, a loopback address other hosts cannot use, and this ` +
              'host has no other address; pass --server nats://ADDRESS:PORT',
          );
        u.hostname = hostAddr;
        err(`note: ${s} is a loopback address; printing ${hostAddr} instead (pass --server to choose)\n`);
        return u.toString().replace(/\/$/, '');
      });
      natsUrl = [...new Set(urls)].join(',');
    }

    const tokenFile = cfg.joinTokenFile ?? join(cfg.dataDir, 'join-token');
    const token = opts.token ?? cfg.joinToken ?? readSecretFile(tokenFile, 'join token', access);
    if (!token)
      throw new JoinCommandError(
        `no join token: ${tokenFile} does not exist yet. Start drover-coordinator once (it creates the ` +
          `token), set joinToken or joinTokenFile in ${configFile}, or pass --token`,
      );

    let fingerprint: string | undefined;
    const keyFile = join(cfg.dataDir, 'plan-signing-key.pem');
    try {
      const pem = readSecretFile(keyFile, 'plan-signing key', access);
      if (pem) fingerprint = signingKeyFromPem(pem).fingerprint;
      else err(`note: ${keyFile} does not exist yet; the agent will pin the key it first sees\n`);
    } catch (e) {
      // Pinning at join is a hardening, not a requirement: the agent otherwise pins on first use.
      err(`note: ${(e as Error).message}; the agent will pin the key it first sees\n`);
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

/** `drover join-command [flags]` from argv (after the command word). */
export async function joinCommandMain(
  argv: string[],
  io: Pick<JoinCommandOptions, 'stdout' | 'stderr'> = {},
) {
  const err = io.stderr ?? ((t: string) => process.stderr.write(t));
  const { positionals, flags } = splitArgs(argv, new Set(['help']));
  if (flags.help) {
    (io.stdout ?? ((t: string) => process.stdout.write(t)))(JOIN_COMMAND_USAGE);
    return 0;
  }
  const known = new Set(['config', 'server', 'token', 'ca']);
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
  return runJoinCommand({
    configFile: flags.config as string | undefined,
    server: flags.server as string | undefined,
    token: flags.token as string | undefined,
    caFile: flags.ca as string | undefined,
    ...io,
  });
}
