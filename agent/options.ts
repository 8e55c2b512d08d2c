import { type Static, Type } from '@sinclair/typebox';
import { ConfigError, compileConfig, Duration, describeOptions, readConfigFile } from '../lib/config.js';
import type { NatsSettings } from '../lib/nats-options.js';
import {
  AGENT_LABELS_OPTIONS,
  HOSTNAME_PATTERN,
  IP_ADDRESS_PATTERN,
  JOIN_TOKEN_MAX_LENGTH,
  LabelKey,
  LabelValue,
} from '../protocol/index.js';
import { AgentError } from './errors.js';

/**
 * The agent's options, in three steps: `AgentConfig` (the schema: every field optional, each
 * default documented), `DEFAULT_AGENT_CONFIG`, and `compileAgentOptions()` which merges the YAML
 * file < `DROVER_*` env < `--flags`, refuses unknown keys by name, turns durations into `…Ms` and
 * freezes the result.
 */
export const AgentConfig = Type.Object({
  nodeId: Type.Optional(
    Type.String({
      pattern: '^[A-Za-z0-9_-]{1,128}$',
      description: 'node id; default: <dataDir>/node-id, else <rootDir>/etc/machine-id, else generated',
    }),
  ),
  nats: Type.Optional(
    Type.Object({
      servers: Type.Optional(
        Type.Array(Type.String({ minLength: 1 }), {
          description: 'NATS URLs (default nats://127.0.0.1:4222)',
        }),
      ),
      token: Type.Optional(Type.String({ description: 'NATS token' })),
      user: Type.Optional(Type.String({ description: 'NATS user' })),
      password: Type.Optional(Type.String({ description: 'NATS password' })),
      nkeySeed: Type.Optional(Type.String({ description: 'NATS nkey seed (SU…)' })),
      credsFile: Type.Optional(Type.String({ description: 'NATS .creds file (JWT + seed)' })),
      tls: Type.Optional(
        Type.Object({
          ca: Type.Optional(Type.String({ description: 'CA bundle file that signs the NATS server cert' })),
          cert: Type.Optional(Type.String({ description: 'client certificate file' })),
          key: Type.Optional(Type.String({ description: 'client key file' })),
        }),
      ),
    }),
  ),
  hostname: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 253,
      pattern: HOSTNAME_PATTERN,
      description:
        'host name reported to the coordinator instead of the system one (unique within a cluster; like kubelet --hostname-override)',
    }),
  ),
  advertiseAddress: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 45,
      pattern: IP_ADDRESS_PATTERN,
      description: 'IP address reported to the coordinator (default: first non-loopback IPv4)',
    }),
  ),
  labels: Type.Optional(
    Type.Record(LabelKey, LabelValue, {
      ...AGENT_LABELS_OPTIONS,
      description: 'node labels in Kubernetes label syntax, `k=v,k2=v2` in env and flags',
    }),
  ),
  dataDir: Type.Optional(
    Type.String({ pattern: '^/', description: 'state dir (default /var/lib/drover/agent)' }),
  ),
  rootDir: Type.Optional(
    Type.String({
      pattern: '^/',
      description: 'root for role files, what DROVER_ROOT expands to in plans (default /)',
    }),
  ),
  runtime: Type.Optional(
    Type.Union([Type.Literal('systemd'), Type.Literal('process')], {
      description: 'role runtime: systemd or process (default systemd)',
    }),
  ),
  unitDir: Type.Optional(
    Type.String({
      pattern: '^/',
      description: 'systemd runtime: unit file dir (default /etc/systemd/system)',
    }),
  ),
  logMaxBytes: Type.Optional(
    Type.Integer({
      minimum: 4096,
      description: 'process runtime: log file size before rotation (default 10 MiB)',
    }),
  ),
  joinToken: Type.Optional(
    Type.String({
      maxLength: JOIN_TOKEN_MAX_LENGTH,
      description:
        'a per-host join token (`drover token create --join`, `drover-join-v1.…`): used once to get this node its own bus credentials (<dataDir>/bus.creds)',
    }),
  ),
  insecureTrustFirstCoordinator: Type.Optional(
    Type.Boolean({
      description:
        'INSECURE: without coordinatorKeyFingerprint, trust the coordinator key that answers first (default false: the fingerprint is required)',
    }),
  ),
  heartbeatInterval: Type.Optional(
    Duration({ description: 'heartbeat period (default 2s; the coordinator may set it)' }),
  ),
  factsInterval: Type.Optional(Duration({ description: 'facts refresh period (default 5m)' })),
  driftCheckInterval: Type.Optional(
    Duration({ description: 'how often role files are compared with the plan and repaired (default 15s)' }),
  ),
  coordinatorKeyFingerprint: Type.Optional(
    Type.String({
      pattern: '^[0-9a-f]{64}$',
      description:
        'sha256 of the coordinator plan-signing key (`drover join-command` prints it); required to join unless insecureTrustFirstCoordinator',
    }),
  ),
  stopRolesOnExit: Type.Optional(
    Type.Boolean({ description: 'stop every role when the agent stops (default false: roles keep running)' }),
  ),
  logLevel: Type.Optional(
    Type.Union(
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
      { description: 'log level (default info)' },
    ),
  ),
});
export type AgentConfig = Static<typeof AgentConfig>;

export const DEFAULT_CONFIG_FILE = '/etc/drover/agent.yaml';
export const DEFAULT_NATS_SERVERS = ['nats://127.0.0.1:4222'];
export const DEFAULT_DATA_DIR = '/var/lib/drover/agent';
export const DEFAULT_ROOT_DIR = '/';
export const DEFAULT_UNIT_DIR = '/etc/systemd/system';
export const DEFAULT_HEARTBEAT_MS = 2000;
export const DEFAULT_FACTS_MS = 5 * 60_000;
export const DEFAULT_LOG_MAX_BYTES = 10 * 1024 * 1024;

/** What the rest of the agent reads: every default filled in, durations in ms, frozen. */
export interface AgentOptions {
  readonly nodeId: string | undefined;
  readonly nats: NatsSettings;
  readonly advertiseAddress: string | undefined;
  /** overrides the system host name in facts, Join and Register */
  readonly hostname: string | undefined;
  readonly labels: Readonly<Record<string, string>>;
  readonly dataDir: string;
  readonly rootDir: string;
  readonly runtime: 'systemd' | 'process';
  readonly unitDir: string;
  readonly logMaxBytes: number;
  readonly joinToken: string | undefined;
  readonly heartbeatIntervalMs: number;
  readonly factsIntervalMs: number;
  readonly driftCheckIntervalMs: number;
  readonly coordinatorKeyFingerprint: string | undefined;
  /** trust on first use of the coordinator key: only when set explicitly (insecure) */
  readonly insecureTrustFirstCoordinator: boolean;
  readonly stopRolesOnExit: boolean;
  readonly logLevel: string;
  /** where the options came from, for logs */
  readonly configFile: string | undefined;
}

export interface CompileAgentOptionsInput {
  /** explicit config file (`--config`); when absent the default file is read if it exists */
  configFile?: string;
  /** YAML text instead of reading a file (tests) */
  configText?: string;
  env?: Record<string, string | undefined>;
  flags?: Record<string, string | boolean>;
}

/**
 * Compiles options once. Throws `AgentError(DROVER_ERR_CONFIG)` naming the source and the key.
 * Durations are accepted as `2000`, `"2s"` or `"1m30s"`.
 */
export function compileAgentOptions(input: CompileAgentOptionsInput = {}): AgentOptions {
  const path = input.configFile ?? DEFAULT_CONFIG_FILE;
  try {
    const file =
      input.configText !== undefined
        ? { path, text: input.configText }
        : readConfigFile(path, input.configFile !== undefined);
    const c = compileConfig(AgentConfig, {} as Record<string, unknown>, {
      file,
      env: input.env ?? {},
      flags: input.flags ?? {},
    }) as Readonly<AgentConfig> & {
      heartbeatInterval?: number;
      factsInterval?: number;
      driftCheckInterval?: number;
    };
    const driftCheckIntervalMs = (c.driftCheckInterval as number | undefined) ?? 15_000;
    if (driftCheckIntervalMs < 1000)
      throw new ConfigError('options', 'driftCheckInterval', 'must be at least 1s');
    const heartbeatIntervalMs = (c.heartbeatInterval as number | undefined) ?? DEFAULT_HEARTBEAT_MS;
    const factsIntervalMs = (c.factsInterval as number | undefined) ?? DEFAULT_FACTS_MS;
    if (heartbeatIntervalMs < 100)
      throw new ConfigError('options', 'heartbeatInterval', 'must be at least 100ms');
    if (factsIntervalMs < 1000) throw new ConfigError('options', 'factsInterval', 'must be at least 1s');
    const tls = c.nats?.tls;
    if (tls && (tls.cert === undefined) !== (tls.key === undefined)) {
      throw new ConfigError('options', 'nats.tls', 'cert and key must be given together');
    }
    const opts: AgentOptions = {
      nodeId: c.nodeId,
      nats: {
        servers: c.nats?.servers?.length ? [...c.nats.servers] : DEFAULT_NATS_SERVERS,
        token: c.nats?.token,
        user: c.nats?.user,
        password: c.nats?.password,
        nkeySeed: c.nats?.nkeySeed,
        credsFile: c.nats?.credsFile,
        tls: tls ? { ...tls } : undefined,
      },
      advertiseAddress: c.advertiseAddress,
      hostname: c.hostname,
      labels: { ...(c.labels ?? {}) },
      dataDir: c.dataDir ?? DEFAULT_DATA_DIR,
      rootDir: c.rootDir ?? DEFAULT_ROOT_DIR,
      runtime: c.runtime ?? 'systemd',
      unitDir: c.unitDir ?? DEFAULT_UNIT_DIR,
      logMaxBytes: c.logMaxBytes ?? DEFAULT_LOG_MAX_BYTES,
      joinToken: c.joinToken,
      heartbeatIntervalMs,
      factsIntervalMs,
      driftCheckIntervalMs,
      coordinatorKeyFingerprint: c.coordinatorKeyFingerprint,
      insecureTrustFirstCoordinator: c.insecureTrustFirstCoordinator ?? false,
      stopRolesOnExit: c.stopRolesOnExit ?? false,
      logLevel: c.logLevel ?? 'info',
      configFile: file?.path,
    };
    return deepFreezeOpts(opts);
  } catch (err) {
    if (err instanceof ConfigError) throw new AgentError('DROVER_ERR_CONFIG', err.message, { cause: err });
    throw err;
  }
}

function deepFreezeOpts<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreezeOpts(v);
  }
  return o;
}

/** Every option with its flag and env var, for `--help`. */
export function describeAgentOptions(): Array<{ flag: string; env: string; description: string }> {
  return describeOptions(AgentConfig);
}

/** `${DROVER_ROOT}` expands to the root dir, or to '' when the root is `/` (so `${DROVER_ROOT}/etc` is `/etc`). */
export function rootPrefix(rootDir: string): string {
  const r = rootDir.replace(/\/+$/, '');
  return r === '' ? '' : r;
}
