import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Agent } from '../../agent/agent.js';
import { compileCoordinatorOptions } from '../../coordinator/config.js';
import { type CoordinatorHandle, startCoordinator } from '../../coordinator/daemon.js';
import { parseTopology } from '../../coordinator/topology/index.js';
import { silentLogger } from '../../lib/logger.js';
import { startTestAgent, testAgentOptions } from '../helpers/agent-harness.js';
import { autoCleanup, rmrf, tempDir } from '../helpers/proc.js';
import { startNats, waitFor } from '../helpers/servers.js';

async function coordinator(natsUrl: string, bus: { auth: { dir: string } }): Promise<CoordinatorHandle> {
  const dataDir = tempDir('coord');
  const opts = compileCoordinatorOptions({
    flags: {
      'data-dir': dataDir,
      'nats-servers': natsUrl,
      'bus-dir': bus.auth.dir,
      'api-listen': '127.0.0.1:0',
      'heartbeat-interval': '500ms',
      'unreachable-after': '5s',
    },
  });
  const h = await startCoordinator(opts, silentLogger);
  autoCleanup(async () => {
    await h.close();
    rmrf(dataDir);
  });
  return h;
}

async function get(url: string): Promise<string | undefined> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(1000) });
    return r.ok ? await r.text() : undefined;
  } catch {
    return undefined;
  }
}

/** Healthy echo instances as the agents report them: instance id → node id. */
function healthy(h: CoordinatorHandle, role: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const n of h.engine.nodes.all()) {
    for (const i of h.engine.nodes.liveness(n.id)?.status?.instances ?? []) {
      if (i.role === role && i.phase === 'Healthy') out.set(i.id, n.id);
    }
  }
  return out;
}

const topologyText = (replicas: number) =>
  readFileSync(new URL('../../examples/custom.yaml', import.meta.url), 'utf8').replace(
    /replicas: 2/,
    `replicas: ${replicas}`,
  );

describe('coordinator + 3 real agents over a real nats-server', () => {
  it('a custom role converges, follows a replica change, and file drift is put right', async () => {
    const nats = await startNats();
    const h = await coordinator(nats.url, nats.bus);
    // one batch token for the three hosts; each pins the coordinator's key
    const { token } = await h.joinTokens.create({ uses: 3, description: 'e2e batch' });
    const agents: Agent[] = [];
    for (let i = 0; i < 3; i++) {
      agents.push(
        await startTestAgent(
          testAgentOptions(nats.url, {
            nodeId: `e2e-${i}`,
            advertiseAddress: `127.0.0.${i + 2}`,
            joinToken: token,
            coordinatorKeyFingerprint: h.keyFingerprint,
            driftCheckInterval: '1s',
            labels: { pool: 'test', 'drover.dev/cluster': 'custom' },
          }),
        ),
      );
    }
    await waitFor(
      '3 nodes Ready',
      () => h.engine.nodes.all().filter((n) => h.engine.nodes.effectiveState(n) === 'Ready').length === 3,
    );

    await h.engine.applyTopology(parseTopology(topologyText(2), 'custom.yaml'));
    const two = await waitFor(
      '2 healthy echo instances',
      () => {
        const m = healthy(h, 'echo');
        return m.size === 2 && h.engine.converged('custom') ? m : undefined;
      },
      { timeoutMs: 30_000 },
    );
    // Exactly the nodes the coordinator chose serve the role, on their own addresses.
    const placed = h.engine.currentAssignments('custom');
    expect(placed.map((a) => a.instanceId).sort()).toEqual(['echo#0', 'echo#1']);
    expect(new Set(placed.map((a) => a.nodeId)).size).toBe(2);
    for (const a of placed) {
      expect(two.get(a.instanceId)).toBe(a.nodeId);
      const addr = h.engine.nodes.get(a.nodeId)!.address;
      expect(await get(`http://${addr}:8080/`)).toContain(`hello from ${a.instanceId}`);
    }

    await h.engine.applyTopology(parseTopology(topologyText(3), 'custom.yaml'));
    await waitFor(
      '3 healthy echo instances',
      () => healthy(h, 'echo').size === 3 && h.engine.converged('custom'),
      { timeoutMs: 30_000 },
    );
    for (let i = 0; i < 3; i++) expect(await get(`http://127.0.0.${i + 2}:8080/healthz`)).toBe('ok\n');

    // Change a role file behind the agent's back: the agent rewrites it and restarts the instance.
    const victim = agents[0]!;
    const file = join(victim.options.rootDir, 'opt/drover-echo/echo.cjs');
    const original = readFileSync(file, 'utf8');
    const echoId = victim.instanceStatuses().find((s) => s.role === 'echo')!.id;
    const pidBefore = victim.runtime.status(echoId)?.pid;
    expect(pidBefore).toBeGreaterThan(0);
    writeFileSync(file, original.replace("'ok\\n'", "'tampered\\n'"));
    await waitFor('file restored', () => readFileSync(file, 'utf8') === original, { timeoutMs: 15_000 });
    await waitFor(
      'echo back to health on the tampered node',
      async () => (await get('http://127.0.0.2:8080/healthz')) === 'ok\n',
      { timeoutMs: 15_000 },
    );
    // the instance was restarted on the restored file: a new process
    await waitFor('restarted echo', () => {
      const pid = victim.runtime.status(echoId)?.pid;
      return pid !== undefined && pid !== pidBefore;
    });
    expect(h.engine.converged('custom')).toBe(true);
  });
});
