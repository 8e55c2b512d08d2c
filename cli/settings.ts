import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { formatDuration, parseDuration } from '../lib/duration.js';
import { CliError, EXIT } from './errors.js';

export const DEFAULT_SERVER = 'http://127.0.0.1:7480';
/** how long one API request may take before the CLI gives up (exit 5); 0 waits forever */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

export interface Settings {
  server: string;
  token?: string;
  /** per request; 0 = no limit */
  requestTimeoutMs: number;
  /** where each value came from, for error hints */
  source: { server: string; token: string; requestTimeout: string };
}

export interface SettingsInput {
  flags: { server?: string; token?: string; tokenFile?: string; config?: string; requestTimeout?: string };
  env: NodeJS.ProcessEnv;
  home?: string;
}

export function configPath(env: NodeJS.ProcessEnv, home = homedir(), explicit?: string): string {
  if (explicit) return explicit;
  if (env.DROVER_CONFIG) return env.DROVER_CONFIG;
  const base = env.XDG_CONFIG_HOME || join(home, '.config');
  return join(base, 'drover', 'config.yaml');
}

interface FileSettings {
  server?: string;
  token?: string;
  tokenFile?: string;
  requestTimeout?: string;
}

const FILE_KEYS = ['server', 'token', 'tokenFile', 'requestTimeout'] as const;

function requestTimeout(text: string, source: string): number {
  const ms = parseDuration(text);
  if (ms === undefined)
    throw new CliError(
      `request timeout ${JSON.stringify(text)} (from ${source}) is not a duration`,
      EXIT.USAGE,
      'e.g. --request-timeout 10s, 2m, or 0 to wait forever',
    );
  return ms;
}

/** `30s`, or `no timeout` for 0. */
export function describeTimeout(ms: number): string {
  return ms === 0 ? 'no timeout' : formatDuration(ms);
}

function readTokenFile(path: string, what: string): string {
  try {
    const t = readFileSync(path, 'utf8').trim();
    if (!t) throw new Error('the file is empty');
    return t;
  } catch (err) {
    throw new CliError(`cannot read the token file ${path} (${what}): ${(err as Error).message}`, EXIT.USAGE);
  }
}

function readConfig(path: string, explicit: boolean): FileSettings {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !explicit) return {};
    throw new CliError(`cannot read ${path}: ${(err as Error).message}`, EXIT.USAGE);
  }
  let v: unknown;
  try {
    v = parseYaml(text);
  } catch (err) {
    throw new CliError(`${path} is not valid YAML: ${(err as Error).message}`, EXIT.USAGE);
  }
  if (v === null || v === undefined) return {};
  if (typeof v !== 'object' || Array.isArray(v))
    throw new CliError(`${path}: expected a mapping with ${FILE_KEYS.join(', ')}`, EXIT.USAGE);
  const out: FileSettings = {};
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    if (!(FILE_KEYS as readonly string[]).includes(k))
      throw new CliError(
        `${path}: unknown key ${JSON.stringify(k)} (allowed: ${FILE_KEYS.join(', ')})`,
        EXIT.USAGE,
      );
    if (typeof val !== 'string' || !val)
      throw new CliError(
        `${path}: ${k} must be a non-empty string${k === 'requestTimeout' ? ' with a unit, e.g. "30s"' : ''}`,
        EXIT.USAGE,
      );
    out[k as (typeof FILE_KEYS)[number]] = val;
  }
  return out;
}

/** Connection settings: flags, then DROVER_URL / DROVER_TOKEN(_FILE), then the config file. */
export function resolveSettings(input: SettingsInput): Settings {
  const { flags, env } = input;
  const path = configPath(env, input.home, flags.config);
  const file = readConfig(path, !!flags.config || !!env.DROVER_CONFIG);
  let server = DEFAULT_SERVER;
  let serverSource = 'default';
  if (flags.server) [server, serverSource] = [flags.server, '--server'];
  else if (env.DROVER_URL) [server, serverSource] = [env.DROVER_URL, 'DROVER_URL'];
  else if (file.server) [server, serverSource] = [file.server, path];
  let token: string | undefined;
  let tokenSource = 'none';
  if (flags.token) [token, tokenSource] = [flags.token, '--token'];
  else if (flags.tokenFile)
    [token, tokenSource] = [readTokenFile(flags.tokenFile, '--token-file'), '--token-file'];
  else if (env.DROVER_TOKEN) [token, tokenSource] = [env.DROVER_TOKEN, 'DROVER_TOKEN'];
  else if (env.DROVER_TOKEN_FILE)
    [token, tokenSource] = [readTokenFile(env.DROVER_TOKEN_FILE, 'DROVER_TOKEN_FILE'), 'DROVER_TOKEN_FILE'];
  else if (file.token) [token, tokenSource] = [file.token, path];
  else if (file.tokenFile)
    [token, tokenSource] = [readTokenFile(file.tokenFile, `tokenFile in ${path}`), `tokenFile in ${path}`];
  let timeoutMs = DEFAULT_REQUEST_TIMEOUT_MS;
  let timeoutSource = 'default';
  if (flags.requestTimeout !== undefined)
    [timeoutMs, timeoutSource] = [
      requestTimeout(flags.requestTimeout, '--request-timeout'),
      '--request-timeout',
    ];
  else if (env.DROVER_REQUEST_TIMEOUT)
    [timeoutMs, timeoutSource] = [
      requestTimeout(env.DROVER_REQUEST_TIMEOUT, 'DROVER_REQUEST_TIMEOUT'),
      'DROVER_REQUEST_TIMEOUT',
    ];
  else if (file.requestTimeout)
    [timeoutMs, timeoutSource] = [
      requestTimeout(file.requestTimeout, `requestTimeout in ${path}`),
      `requestTimeout in ${path}`,
    ];
  // coordinator HA: every coordinator's API, comma-separated; the client finds the leader among them
  const urls = server
    .split(',')
    .map((u) => u.trim())
    .filter(Boolean)
    .map((u) => (/^https?:\/\//.test(u) ? u : `http://${u}`).replace(/\/+$/, ''));
  if (urls.length === 0)
    throw new CliError(
      `server (from ${serverSource}) is empty`,
      EXIT.USAGE,
      'e.g. --server http://127.0.0.1:7480',
    );
  for (const u of urls)
    try {
      new URL(u);
    } catch {
      throw new CliError(
        `server ${JSON.stringify(u)} (from ${serverSource}) is not a URL`,
        EXIT.USAGE,
        'e.g. --server http://127.0.0.1:7480, or several coordinators: --server http://c1:7480,http://c2:7480,http://c3:7480',
      );
    }
  return {
    server: urls.join(','),
    token,
    requestTimeoutMs: timeoutMs,
    source: { server: serverSource, token: tokenSource, requestTimeout: timeoutSource },
  };
}
