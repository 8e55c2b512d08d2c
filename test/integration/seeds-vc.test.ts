/**
 * VirtualCluster re-placement tied to liveness (seed 002): two super clusters, each one real agent
 * running a kubelet (lab stand-in). A tenant's two slices go {"r1":1,"r2":1}; when r2's host stops
 * heartbeating and turns Unreachable, its slice moves to r1 and an event says so.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from '../../agent/agent.js';
import type { CoordinatorHandle } from '../../coordinator/daemon.js';
import { validateTopology } from '../../coordinator/topology/index.js';
import { startJoinedAgents, startTestDaemon } from '../helpers/daemons.js';
import { rmrf } from '../helpers/proc.js';
import { waitFor } from '../helpers/servers.js';

let coord: CoordinatorHandle;
let dir: string;
let token: string;
const agents: Agent[] = [];

const api = async (method: string, path: string, body?: unknown) => {
  const r = await fetch(`${coord.api.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return (await r.json()) as Record<string, unknown>;
};

beforeAll(async () => {
  const d = await startTestDaemon({ name: 'seeds-vc', standin: true, config: { unreachableAfter: '2s' } });
  ({ dir, coord, adminToken: token } = d);
  agents.push(
    ...(await startJoinedAgents(
      d.nats.url,
      ['r1', 'r2'].map((c, i) => ({
        nodeId: `vc-${c}`,
        advertiseAddress: `127.0.10.${i + 1}`,
        labels: { 'drover.dev/cluster': c },
      })),
    )),
  );
  for (const c of ['r1', 'r2'])
    await coord.engine.applyTopology(
      validateTopology({
        apiVersion: 'drover.dev/v1',
        kind: 'Topology',
        metadata: { name: c },
        cluster: { name: c, apiEndpoint: { mode: 'external', address: '10.9.9.9' } },
        roles: { kubelet: { everywhere: true } },
      }),
    );
  await waitFor('a kubelet placed in each super cluster', async () => {
    const items = (await api('GET', '/v1/superclusters')).items as Array<{ nodes: number }>;
    return items.length === 2 && items.every((s) => s.nodes === 1);
  });
}, 60_000);

afterAll(async () => {
  await coord?.close();
  rmrf(dir);
});

describe('slices follow super-cluster capacity', () => {
  it('a host going Unreachable moves its slice to the other super cluster', async () => {
    const t = await api('PUT', '/v1/tenants/default', { quota: { cpu: '200m', memory: '200Mi' } });
    expect(t.annotation).toBe('{"r1":1,"r2":1}');
    const stopped = Date.now();
    await agents[1]!.close();
    await waitFor(
      'the slice moved to r1',
      async () => (await api('GET', '/v1/tenants/default')).annotation === '{"r1":2}',
      { timeoutMs: 20_000 },
    );
    const moved = coord.engine.events.list({ kind: 'vc.slices-moved' });
    expect(moved).toHaveLength(1);
    expect(moved[0]!.message).toMatch(/from \{"r1":1,"r2":1\} to \{"r1":2\}/);
    // the node had to be Unreachable first, not merely Suspect: the move follows that event
    const unreachable = coord.engine.events
      .list({ kind: 'node.unreachable' })
      .find((e) => e.nodeId === 'vc-r2');
    expect(unreachable).toBeDefined();
    expect(moved[0]!.seq).toBeGreaterThan(unreachable!.seq);
    expect(Date.now() - stopped).toBeGreaterThanOrEqual(1500);
    const sc = (await api('GET', '/v1/superclusters')).items as Array<{ name: string; nodes: number }>;
    expect(sc.find((s) => s.name === 'r2')!.nodes).toBe(0);
  }, 40_000);
});
