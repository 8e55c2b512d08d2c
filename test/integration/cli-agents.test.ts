import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import type { CoordinatorHandle } from '../../coordinator/daemon.js';
import { echoTopology } from '../helpers/api.js';
import { type RunResult, readyNodes, runCaptured, startTestDaemon } from '../helpers/daemons.js';
import { killAndWait, rmrf, type Spawned, spawnLogged } from '../helpers/proc.js';
import { waitFor } from '../helpers/servers.js';

const DROVER = join(process.cwd(), 'dist', 'drover.mjs');
const AGENT = join(process.cwd(), 'dist', 'drover-agent.mjs');
const NODES = ['a1', 'a2', 'a3'];

let coord: CoordinatorHandle;
let dir: string;
let env: NodeJS.ProcessEnv;
const agents: Spawned[] = [];

const drover = (args: string[]): Promise<RunResult> =>
  runCaptured(process.execPath, [DROVER, ...args], { env, timeout: 90_000 });

/** GET on the echo server an instance runs, straight over TCP: proof that a real process serves. */
async function echoAnswers(address: string): Promise<boolean> {
  const r = await fetch(`http://${address}:18080/`, { signal: AbortSignal.timeout(1000) }).catch(
    () => undefined,
  );
  return r?.ok ?? false;
}

beforeAll(async () => {
  const d = await startTestDaemon({ name: 'cli-agents' });
  const nats = d.nats;
  ({ dir, coord, cliEnv: env } = d);
  for (const [i, id] of NODES.entries()) {
    const cfg = join(dir, `${id}.yaml`);
    // each host joins with its own token and pins the coordinator key, as `drover join-command` says
    const { token, fingerprint } = await d.joinToken(id);
    writeFileSync(
      cfg,
      toYaml({
        nodeId: id,
        nats: { servers: [nats.url] },
        dataDir: join(dir, id, 'data'),
        rootDir: join(dir, id, 'root'),
        runtime: 'process',
        advertiseAddress: `127.0.0.${i + 11}`,
        joinToken: token,
        coordinatorKeyFingerprint: fingerprint,
        // the three share this machine: host names are unique within a cluster
        hostname: id,
        heartbeatInterval: '500ms',
        stopRolesOnExit: true,
        logLevel: 'warn',
      }),
    );
    agents.push(spawnLogged(process.execPath, [AGENT, '--config', cfg]));
  }
  await waitFor(
    'three Ready agents',
    () => {
      for (const a of agents) if (a.child.exitCode !== null) throw new Error(`agent exited: ${a.output()}`);
      return readyNodes(coord) === 3;
    },
    { timeoutMs: 30_000 },
  );
}, 60_000);

afterAll(async () => {
  for (const a of agents) await killAndWait(a, 'SIGTERM', 5000);
  await coord?.close();
  rmrf(dir);
});

describe('drover CLI with real drover-agent processes', () => {
  it('apply --wait runs real instances; get roles -o json shows them converged', async () => {
    const file = join(dir, 'echo.yaml');
    writeFileSync(file, toYaml(echoTopology(2)));
    const a = await drover(['apply', '-f', file, '--wait', '--timeout', '60s']);
    expect(a.code, `${a.stderr}\n${agents.map((x) => x.output()).join('\n')}`).toBe(0);
    const roles = JSON.parse((await drover(['get', 'roles', '-o', 'json'])).stdout).items;
    expect(roles).toEqual([
      expect.objectContaining({ name: 'echo', status: 'Healthy', desired: 2, healthy: 2, simulated: 0 }),
    ]);
    const asg = JSON.parse((await drover(['get', 'assignments', '-o', 'json'])).stdout).items as Array<{
      nodeId: string;
    }>;
    for (const x of asg) {
      const addr = coord.engine.nodes.get(x.nodeId)!.address;
      expect(await echoAnswers(addr), `echo on ${x.nodeId} (${addr})`).toBe(true);
    }
  });

  it('cordon then drain --wait moves the instance to the free node and stops it on the drained one', async () => {
    const before = JSON.parse((await drover(['get', 'assignments', '-o', 'json'])).stdout).items as Array<{
      instanceId: string;
      nodeId: string;
    }>;
    const victim = before[0]!.nodeId;
    const free = NODES.find((n) => !before.some((x) => x.nodeId === n))!;
    expect((await drover(['cordon', victim])).code).toBe(0);
    const d = await drover(['drain', victim, '--wait', '--timeout', '60s']);
    expect(d.code, d.stderr).toBe(0);
    const after = JSON.parse((await drover(['get', 'assignments', '-o', 'json'])).stdout).items as Array<{
      nodeId: string;
    }>;
    expect(after.map((x) => x.nodeId).sort()).toEqual([before[1]!.nodeId, free].sort());
    await waitFor(
      'the moved instance serves on its new node',
      () => echoAnswers(coord.engine.nodes.get(free)!.address),
      { timeoutMs: 30_000 },
    );
    expect(await echoAnswers(coord.engine.nodes.get(victim)!.address)).toBe(false);
    const st = await drover(['status', '--wait', '--timeout', '60s', '-o', 'json']);
    expect(JSON.parse(st.stdout).converged).toBe(true);
  });
});
