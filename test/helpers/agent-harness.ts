import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { Agent, type AgentDeps } from '../../agent/agent.js';
import { Applier, ROOT_VAR as R } from '../../agent/applier.js';
import { type AgentOptions, compileAgentOptions } from '../../agent/options.js';
import { ProcessRuntime } from '../../agent/runtime/process.js';
import type { InstanceSpec } from '../../protocol/index.js';
import { killGroups } from './agent-instances.js';
import { autoCleanup, rmrf, tempDir } from './proc.js';

export const HTTP_FIXTURE = fileURLToPath(new URL('../fixtures/agent-http-server.mjs', import.meta.url));

type Spec = Omit<InstanceSpec, 'checksum'>;

const RESTART = {
  policy: 'always' as const,
  initialBackoffMs: 300,
  maxBackoffMs: 5000,
  resetAfterMs: 60_000,
  crashLoopThreshold: 5,
};

/** Options for an in-process test agent: process runtime, fresh data and root dirs. */
export function testAgentOptions(natsUrl: string, over: Record<string, unknown> = {}): AgentOptions {
  const dataDir = tempDir('agent-data');
  const rootDir = tempDir('agent-root');
  return compileAgentOptions({
    configText: YAML.stringify({
      nodeId: `node-${Math.random().toString(36).slice(2, 10)}`,
      nats: { servers: [natsUrl] },
      dataDir,
      rootDir,
      runtime: 'process',
      heartbeatInterval: '500ms',
      advertiseAddress: '127.0.0.1',
      labels: { pool: 'test' },
      joinToken: 'secret',
      ...over,
    }),
  });
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
