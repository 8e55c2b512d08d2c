/**
 * A three-server NATS JetStream cluster on loopback for the replicated store: one bus (operator,
 * account and TLS from one bus dir), each server with its own JetStream and resolver dirs, routed
 * to the other two. Servers can be killed and restarted one at a time.
 */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, credsAuthenticator, type NatsConnection } from 'nats';
import { prepareBus } from '../../coordinator/bus/server-config.js';
import {
  autoCleanup,
  freePort,
  killAndWait,
  requireBinary,
  rmrf,
  type Spawned,
  spawnLogged,
  tempDir,
  waitFor,
} from './proc.js';

export interface NatsClusterServer {
  name: string;
  url: string;
  start(): void;
  /** SIGKILL (a crash), or SIGTERM (a restart: nats-server flushes its stores first) */
  stop(signal?: 'SIGKILL' | 'SIGTERM'): Promise<void>;
  output(): string;
}

export interface NatsCluster {
  servers: NatsClusterServer[];
  urls: string[];
  /** the bus dir (operator, account, coordinator creds, CA) every server and coordinator shares */
  busDir: string;
  /** every server answers its monitor /healthz (JetStream ready) */
  healthy(): Promise<boolean>;
  connectAsCoordinator(): Promise<NatsConnection>;
}

export async function startNatsCluster(size = 3, host = '127.0.0.1'): Promise<NatsCluster> {
  const bin = requireBinary('nats-server');
  const dir = tempDir('nats-cluster');
  const busDir = join(dir, 'bus');
  const ports = await Promise.all(
    Array.from({ length: size }, async () => ({
      client: await freePort(host),
      monitor: await freePort(host),
      route: await freePort(host),
    })),
  );
  const servers: NatsClusterServer[] = [];
  let caFile = '';
  let credsFile = '';
  for (const [i, p] of ports.entries()) {
    const name = `drover_js_${i + 1}`;
    const routes = ports
      .filter((_, j) => j !== i)
      .map((q) => `nats-route://${host}:${q.route}`)
      .join(', ');
    const bus = await prepareBus({
      dir: busDir,
      serverDir: join(dir, name),
      listen: `${host}:${p.client}`,
      monitor: `${host}:${p.monitor}`,
      serverName: name,
      tlsHosts: [host],
      jetstream: { maxMemory: '64MB', maxFile: '256MB' },
      configFile: join(dir, `${name}.conf`),
      extra: `cluster {\n  name: drover_js\n  listen: ${host}:${p.route}\n  routes: [${routes}]\n}\n`,
    });
    caFile = bus.tls!.caFile;
    credsFile = bus.auth.coordinatorCredsFile;
    let proc: Spawned | undefined;
    const conf = bus.configFile;
    servers.push({
      name,
      url: `tls://${host}:${p.client}`,
      start: () => {
        proc = spawnLogged(bin, ['-c', conf]);
      },
      stop: async (signal = 'SIGKILL') => {
        if (proc) await killAndWait(proc, signal, 15_000);
      },
      output: () => proc?.output() ?? '',
    });
  }
  for (const s of servers) s.start();
  const healthy = async () => {
    const ok = await Promise.all(
      ports.map((p) =>
        fetch(`http://${host}:${p.monitor}/healthz`)
          .then((r) => r.ok)
          .catch(() => false),
      ),
    );
    return ok.every(Boolean);
  };
  await waitFor('the JetStream cluster to elect a meta leader', healthy, {
    timeoutMs: 60_000,
    intervalMs: 250,
  });
  autoCleanup(async () => {
    for (const s of servers) await s.stop();
    rmrf(dir);
  });
  const urls = servers.map((s) => s.url);
  return {
    servers,
    urls,
    busDir,
    healthy,
    async connectAsCoordinator() {
      const nc = await connect({
        servers: urls,
        authenticator: credsAuthenticator(readFileSync(credsFile)),
        tls: { caFile },
        reconnectTimeWait: 200,
        maxReconnectAttempts: -1,
      });
      autoCleanup(async () => {
        if (!nc.isClosed()) await nc.close();
      });
      return nc;
    },
  };
}
