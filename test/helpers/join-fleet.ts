/**
 * A real nats-server running Drover's generated auth and TLS (`prepareBus`: operator, full
 * resolver, bus CA), a real coordinator on it with its bus authorisation (join tokens, node
 * credentials, revocations pushed), and in-process agents that join with per-host tokens.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import type { Agent } from '../../agent/agent.js';
import { type FactsSource, systeminformationSource } from '../../agent/facts.js';
import type { BusAuth } from '../../coordinator/bus/auth.js';
import { prepareBus } from '../../coordinator/bus/server-config.js';
import { compileCoordinatorOptions } from '../../coordinator/config.js';
import { type CoordinatorHandle, startCoordinator } from '../../coordinator/daemon.js';
import { silentLogger } from '../../lib/logger.js';
import { signingKeyFromPem } from '../../protocol/index.js';
import { startTestAgent, testAgentOptions } from './agent-harness.js';
import {
  autoCleanup,
  freePort,
  killAndWait,
  requireBinary,
  rmrf,
  type Spawned,
  spawnLogged,
} from './proc.js';
import { tempDir, waitFor } from './wait.js';

export interface JoinFleet {
  dir: string;
  dataDir: string;
  /** tls://127.0.0.1:PORT */
  natsUrl: string;
  caFile: string;
  auth: BusAuth;
  coord: CoordinatorHandle;
  adminToken: string;
  /** env for the `drover` CLI aimed at this coordinator as admin */
  cliEnv: NodeJS.ProcessEnv;
  /** the coordinator's plan-signing key fingerprint (what agents pin) */
  fingerprint: string;
  /** a join token from the coordinator's store */
  token(o?: { ttlMs?: number; uses?: number; description?: string }): Promise<{ id: string; token: string }>;
  /**
   * An in-process agent that joins with `token` (pinning the coordinator key unless `over` says
   * otherwise). Its host name is `hostname`, default its node id: agents in one test share a
   * machine, and host names are unique within a cluster.
   */
  agent(token: string | undefined, over?: Record<string, unknown>, hostname?: string): Promise<Agent>;
  /** agent options as `agent()` would use them */
  agentOptions(
    token: string | undefined,
    over?: Record<string, unknown>,
  ): ReturnType<typeof testAgentOptions>;
  /** what nats-server logged (for failure messages) */
  natsOutput(): string;
  stop(): Promise<void>;
}

/** The real facts of this machine, but for the host name. */
export function hostFacts(hostname: string): FactsSource {
  return {
    ...systeminformationSource,
    osInfo: async () => ({ ...(await systeminformationSource.osInfo()), hostname }),
  };
}

export async function startJoinFleet(
  o: { name?: string; config?: Record<string, unknown> } = {},
): Promise<JoinFleet> {
  const bin = requireBinary('nats-server');
  const dir = tempDir(o.name ?? 'join-fleet');
  const dataDir = join(dir, 'coordinator');
  const port = await freePort('127.0.0.1');
  const monitor = await freePort('127.0.0.1');
  const bus = await prepareBus({
    dir: join(dataDir, 'bus'),
    listen: `127.0.0.1:${port}`,
    monitor: `127.0.0.1:${monitor}`,
    serverName: `drover_join_${port}`,
    tlsHosts: ['127.0.0.1'],
  });
  const nats: Spawned = spawnLogged(bin, ['-c', bus.configFile]);
  const stopNats = () => killAndWait(nats);
  try {
    await waitFor(`nats-server on ${port}`, async () => {
      if (nats.child.exitCode !== null) throw new Error(`nats-server exited: ${nats.output()}`);
      return (await fetch(`http://127.0.0.1:${monitor}/healthz`).catch(() => undefined))?.ok;
    });
  } catch (err) {
    await stopNats();
    rmrf(dir);
    throw err;
  }
  const natsUrl = `tls://127.0.0.1:${port}`;
  const caFile = bus.tls!.caFile;
  const opts = compileCoordinatorOptions({
    file: {
      path: 'test.yaml',
      text: toYaml({
        dataDir,
        nats: { servers: [natsUrl] },
        api: { listen: '127.0.0.1:0' },
        heartbeatInterval: '500ms',
        unreachableAfter: '5s',
        pushTimeout: '5s',
        ...o.config,
      }),
    },
    env: {},
  });
  let coord: CoordinatorHandle;
  try {
    coord = await startCoordinator(opts, silentLogger, { bus: { auth: bus.auth, tlsCaFile: caFile } });
  } catch (err) {
    await stopNats();
    rmrf(dir);
    throw err;
  }
  const adminToken = readFileSync(coord.api.adminTokenFile, 'utf8').trim();
  const fingerprint = signingKeyFromPem(
    readFileSync(join(dataDir, 'plan-signing-key.pem'), 'utf8'),
  ).fingerprint;
  let stopped = false;
  const fleet: JoinFleet = {
    dir,
    dataDir,
    natsUrl,
    caFile,
    auth: bus.auth,
    coord,
    adminToken,
    cliEnv: { PATH: process.env.PATH, HOME: dir, DROVER_URL: coord.api.url, DROVER_TOKEN: adminToken },
    fingerprint,
    async token(t = {}) {
      const c = await coord.joinTokens!.create(t);
      return { id: c.id, token: c.token };
    },
    agentOptions(token, over = {}) {
      return testAgentOptions(natsUrl, {
        joinToken: token,
        coordinatorKeyFingerprint: fingerprint,
        ...over,
      });
    },
    agent(token, over = {}, hostname) {
      const opts = fleet.agentOptions(token, { ...(hostname ? { hostname } : {}), ...over });
      return startTestAgent(opts, { factsSource: hostFacts(hostname ?? opts.nodeId ?? 'host') });
    },
    natsOutput: () => nats.output(),
    async stop() {
      if (stopped) return;
      stopped = true;
      await coord.close().catch(() => {});
      await stopNats();
      rmrf(dir);
    },
  };
  autoCleanup(() => fleet.stop());
  return fleet;
}
