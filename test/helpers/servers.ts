import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fmtCreds } from '@nats-io/jwt';
import { createUser } from '@nats-io/nkeys';
import { type ConnectionOptions, connect, credsAuthenticator, type NatsConnection } from 'nats';
import { type PreparedBus, prepareBus } from '../../coordinator/bus/server-config.js';
import { nodeInboxPrefix } from '../../protocol/index.js';
import {
  autoCleanup,
  freePort,
  killAndWait,
  requireBinary,
  rmrf,
  type Spawned,
  spawnLogged,
  tcpOpen,
  tempDir,
  waitFor,
} from './proc.js';

export interface NatsHandle {
  /** tls://host:port: the bus always runs Drover's auth and TLS (coordinator/bus/) */
  url: string;
  /** the auth material and TLS files (`prepareBus` in `<dir>/bus`): give `bus.auth.dir` to the coordinator as `bus.dir` */
  bus: PreparedBus;
  /** the bus CA, for clients' `tls.ca` */
  caFile: string;
  /**
   * A creds file for node `nodeId`: the node user JWT (confined to its own subjects) and a fresh
   * seed, as a join would have issued them. For "pre-joined" test agents and raw clients.
   */
  credsFor(nodeId: string): Promise<string>;
  /** a creds file for the coordinator's identity (unlimited in the DROVER account) */
  coordinatorCreds: string;
  /**
   * A raw client on this bus as the coordinator's identity or as node `nodeId` (its creds, the
   * bus CA, its inbox prefix); closed at the end of the test.
   */
  connectAs(
    who: { coordinator: true } | { nodeId: string },
    opts?: ConnectionOptions,
  ): Promise<NatsConnection>;
  host: string;
  port: number;
  monitorPort: number;
  dir: string;
  /** stops the server, keeping its dir and port so start() brings the same server back */
  stop(): Promise<void>;
  start(): Promise<void>;
  pid(): number | undefined;
  output(): string;
}

/** The running test buses by URL: test agents find their bus's CA and mint their creds here. */
export const natsByUrl = new Map<string, NatsHandle>();

export interface NatsOptions {
  host?: string;
  jetstream?: boolean;
  /** the bus dir to prepare (default `<nats dir>/bus`): a coordinator's `<dataDir>/bus` to share its keys */
  busDir?: string;
  /** extra nats-server config text appended as-is (accounts, authorization, tls …) */
  extraConfig?: string;
}

export async function startNats(opts: NatsOptions = {}): Promise<NatsHandle> {
  const bin = requireBinary('nats-server');
  const host = opts.host ?? '127.0.0.1';
  const dir = tempDir('nats');
  const port = await freePort(host);
  const monitorPort = await freePort(host);
  const bus = await prepareBus({
    dir: opts.busDir ?? join(dir, 'bus'),
    listen: `${host}:${port}`,
    monitor: `${host}:${monitorPort}`,
    serverName: `drover_test_${port}`,
    tlsHosts: [host],
    jetstream: opts.jetstream === false ? false : { maxMemory: '64MB', maxFile: '256MB' },
    configFile: join(dir, 'nats.conf'),
    extra: opts.extraConfig,
  });
  const conf = bus.configFile;
  let proc: Spawned | undefined;
  const start = async () => {
    proc = spawnLogged(bin, ['-c', conf]);
    const p = proc;
    await waitFor(`nats-server on ${host}:${port}`, async () => {
      if (p.child.exitCode !== null) throw new Error(`nats-server exited: ${p.output()}`);
      const r = await fetch(`http://${host}:${monitorPort}/healthz`).catch(() => undefined);
      return r?.ok;
    });
  };
  await start();
  let credsSeq = 0;
  const handle: NatsHandle = {
    url: `tls://${host}:${port}`,
    bus,
    caFile: bus.tls!.caFile,
    coordinatorCreds: bus.auth.coordinatorCredsFile,
    async connectAs(who, extra = {}) {
      const creds = 'coordinator' in who ? bus.auth.coordinatorCredsFile : await handle.credsFor(who.nodeId);
      const nc = await connect({
        servers: handle.url,
        authenticator: credsAuthenticator(readFileSync(creds)),
        tls: { caFile: bus.tls!.caFile },
        ...('nodeId' in who ? { inboxPrefix: nodeInboxPrefix(who.nodeId) } : {}),
        ...extra,
      });
      autoCleanup(async () => {
        if (!nc.isClosed()) await nc.close();
      });
      return nc;
    },
    async credsFor(nodeId) {
      const kp = createUser();
      const { jwt } = await bus.auth.nodeUser(nodeId, kp.getPublicKey());
      const file = join(dir, `node-${nodeId}-${++credsSeq}.creds`);
      writeFileSync(file, fmtCreds(jwt, kp), { mode: 0o600 });
      return file;
    },
    host,
    port,
    monitorPort,
    dir,
    start,
    async stop() {
      if (proc) await killAndWait(proc);
    },
    pid: () => proc?.child.pid,
    output: () => proc?.output() ?? '',
  };
  natsByUrl.set(handle.url, handle);
  autoCleanup(async () => {
    natsByUrl.delete(handle.url);
    await handle.stop();
    rmrf(dir);
  });
  return handle;
}

export interface EtcdMember {
  name: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  stop(): Promise<void>;
  kill(): Promise<void>;
  start(): Promise<void>;
  pid(): number | undefined;
  output(): string;
}

export interface EtcdHandle {
  members: EtcdMember[];
  /** comma-separated client URLs, as `--endpoints` wants them */
  endpoints: string;
  dir: string;
  stop(): Promise<void>;
}

async function healthy(url: string): Promise<boolean> {
  const r = await fetch(`${url}/health`).catch(() => undefined);
  if (!r?.ok) return false;
  const body = (await r.json().catch(() => ({}))) as { health?: string };
  return body.health === 'true';
}

/** Starts etcd as one member (size 1) or an N-member cluster on loopback, in a temp dir. */
export async function startEtcd(opts: { size?: number; host?: string } = {}): Promise<EtcdHandle> {
  const bin = requireBinary('etcd');
  const size = opts.size ?? 1;
  const host = opts.host ?? '127.0.0.1';
  const dir = tempDir('etcd');
  const specs: Array<{ name: string; client: number; peer: number }> = [];
  for (let i = 0; i < size; i++)
    specs.push({ name: `m${i}`, client: await freePort(host), peer: await freePort(host) });
  const initialCluster = specs.map((s) => `${s.name}=http://${host}:${s.peer}`).join(',');
  const token = `drover-test-${specs[0]!.client}`;
  const members: EtcdMember[] = specs.map((s) => {
    const clientUrl = `http://${host}:${s.client}`;
    const peerUrl = `http://${host}:${s.peer}`;
    const dataDir = join(dir, s.name);
    let proc: Spawned | undefined;
    const m: EtcdMember = {
      name: s.name,
      clientUrl,
      peerUrl,
      dataDir,
      async start() {
        proc = spawnLogged(bin, [
          `--name=${s.name}`,
          `--data-dir=${dataDir}`,
          `--listen-client-urls=${clientUrl}`,
          `--advertise-client-urls=${clientUrl}`,
          `--listen-peer-urls=${peerUrl}`,
          `--initial-advertise-peer-urls=${peerUrl}`,
          `--initial-cluster=${initialCluster}`,
          `--initial-cluster-token=${token}`,
          '--initial-cluster-state=new',
          '--heartbeat-interval=50',
          '--election-timeout=500',
          '--logger=zap',
          '--log-level=error',
        ]);
      },
      stop: async () => {
        if (proc) await killAndWait(proc);
      },
      kill: async () => {
        if (proc) await killAndWait(proc, 'SIGKILL');
      },
      pid: () => proc?.child.pid,
      output: () => proc?.output() ?? '',
    };
    return m;
  });
  await Promise.all(members.map((m) => m.start()));
  await waitFor(
    `etcd cluster of ${size} healthy`,
    async () => (await Promise.all(members.map((m) => healthy(m.clientUrl)))).every(Boolean),
    {
      timeoutMs: 30_000,
    },
  );
  const handle: EtcdHandle = {
    members,
    endpoints: members.map((m) => m.clientUrl).join(','),
    dir,
    async stop() {
      await Promise.all(members.map((m) => m.stop()));
    },
  };
  autoCleanup(async () => {
    await handle.stop();
    rmrf(dir);
  });
  return handle;
}

export interface HaproxyHandle {
  cfgPath: string;
  dir: string;
  pid(): number | undefined;
  stop(): Promise<void>;
  output(): string;
}

/**
 * Starts haproxy in the foreground (`-db`) with the given config text. `waitPort` is a frontend
 * port to wait for; the config is checked with `haproxy -c` first so a bad config fails loudly.
 */
export async function startHaproxy(
  cfg: string,
  opts: { waitHost?: string; waitPort?: number } = {},
): Promise<HaproxyHandle> {
  const bin = requireBinary('haproxy');
  const dir = tempDir('haproxy');
  const cfgPath = join(dir, 'haproxy.cfg');
  writeFileSync(cfgPath, cfg);
  const check = spawnLogged(bin, ['-c', '-f', cfgPath]);
  const code = await check.exited;
  if (code !== 0) throw new Error(`haproxy -c rejected the config:\n${check.output()}`);
  const proc = spawnLogged(bin, ['-db', '-f', cfgPath]);
  if (opts.waitPort) {
    const host = opts.waitHost ?? '127.0.0.1';
    await waitFor(`haproxy on ${host}:${opts.waitPort}`, async () => {
      if (proc.child.exitCode !== null) throw new Error(`haproxy exited: ${proc.output()}`);
      return tcpOpen(host, opts.waitPort!);
    });
  }
  const handle: HaproxyHandle = {
    cfgPath,
    dir,
    pid: () => proc.child.pid,
    stop: () => killAndWait(proc),
    output: () => proc.output(),
  };
  autoCleanup(async () => {
    await handle.stop();
    rmrf(dir);
  });
  return handle;
}

export { freePort, hasBinary, requireBinary, tcpOpen, tempDir, waitFor } from './proc.js';
