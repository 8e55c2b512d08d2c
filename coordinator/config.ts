import { type Static, Type } from '@sinclair/typebox';
import { type CompileConfigInput, ConfigError, compileConfig, Duration } from '../lib/config.js';
import { trustedProxyProblem } from './api/client-address.js';
import { DEFAULT_TUNING } from './options.js';

/** `(default 2s)` from the one defaults table (coordinator/options.ts) */
const dflt = (key: keyof typeof DEFAULT_TUNING, ms = true) => {
  const v = DEFAULT_TUNING[key];
  return `(default ${!ms ? v : v % 1000 === 0 ? `${v / 1000}s` : `${v}ms`})`;
};

/**
 * CoordinatorOptions: every field optional; the defaults below are documented in
 * docs/operations.md with the reasoning behind each timing.
 */
export const CoordinatorOptionsSchema = Type.Object({
  nats: Type.Optional(
    Type.Object({
      servers: Type.Optional(Type.Array(Type.String(), { description: 'NATS server URLs' })),
      token: Type.Optional(Type.String({ description: 'NATS token' })),
      user: Type.Optional(Type.String()),
      password: Type.Optional(Type.String()),
      credsFile: Type.Optional(Type.String({ description: 'NATS .creds file' })),
      tls: Type.Optional(
        Type.Object({
          ca: Type.Optional(Type.String()),
          cert: Type.Optional(Type.String()),
          key: Type.Optional(Type.String()),
        }),
      ),
    }),
  ),
  dataDir: Type.Optional(
    Type.String({ description: 'store, keys and tokens (default /var/lib/drover/coordinator)' }),
  ),
  bus: Type.Optional(
    Type.Object(
      {
        dir: Type.Optional(
          Type.String({
            description:
              'the bus keys, creds, CA and nats-server config (`drover-coordinator nats-config` writes them; default <dataDir>/bus)',
          }),
        ),
        tls: Type.Optional(
          Type.Boolean({
            description: 'verify nats-server against the bus CA <bus.dir>/ca.crt (default true)',
          }),
        ),
      },
      { additionalProperties: false },
    ),
  ),
  api: Type.Optional(
    Type.Object({
      listen: Type.Optional(
        Type.String({ description: 'host:port for the REST API (default 127.0.0.1:7480)' }),
      ),
      tls: Type.Optional(
        Type.Object({ cert: Type.Optional(Type.String()), key: Type.Optional(Type.String()) }),
      ),
      trustedProxies: Type.Optional(
        Type.Array(Type.String(), {
          description:
            'reverse proxies (IPs or CIDRs) whose X-Forwarded-For names the client the API failure limit counts against (default none)',
        }),
      ),
      maxStreamsPerToken: Type.Optional(
        Type.Integer({
          minimum: 1,
          description: 'event streams (SSE) one API token may hold open at once (default 8)',
        }),
      ),
    }),
  ),
  joinToken: Type.Optional(
    Type.Unknown({
      description:
        'removed: the shared join token is gone; create per-host tokens with `drover token create --join`',
    }),
  ),
  joinTokenFile: Type.Optional(
    Type.Unknown({
      description:
        'removed: the shared join token is gone; create per-host tokens with `drover token create --join`',
    }),
  ),
  maxPendingNodes: Type.Optional(
    Type.Integer({
      minimum: 0,
      description: 'nodes that may wait for approval at once; joins beyond it are refused (default 100)',
    }),
  ),
  registrationRate: Type.Optional(
    Type.Number({
      exclusiveMinimum: 0,
      description: 'joins plus registrations per second the coordinator takes (token bucket; default 20)',
    }),
  ),
  registrationBurst: Type.Optional(
    Type.Integer({
      minimum: 1,
      description: 'joins plus registrations taken at once before the rate applies (default 200)',
    }),
  ),
  heartbeatInterval: Type.Optional(
    Duration({ description: `agent heartbeat interval ${dflt('heartbeatInterval')}` }),
  ),
  suspectAfterMissed: Type.Optional(
    Type.Integer({
      minimum: 1,
      description: `missed heartbeats before Suspect ${dflt('suspectAfterMissed', false)}`,
    }),
  ),
  unreachableAfter: Type.Optional(
    Duration({ description: `silence before Unreachable ${dflt('unreachableAfter')}` }),
  ),
  reassignAfter: Type.Optional(
    Duration({ description: `Unreachable time before stateless roles move ${dflt('reassignAfter')}` }),
  ),
  etcdReassignAfter: Type.Optional(
    Duration({
      description: `Unreachable time before an etcd member is replaced ${dflt('etcdReassignAfter')}`,
    }),
  ),
  stormThreshold: Type.Optional(
    Type.Number({
      minimum: 0,
      maximum: 1,
      description: `share of Unreachable nodes that pauses reassignment ${dflt('stormThreshold', false)}`,
    }),
  ),
  pushTimeout: Type.Optional(
    Duration({ description: `how long a plan push waits for the agent ${dflt('pushTimeout')}` }),
  ),
  standinCommand: Type.Optional(
    Type.Array(Type.String(), {
      description: 'lab only: command + args that run the simulated Kubernetes stand-in',
    }),
  ),
  logLevel: Type.Optional(Type.String()),
});

export type CoordinatorOptions = Static<typeof CoordinatorOptionsSchema>;

export const DEFAULT_COORDINATOR_OPTIONS = {
  nats: { servers: ['nats://127.0.0.1:4222'] as string[] } as {
    servers: string[];
    token?: string;
    user?: string;
    password?: string;
    credsFile?: string;
    tls?: { ca?: string; cert?: string; key?: string };
  },
  dataDir: '/var/lib/drover/coordinator',
  /** `dir` undefined: `<dataDir>/bus` (see busDirOf) */
  bus: { tls: true } as { dir?: string; tls: boolean },
  api: { listen: '127.0.0.1:7480', trustedProxies: [] as string[], maxStreamsPerToken: 8 } as {
    listen: string;
    tls?: { cert?: string; key?: string };
    trustedProxies: string[];
    maxStreamsPerToken: number;
  },
  maxPendingNodes: 100,
  registrationRate: 20,
  registrationBurst: 200,
  // the engine timings, under their config keys (coordinator/options.ts holds the one table)
  ...DEFAULT_TUNING,
  standinCommand: undefined as string[] | undefined,
  logLevel: 'info',
};

export type CompiledCoordinatorOptions = Readonly<typeof DEFAULT_COORDINATOR_OPTIONS>;

/** A removed option is a configuration error (exit 2, the message names the option). */
export class RemovedOptionError extends ConfigError {
  constructor(field: string, message: string) {
    super('coordinator config', field, message);
    this.name = 'RemovedOptionError';
  }
}

export function compileCoordinatorOptions(input: CompileConfigInput): CompiledCoordinatorOptions {
  const c = compileConfig(
    CoordinatorOptionsSchema,
    DEFAULT_COORDINATOR_OPTIONS,
    input,
  ) as CompiledCoordinatorOptions & {
    joinToken?: unknown;
    joinTokenFile?: unknown;
  };
  for (const key of ['joinToken', 'joinTokenFile'] as const)
    if (c[key] !== undefined)
      throw new RemovedOptionError(
        key,
        `no longer supported (the shared join token is gone: anyone holding it could join as any node); remove it, and give each host its own token with \`drover token create --join\` (or \`drover join-command\`)`,
      );
  c.api.trustedProxies.forEach((entry, i) => {
    const problem = trustedProxyProblem(entry);
    if (problem) throw new ConfigError('coordinator config', `api.trustedProxies.${i}`, problem);
  });
  const { joinToken: _t, joinTokenFile: _f, ...rest } = c;
  return rest;
}

/** Where the bus's keys, creds and CA live: `bus.dir`, else `<dataDir>/bus`. */
export function busDirOf(o: Pick<CompiledCoordinatorOptions, 'bus' | 'dataDir'>): string {
  return o.bus.dir ?? `${o.dataDir.replace(/\/$/, '')}/bus`;
}
