/**
 * The security suite's bus: a real nats-server running the auth Drover generates (operator JWT,
 * full resolver, TLS from the bus CA), a real coordinator connected with its own credentials, and
 * raw clients holding node credentials — the attacker's view of the bus.
 */

import { join } from 'node:path';
import { createUser } from '@nats-io/nkeys';
import { connect, jwtAuthenticator, type NatsConnection } from 'nats';
import { stringify as toYaml } from 'yaml';
import { type PreparedBus, prepareBus } from '../../coordinator/bus/server-config.js';
import { compileCoordinatorOptions } from '../../coordinator/config.js';
import { type CoordinatorHandle, startCoordinator } from '../../coordinator/daemon.js';
import { silentLogger } from '../../lib/logger.js';
import { nodeInboxPrefix } from '../../protocol/index.js';
import {
  autoCleanup,
  freePort,
  killAndWait,
  requireBinary,
  rmrf,
  spawnLogged,
  tempDir,
  waitFor,
} from '../helpers/proc.js';

/** A raw client with node credentials; `errors` collects the server's asynchronous errors. */
export type NodeClient = NatsConnection & { errors: string[]; userKey: string };

export interface SecureBus {
  url: string;
  bus: PreparedBus;
  dir: string;
  /** a client holding node `nodeId`'s credentials (the JWT a join issues), with its inbox prefix */
  nodeClient(nodeId: string): Promise<NodeClient>;
  output(): string;
}

/** Collects the asynchronous errors (permission violations) the server sends a client. */
function collectErrors(nc: NatsConnection): string[] {
  const errors: string[] = [];
  void (async () => {
    for await (const s of nc.status()) if (s.type === 'error') errors.push(String(s.data));
  })().catch(() => {});
  return errors;
}

export async function startSecureBus(): Promise<SecureBus> {
  const bin = requireBinary('nats-server');
  const dir = tempDir('secbus');
  const port = await freePort('127.0.0.1');
  const monitor = await freePort('127.0.0.1');
  const bus = await prepareBus({
    dir: join(dir, 'coordinator', 'bus'),
    listen: `127.0.0.1:${port}`,
    monitor: `127.0.0.1:${monitor}`,
    tlsHosts: ['127.0.0.1'],
    jetstream: false,
  });
  const proc = spawnLogged(bin, ['-c', bus.configFile]);
  await waitFor('secure nats-server', async () => {
    if (proc.child.exitCode !== null) throw new Error(`nats-server exited: ${proc.output()}`);
    return (await fetch(`http://127.0.0.1:${monitor}/healthz`).catch(() => undefined))?.ok;
  });
  autoCleanup(async () => {
    await killAndWait(proc);
    rmrf(dir);
  });
  const url = `tls://127.0.0.1:${port}`;
  return {
    url,
    bus,
    dir,
    output: () => proc.output(),
    async nodeClient(nodeId) {
      const kp = createUser();
      const { jwt } = await bus.auth.nodeUser(nodeId, kp.getPublicKey());
      const nc = await connect({
        servers: url,
        authenticator: jwtAuthenticator(jwt, kp.getSeed()),
        tls: { caFile: bus.tls!.caFile },
        inboxPrefix: nodeInboxPrefix(nodeId),
        name: `attacker-as-${nodeId}`,
      });
      autoCleanup(() => nc.close());
      return Object.assign(nc, { errors: collectErrors(nc), userKey: kp.getPublicKey() });
    },
  };
}

/** A coordinator on the secure bus, connected with the coordinator's own creds. */
export async function startSecureCoordinator(
  b: SecureBus,
  config: Record<string, unknown> = {},
): Promise<CoordinatorHandle> {
  const opts = compileCoordinatorOptions({
    file: {
      path: 'security.yaml',
      text: toYaml({
        dataDir: join(b.dir, 'coordinator'),
        nats: {
          servers: [b.url],
          credsFile: b.bus.auth.coordinatorCredsFile,
          tls: { ca: b.bus.tls!.caFile },
        },
        api: { listen: '127.0.0.1:0' },
        heartbeatInterval: '500ms',
        unreachableAfter: '5s',
        pushTimeout: '5s',
        ...config,
      }),
    },
    env: {},
  });
  const coord = await startCoordinator(opts, silentLogger);
  autoCleanup(() => coord.close());
  return coord;
}
