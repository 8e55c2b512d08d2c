import { chmodSync, copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { Agent, type AgentDeps } from '../../agent/agent.js';
import { Applier, ROOT_VAR as R } from '../../agent/applier.js';
import { type AgentOptions, compileAgentOptions } from '../../agent/options.js';
import { ProcessRuntime } from '../../agent/runtime/process.js';
import type { InstanceSpec } from '../../protocol/index.js';
import { killGroups } from './agent-instances.js';
import { autoCleanup, rmrf, tempDir } from './proc.js';
import { natsByUrl } from './servers.js';

export const HTTP_FIXTURE = fileURLToPath(new URL('../fixtures/agent-http-server.mjs', import.meta.url));

type Spec = Omit<InstanceSpec, 'checksum'>;

const RESTART = {
  policy: 'always' as const,
  initialBackoffMs: 300,
  maxBackoffMs: 5000,
  resetAfterMs: 60_000,
  crashLoopThreshold: 5,
};

/** An RFC 1123 host name from a node id: in-process agents share one machine's name otherwise. */
export function hostnameFor(nodeId: string): string {
  return (
    nodeId
      .toLowerCase()
      .replace(/[^a-z0-9-]/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 63) || 'node'
  );
}

/**
 * Options for an in-process test agent: process runtime, fresh data and root dirs, its own host
 * name, the bus CA of the test nats-server at `natsUrl`. Unless `over` gives a join token or
 * creds, `startTestAgent` hands it node credentials as a join would (a "pre-joined" agent), and
 * it trusts the first coordinator key (the pin tests set `coordinatorKeyFingerprint`).
 */
export function testAgentOptions(natsUrl: string, over: Record<string, unknown> = {}): AgentOptions {
  const dataDir = tempDir('agent-data');
  const rootDir = tempDir('agent-root');
  const nodeId = (over.nodeId as string | undefined) ?? `node-${Math.random().toString(36).slice(2, 10)}`;
  const bus = natsByUrl.get(natsUrl);
  const nats = (over.nats as Record<string, unknown> | undefined) ?? {
    servers: [natsUrl],
    ...(bus ? { tls: { ca: bus.caFile } } : {}),
  };
  return compileAgentOptions({
    configText: YAML.stringify({
      nodeId,
      hostname: hostnameFor(nodeId),
      dataDir,
      rootDir,
      runtime: 'process',
      heartbeatInterval: '500ms',
      advertiseAddress: '127.0.0.1',
      labels: { pool: 'test' },
      // trust on first use only when the test names no fingerprint at all (an explicit
      // `coordinatorKeyFingerprint: undefined` tests the agent without a pin)
      insecureTrustFirstCoordinator: !('coordinatorKeyFingerprint' in over),
      ...over,
      nats,
    }),
  });
}

/** Writes `<dataDir>/bus.creds` for a pre-joined agent (no join token, no configured creds). */
async function preJoin(opts: AgentOptions): Promise<void> {
  if (opts.joinToken || opts.nats.credsFile || !opts.nodeId) return;
  const creds = join(opts.dataDir, 'bus.creds');
  if (existsSync(creds)) return;
  const bus = natsByUrl.get(opts.nats.servers[0]!);
  if (!bus) return;
  mkdirSync(opts.dataDir, { recursive: true });
  copyFileSync(await bus.credsFor(opts.nodeId), creds);
  chmodSync(creds, 0o600);
}

/** Starts an agent in this process; at the end of the test its roles are stopped and its dirs removed. */
export async function startTestAgent(opts: AgentOptions, deps: AgentDeps = {}): Promise<Agent> {
  const agent = new Agent(opts, {
    binaries: { binaries: {} },
    processPollIntervalMs: 200,
    statusDebounceMs: 50,
    ...deps,
  });
  autoCleanup(async () => {
    const pids = agent.state === 'created' ? [] : agent.runtime.list().map((s) => s.pid);
    await agent.close().catch(() => {});
    await Promise.race([agent.runtime.stopAll().catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
    killGroups(pids);
    rmrf(opts.dataDir);
    rmrf(opts.rootDir);
  });
  await preJoin(opts);
  await agent.start();
  return agent;
}

export function sleeperSpec(id: string, over: Partial<Spec> = {}): Spec {
  const role = id.split('#')[0]!;
  return {
    id,
    role,
    epoch: 1,
    simulated: false,
    files: [],
    run: { command: '/bin/sleep', args: ['1000'], env: {} },
    restart: RESTART,
    ...over,
  };
}

export function httpFixtureSpec(id: string, port: number, over: Partial<Spec> = {}): Spec {
  const role = id.split('#')[0]!;
  return {
    id,
    role,
    epoch: 1,
    simulated: false,
    files: [{ path: `/etc/${role}/config.txt`, mode: 0o644, content: 'greeting=hello\n' }],
    run: {
      command: process.execPath,
      args: [HTTP_FIXTURE, '--port', String(port), '--config', `${R}/etc/${role}/config.txt`],
      env: { FIXTURE_VERSION: '1' },
      stopTimeoutMs: 3000,
    },
    health: {
      kind: 'http',
      host: '127.0.0.1',
      port,
      path: '/healthz',
      periodMs: 200,
      timeoutMs: 1000,
      initialDelayMs: 0,
      failureThreshold: 2,
      successThreshold: 1,
    },
    restart: RESTART,
    commands: {
      version: {
        command: process.execPath,
        args: ['-e', `fetch('http://127.0.0.1:${port}/version').then((r) => r.text()).then(console.log)`],
        timeoutMs: 5000,
      },
      'show-config': { command: '/bin/cat', args: [`${R}/etc/${role}/config.txt`], timeoutMs: 5000 },
    },
    ports: [port],
    ...over,
  };
}

export function etcdSpec(id: string, clientPort: number, peerPort: number, over: Partial<Spec> = {}): Spec {
  const name = id.replace('#', '-');
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  return {
    id,
    role: 'etcd',
    epoch: 1,
    simulated: false,
    files: [],
    run: {
      command: 'etcd',
      args: [
        `--name=${name}`,
        `--data-dir=${R}/var/lib/etcd/${name}`,
        `--listen-client-urls=${client}`,
        `--advertise-client-urls=${client}`,
        `--listen-peer-urls=${peer}`,
        `--initial-advertise-peer-urls=${peer}`,
        `--initial-cluster=${name}=${peer}`,
        '--initial-cluster-state=new',
        '--logger=zap',
        '--log-level=warn',
      ],
      env: { ETCD_UNSUPPORTED_ARCH: '' },
      stopTimeoutMs: 5000,
    },
    health: {
      kind: 'http',
      host: '127.0.0.1',
      port: clientPort,
      path: '/health',
      periodMs: 300,
      timeoutMs: 1000,
      initialDelayMs: 0,
      failureThreshold: 3,
      successThreshold: 1,
    },
    restart: RESTART,
    commands: {
      'endpoint-health': {
        command: 'etcdctl',
        args: [`--endpoints=${client}`, 'endpoint', 'health'],
        timeoutMs: 10_000,
      },
    },
    ports: [clientPort, peerPort],
    ...over,
  };
}

/**
 * A plan applier on a real process runtime in fresh temp dirs (`<prefix>-data`, `<prefix>-root`);
 * its processes are killed and the runtime closed when the test ends.
 */
export function processApplier(prefix: string) {
  const dataDir = tempDir(`${prefix}-data`);
  const rootDir = tempDir(`${prefix}-root`);
  const runtime = new ProcessRuntime({ dataDir, pollIntervalMs: 100 });
  autoCleanup(async () => {
    killGroups(runtime.list().map((st) => st.pid));
    await runtime.close();
  });
  return { dataDir, rootDir, runtime, applier: new Applier({ runtime, rootDir, dataDir }) };
}
