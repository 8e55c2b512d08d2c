import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Agent } from '../../agent/agent.js';
import { type CoordinatorHandle, startCoordinator } from '../../coordinator/daemon.js';
import { parseTopology } from '../../coordinator/topology/index.js';
import { silentLogger } from '../../lib/logger.js';
import { startTestAgent, testAgentOptions } from '../helpers/agent-harness.js';
import { coordinatorOptions, startTestDaemon, type TestDaemon } from '../helpers/daemons.js';
import { rmrf } from '../helpers/proc.js';
import { waitFor } from '../helpers/servers.js';

/**
 * Issue 15, point 10: nothing can wedge an agent. An agent refuses a plan older than the one it
 * applied (a lower coordinator epoch, or the same epoch and a lower generation); these are the
 * ways a coordinator used to fall below that line, each on a real nats-server, the real
 * coordinator (in process, its lowdb store on disk) and a real agent (process runtime, sleepers).
 */

const topology = (roles: string[]) => `
apiVersion: drover.dev/v1
kind: Topology
metadata: { name: pg }
cluster: { name: pg }
customRoles:
${roles.map((r) => `  ${r}:\n    command: /bin/sleep\n    args: ["1000"]`).join('\n')}
roles:
${roles.map((r) => `  ${r}: { replicas: 1 }`).join('\n')}
`;

let d: TestDaemon | undefined;
let coord: CoordinatorHandle | undefined;

afterEach(async () => {
  await coord?.close();
  if (d && d.coord !== coord) await d.coord.close();
  await d?.nats.stop();
  if (d) rmrf(d.dir);
  d = undefined;
  coord = undefined;
});

const running = (agent: Agent, id: string) => agent.runtime.status(id)?.state === 'running';

async function joined(name: string, nodeId: string, address: string) {
  d = await startTestDaemon({ name });
  coord = d.coord;
  const agent = await startTestAgent(
    testAgentOptions(d.nats.url, {
      nodeId,
      advertiseAddress: address,
      labels: { pool: 'w', 'drover.dev/cluster': 'pg' },
    }),
  );
  await waitFor('node registered', () => d!.coord.engine.nodes.get(nodeId), { timeoutMs: 20_000 });
  return agent;
}

async function applyRoles(roles: string[]) {
  await coord!.engine.applyTopology(parseTopology(topology(roles), 'pg.yaml'));
}

/** Waits until the agent applied a plan (not refused one) under `epoch` that runs exactly `ids`. */
async function applied(agent: Agent, ids: string[], epoch = coord!.engine.epoch) {
  return waitFor(
    `${agent.nodeId} applied a plan of epoch ${epoch} running ${ids.join(', ') || 'nothing'}`,
    () => {
      const s = agent.status();
      const have = s.instances.map((i) => i.id).sort();
      return s.plan.state === 'applied' &&
        s.plan.coordinatorEpoch === epoch &&
        JSON.stringify(have) === JSON.stringify([...ids].sort()) &&
        ids.every((id) => running(agent, id))
        ? s.plan
        : undefined;
    },
    { timeoutMs: 30_000 },
  );
}

describe('plan generations (issue 15, point 10)', () => {
  it('a node removed and re-added in the same epoch applies its new plans', async () => {
    let agent = await joined('pg-readd', 'pg-a', '127.0.95.2');
    await applyRoles(['web']);
    await applied(agent, ['web#0']);
    await applyRoles(['web', 'api']);
    await applied(agent, ['web#0', 'api#0']);
    await coord!.engine.remove('pg-a', { force: true });
    const before = await applied(agent, []);
    expect(before.generation).toBeGreaterThan(2);
    // the host comes back: its agent restarts (as after a re-join) with what it applied on disk
    const opts = agent.options;
    await agent.close();
    agent = await startTestAgent(opts);
    await waitFor('node registered again', () => coord!.engine.nodes.get('pg-a'), { timeoutMs: 20_000 });
    const after = await applied(agent, ['web#0', 'api#0']);
    expect(after.coordinatorEpoch).toBe(before.coordinatorEpoch);
    expect(after.generation).toBeGreaterThan(before.generation);
    expect(coord!.engine.events.list({ kind: 'plan.refused' })).toEqual([]);
  }, 120_000);

  it('a coordinator restarted on an older copy of its store: the agent still applies its new plans', async () => {
    const agent = await joined('pg-oldstore', 'pg-b', '127.0.95.3');
    await applyRoles(['web']);
    await applied(agent, ['web#0']);
    const file = join(d!.dir, 'coordinator', 'state.json');
    const snapshot = join(d!.dir, 'state-epoch1.json');
    const restart = async () => {
      await coord!.close();
      coord = await startCoordinator(
        coordinatorOptions(d!.nats, d!.dir, { name: 'pg-oldstore' }),
        silentLogger,
      );
    };
    await coord!.close();
    copyFileSync(file, snapshot);
    coord = await startCoordinator(
      coordinatorOptions(d!.nats, d!.dir, { name: 'pg-oldstore' }),
      silentLogger,
    );
    expect(coord.engine.epoch).toBe(2);
    await applied(agent, ['web#0']);
    await restart();
    expect(coord.engine.epoch).toBe(3);
    const ahead = await applied(agent, ['web#0']);
    // the store goes back to its copy from epoch 1: the next start would be epoch 2, below the agent's 3
    await coord.close();
    copyFileSync(snapshot, file);
    coord = await startCoordinator(
      coordinatorOptions(d!.nats, d!.dir, { name: 'pg-oldstore' }),
      silentLogger,
    );
    await waitFor(
      'epoch raised above the agent',
      () => (coord!.engine.epoch > ahead.coordinatorEpoch ? true : undefined),
      {
        timeoutMs: 20_000,
      },
    );
    expect(coord.engine.events.list({ kind: 'coordinator.epoch-raised' })).toHaveLength(1);
    await applied(agent, ['web#0']);
    await applyRoles(['web', 'api']);
    await applied(agent, ['web#0', 'api#0']);
    // and the raised epoch is what the store holds: the next start is above it again
    const raised = coord.engine.epoch;
    await restart();
    expect(coord.engine.epoch).toBe(raised + 1);
    await applied(agent, ['web#0', 'api#0']);
  }, 180_000);
});
