import { type Static, Type } from '@sinclair/typebox';
import { type CompileConfigInput, compileConfig, Duration } from '../lib/config.js';

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
  api: Type.Optional(
    Type.Object({
      listen: Type.Optional(
        Type.String({ description: 'host:port for the REST API (default 127.0.0.1:7480)' }),
      ),
      tls: Type.Optional(
        Type.Object({ cert: Type.Optional(Type.String()), key: Type.Optional(Type.String()) }),
      ),
    }),
  ),
  joinToken: Type.Optional(
    Type.String({ description: 'agents presenting this token are admitted without approval' }),
  ),
  joinTokenFile: Type.Optional(
    Type.String({ description: 'file holding the join token (default <dataDir>/join-token)' }),
  ),
  heartbeatInterval: Type.Optional(Duration({ description: 'agent heartbeat interval (default 2s)' })),
  suspectAfterMissed: Type.Optional(
    Type.Integer({ minimum: 1, description: 'missed heartbeats before Suspect (default 3)' }),
  ),
  unreachableAfter: Type.Optional(Duration({ description: 'silence before Unreachable (default 10s)' })),
  reassignAfter: Type.Optional(
    Duration({ description: 'Unreachable time before stateless roles move (default 5s)' }),
  ),
  etcdReassignAfter: Type.Optional(
    Duration({ description: 'Unreachable time before an etcd member is replaced (default 60s)' }),
  ),
  stormThreshold: Type.Optional(
    Type.Number({
      minimum: 0,
      maximum: 1,
      description: 'share of Unreachable nodes that pauses reassignment (default 0.4)',
    }),
  ),
  pushTimeout: Type.Optional(
    Duration({ description: 'how long a plan push waits for the agent (default 10s)' }),
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
  api: { listen: '127.0.0.1:7480' } as { listen: string; tls?: { cert?: string; key?: string } },
  joinToken: undefined as string | undefined,
  joinTokenFile: undefined as string | undefined,
  heartbeatInterval: 2000,
  suspectAfterMissed: 3,
  unreachableAfter: 10_000,
  reassignAfter: 5_000,
  etcdReassignAfter: 60_000,
  stormThreshold: 0.4,
  pushTimeout: 10_000,
  standinCommand: undefined as string[] | undefined,
  logLevel: 'info',
};

export type CompiledCoordinatorOptions = Readonly<typeof DEFAULT_COORDINATOR_OPTIONS>;

export function compileCoordinatorOptions(input: CompileConfigInput): CompiledCoordinatorOptions {
  return compileConfig(CoordinatorOptionsSchema, DEFAULT_COORDINATOR_OPTIONS, input);
}
