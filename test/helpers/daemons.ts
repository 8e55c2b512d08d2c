/**
 * A real drover-coordinator (the daemon, in process) on a real nats-server, as the CLI and seed
 * integration tests start it, plus the pieces those tests share: approved in-process agents, a
 * count of Ready nodes and a child-process runner that never throws.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify as toYaml } from 'yaml';
import type { Agent } from '../../agent/agent.js';
import { compileCoordinatorOptions } from '../../coordinator/config.js';
import { type CoordinatorHandle, startCoordinator } from '../../coordinator/daemon.js';
import { silentLogger } from '../../lib/logger.js';
import { startTestAgent, testAgentOptions } from './agent-harness.js';
import { rmrf } from './proc.js';
import { type NatsHandle, startNats, tempDir } from './servers.js';

/** the bundled lab stand-in for the Kubernetes binaries (`npm run build` makes it) */
export const STANDIN = join(process.cwd(), 'dist', 'drover-standin.mjs');

export interface TestDaemon {
  nats: NatsHandle;
  /** a fresh temporary directory; the coordinator's data lives under it */
  dir: string;
  coord: CoordinatorHandle;
  /** the admin API token */
  adminToken: string;
  /** an environment for the `drover` CLI aimed at this coordinator as admin */
  cliEnv: NodeJS.ProcessEnv;
  /** a single-use join token from the API (`POST /v1/join-tokens`) and the key fingerprint to pin */
  joinToken(description?: string): Promise<{ token: string; fingerprint: string }>;
}

export interface TestDaemonOptions {
  /** the temporary directory's name */
  name: string;
  /** the data directory, under `dir`; default `coordinator` */
  dataDir?: string;
  standin?: boolean;
  config?: Record<string, unknown>;
  /** the repair ladder's re-provision and instance-reassign timings, which have no config key */
  repair?: NonNullable<Parameters<typeof startCoordinator>[2]>['repair'];
}

/**
 * Starts nats-server (Drover's auth and TLS) and a coordinator on its bus keys with the API on a
 * free port, heartbeat 500ms, Unreachable after 5s and push timeout 5s; `config` adds to or overrides those
 * settings, `standin` adds the lab stand-in as `standinCommand`.
 */
export async function startTestDaemon(o: TestDaemonOptions): Promise<TestDaemon> {
  const nats = await startNats();
  const dir = tempDir(o.name);
  let coord: CoordinatorHandle;
  try {
    coord = await startCoordinator(coordinatorOptions(nats, dir, o), silentLogger, { repair: o.repair });
  } catch (err) {
    rmrf(dir);
    throw err;
  }
  const adminToken = readFileSync(coord.api.adminTokenFile, 'utf8').trim();
  // HOME points at an empty dir so a developer's ~/.config/drover/config.yaml cannot leak in.
  const cliEnv = { PATH: process.env.PATH, HOME: dir, DROVER_URL: coord.api.url, DROVER_TOKEN: adminToken };
  const joinToken = async (description = 'test host') => {
    const r = await fetch(`${coord.api.url}/v1/join-tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ description }),
    });
    const body = (await r.json()) as { token: string; coordinatorKeyFingerprint: string };
    if (r.status !== 201) throw new Error(`POST /v1/join-tokens: HTTP ${r.status}: ${JSON.stringify(body)}`);
    return { token: body.token, fingerprint: body.coordinatorKeyFingerprint };
  };
  return { nats, dir, coord, adminToken, cliEnv, joinToken };
}

/** The options `startTestDaemon` starts its coordinator with (to start it again on the same dir). */
export function coordinatorOptions(nats: NatsHandle, dir: string, o: TestDaemonOptions) {
  return compileCoordinatorOptions({
    file: {
      path: 'test.yaml',
      text: toYaml({
        dataDir: join(dir, o.dataDir ?? 'coordinator'),
        nats: { servers: [nats.url] },
        bus: { dir: nats.bus.auth.dir },
        api: { listen: '127.0.0.1:0' },
        heartbeatInterval: '500ms',
        unreachableAfter: '5s',
        pushTimeout: '5s',
        ...(o.standin ? { standinCommand: [process.execPath, STANDIN] } : {}),
        ...o.config,
      }),
    },
    env: {},
  });
}

/** Starts one in-process agent per entry, each pre-joined (node creds from the test bus). */
export async function startJoinedAgents(
  natsUrl: string,
  nodes: Array<{ nodeId: string; advertiseAddress: string } & Record<string, unknown>>,
): Promise<Agent[]> {
  const agents: Agent[] = [];
  for (const n of nodes) agents.push(await startTestAgent(testAgentOptions(natsUrl, { ...n })));
  return agents;
}

/** How many nodes the coordinator counts as Ready. */
export function readyNodes(coord: CoordinatorHandle): number {
  return coord.engine.nodes.all().filter((n) => coord.engine.nodes.effectiveState(n) === 'Ready').length;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

const execFileP = promisify(execFile);

/** Runs `file args` to completion; never throws on a non-zero exit (code -1: killed or not run). */
export async function runCaptured(
  file: string,
  args: string[],
  opts: { env: NodeJS.ProcessEnv; timeout: number },
): Promise<RunResult> {
  try {
    const r = await execFileP(file, args, opts);
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}
