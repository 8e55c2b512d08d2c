import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import {
  type RunResult,
  readyNodes,
  runCaptured,
  startTestDaemon,
  type TestDaemon,
  type TestDaemonOptions,
} from './daemons.js';
import { rmrf, waitFor } from './proc.js';
import { type SimAgent, startSimAgent } from './sim-agent.js';

/**
 * What the `drover` CLI integration tests (test/integration/cli-*.test.ts) share: the bundled CLI,
 * and a real coordinator on a real nats-server with simulated agents heartbeating every 300 ms.
 */

/** the bundled CLI (`npm run build` makes it) */
export const DROVER = join(process.cwd(), 'dist', 'drover.mjs');

/** Runs the bundled CLI with `env`; never throws on a non-zero exit. */
export function runDrover(env: NodeJS.ProcessEnv, args: string[]): Promise<RunResult> {
  return runCaptured(process.execPath, [DROVER, ...args], { env, timeout: 90_000 });
}

export interface CliDaemon extends TestDaemon {
  /** the simulated agents started so far; `close()` closes them */
  agents: SimAgent[];
  /** starts a simulated agent `nodeId` on 127.0.0.`host`, heartbeating every 300 ms */
  /** a simulated agent; `hostname` defaults to sim-<id> (a taken one holds it Pending) */
  sim(nodeId: string, host: number, labels?: Record<string, string>, hostname?: string): Promise<SimAgent>;
  /** runs the bundled CLI as admin against this coordinator (`extraEnv` on top); never throws */
  drover(args: string[], extraEnv?: NodeJS.ProcessEnv): Promise<RunResult>;
  /** closes the agents and the coordinator and removes the directory */
  close(): Promise<void>;
}

/**
 * `startTestDaemon` with heartbeat 300ms and push timeout 3s (`o.config` adds to or overrides
 * them); with `nodes`, starts one simulated agent per entry (n1, n2, … on 127.0.0.2, .3, …,
 * carrying the entry's labels) and waits until all of them are Ready.
 */
export async function startCliDaemon(
  o: TestDaemonOptions,
  nodes: Array<Record<string, string> | undefined> = [],
): Promise<CliDaemon> {
  const d = await startTestDaemon({
    ...o,
    config: { heartbeatInterval: '300ms', pushTimeout: '3s', ...o.config },
  });
  const agents: SimAgent[] = [];
  const sim = async (nodeId: string, host: number, labels?: Record<string, string>, hostname?: string) => {
    const a = await startSimAgent({
      natsUrl: d.nats.url,
      nodeId,
      address: `127.0.0.${host}`,
      hostname,
      heartbeatMs: 300,
      labels,
    });
    agents.push(a);
    return a;
  };
  const close = async () => {
    for (const a of agents.splice(0)) await a.close();
    await d.coord.close();
    rmrf(d.dir);
  };
  for (const [i, labels] of nodes.entries()) await sim(`n${i + 1}`, i + 2, labels);
  if (nodes.length) await waitFor(`${nodes.length} Ready nodes`, () => readyNodes(d.coord) === nodes.length);
  const drover = (args: string[], extraEnv: NodeJS.ProcessEnv = {}) =>
    runDrover({ ...d.cliEnv, ...extraEnv }, args);
  return { ...d, agents, sim, drover, close };
}

/** Writes a Topology `name` (its cluster of the same name) with `spec` (roles, customRoles, …) to `file`. */
export function writeTopology(file: string, name: string, spec: Record<string, unknown>): string {
  writeFileSync(
    file,
    toYaml({ apiVersion: 'drover.dev/v1', kind: 'Topology', metadata: { name }, cluster: { name }, ...spec }),
  );
  return file;
}
