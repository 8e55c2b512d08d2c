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
  store: Type.Optional(
    Type.Object(
      {
        backend: Type.Optional(
          Type.Union([Type.Literal('lowdb'), Type.Literal('jetstream')], {
            description:
              'where the state lives: lowdb (<dataDir>/state.json, the default) or jetstream (a KV bucket on the NATS servers)',
          }),
        ),
        bucket: Type.Optional(
          Type.String({
            pattern: '^[A-Za-z0-9_-]{1,64}$',
            description: 'the JetStream KV bucket (default drover-state)',
          }),
        ),
        replicas: Type.Optional(
          Type.Integer({
            minimum: 1,
            maximum: 5,
            description: 'replicas of the bucket: 3 on a three-server JetStream cluster (default 1)',
          }),
        ),
      },
      { additionalProperties: false },
    ),
  ),
  ha: Type.Optional(
    Type.Object(
      {
        enabled: Type.Optional(
          Type.Boolean({
            description:
              'coordinator HA: several coordinators on one JetStream store, one leader by lease (needs store.backend jetstream)',
          }),
        ),
        id: Type.Optional(
          Type.String({
            pattern: '^[A-Za-z0-9_-]{1,64}$',
            description: "this coordinator's id among its peers (default the host name)",
          }),
        ),
        advertiseApi: Type.Optional(
          Type.String({
            pattern: '^https?://[^\\s/]+$',
            description:
              'the API address peers and the CLI reach this coordinator at (default from api.listen)',
          }),
        ),
        lease: Type.Optional(
          Duration({
            description:
              'how long a silent leader keeps the lease (default 2s); it fences itself at 3/4 of it, renews every eighth',
          }),
        ),
      },
      { additionalProperties: false },
    ),
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
  pki: Type.Optional(
    Type.Object(
      {
        leafLifetime: Type.Optional(
          Duration({ description: 'how long a certificate issued to an instance is valid (default 365d)' }),
        ),
        renewBefore: Type.Optional(
          Duration({
            description:
              "the agent's own renewal window before expiry (default 30d, at most the last third of the lifetime); the coordinator renews 7 days earlier (at most the last half), through the rollout gate",
          }),
        ),
      },
      { additionalProperties: false },
    ),
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
  store: { backend: 'lowdb', bucket: 'drover-state', replicas: 1 } as {
    backend: 'lowdb' | 'jetstream';
    bucket: string;
    replicas: number;
  },
  ha: { enabled: false, lease: 2000 } as {
    enabled: boolean;
    id?: string;
    advertiseApi?: string;
    lease: number;
  },
  /** `dir` undefined: `<dataDir>/bus` (see busDirOf) */
  bus: { tls: true } as { dir?: string; tls: boolean },
  api: { listen: '127.0.0.1:7480', trustedProxies: [] as string[], maxStreamsPerToken: 8 } as {
    listen: string;
    tls?: { cert?: string; key?: string };
    trustedProxies: string[];
    maxStreamsPerToken: number;
  },
  pki: {} as { leafLifetime?: number; renewBefore?: number },
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
  if (c.ha.enabled && c.store.backend !== 'jetstream')
    throw new ConfigError(
      'coordinator config',
      'ha.enabled',
      'coordinator HA needs the replicated store: set store.backend: jetstream (and store.replicas: 3 on a three-server NATS cluster)',
    );
  if (c.ha.lease < 500 || c.ha.lease > 60_000)
    throw new ConfigError('coordinator config', 'ha.lease', `must be 500ms–60s, got ${c.ha.lease} ms`);
  const { joinToken: _t, joinTokenFile: _f, ...rest } = c;
  return rest;
}

/** Where the bus's keys, creds and CA live: `bus.dir`, else `<dataDir>/bus`. */
export function busDirOf(o: Pick<CompiledCoordinatorOptions, 'bus' | 'dataDir'>): string {
  return o.bus.dir ?? `${o.dataDir.replace(/\/$/, '')}/bus`;
}
