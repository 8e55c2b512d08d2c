import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { Fleet, poolNodes } from '../helpers/fleet.js';
import { waitFor } from '../helpers/proc.js';

/**
 * A coordinator stall (a VM pause): the real `drover-coordinator` child process is SIGSTOPped for
 * longer than the Unreachable threshold, then SIGCONTed, with three real agents heartbeating all
 * along. Short timings: heartbeat 500ms, Unreachable after 2s, reassign after 2s.
 *
 * Before the liveness re-base, the first sweep after the resume saw every node silent for the
 * whole pause and marked the whole fleet Unreachable.
 */

const STALL_MS = 6000;

const SUPER = `apiVersion: drover.dev/v1
kind: Topology
metadata: { name: sc }
cluster:
  name: sc
  apiEndpoint: { mode: external, address: 10.9.9.9 }
roles:
  kubelet: { everywhere: true }
`;

describe('liveness: a coordinator stall does not mark the fleet Unreachable (real coordinator process, SIGSTOP/SIGCONT)', () => {
  let fleet: Fleet;

  beforeAll(async () => {
    fleet = await Fleet.start({
      cluster: 'sc',
      subnet: '127.0.113',
      coordinator: 'child',
      nodes: poolNodes('worker', 'n-1', 'n-2', 'n-3'),
    });
    // a super cluster (a kubelet on each node) holding a VirtualCluster tenant's slices
    await fleet.applyTopology(SUPER);
    await waitFor(
      'the kubelets to be assigned',
      async () => (await fleet.assignments()).filter((a) => a.role === 'kubelet').length === 3,
      { timeoutMs: 20_000, intervalMs: 200 },
    );
    const t = await fleet.api<{ annotation: string }>('PUT', '/v1/tenants/t1', { slices: 6 });
    expect(t.annotation).toBe('{"sc":6}');
  }, 60_000);

  afterAll(() => fleet?.close());

  it('SIGSTOP for 6 s (> unreachableAfter 2s): no node Unreachable, no node.unreachable event, no VirtualCluster slice moved; a node that stays silent after the resume still becomes Unreachable after the threshold', async () => {
    onTestFailed(() => {
      process.stderr.write(`\n${fleet.logs()}\n`);
    });
    const nodeStates = async () =>
      Object.fromEntries(
        (await fleet.api<{ items: Array<{ id: string; state: string }> }>('GET', '/v1/nodes')).items.map(
          (n) => [n.id, n.state],
        ),
      );
    expect(await nodeStates()).toEqual({ 'n-1': 'Ready', 'n-2': 'Ready', 'n-3': 'Ready' });
    const mark = fleet.mark();
    // n-3 really goes silent (its agent freezes) just before the coordinator pauses, and stays so
    fleet.pause('n-3');
    fleet.pauseCoordinator();
    await new Promise((r) => setTimeout(r, STALL_MS));
    fleet.resumeCoordinator();
    const resumedAt = Date.now();

    // n-3 is silent since before the pause: Unreachable 2 s after the resume, not at once, not never
    const e = await fleet.waitEvent(
      'n-3 to become Unreachable',
      (x) => x.kind === 'node.unreachable' && x.nodeId === 'n-3',
      15_000,
      mark,
    );
    const after = Date.now() - resumedAt;
    expect(after).toBeGreaterThanOrEqual(1500);
    expect(after).toBeLessThan(6000);
    // and the others stayed Ready all along
    await new Promise((r) => setTimeout(r, 1000));
    const states = await nodeStates();
    expect(states).toEqual({ 'n-1': 'Ready', 'n-2': 'Ready', 'n-3': 'Unreachable' });
    const unreachable = fleet.since(mark).filter((x) => x.kind === 'node.unreachable');
    expect(unreachable.map((x) => x.nodeId)).toEqual(['n-3']);
    // silence counted from the resume: ~2 s, not the 6 s of the pause plus that
    const silent = Number(/no heartbeat for (\d+\.\d)s/.exec(e.message)?.[1]);
    expect(silent).toBeGreaterThanOrEqual(2);
    expect(silent).toBeLessThan(STALL_MS / 1000);
    // the VirtualCluster slices never moved (they went to {} and back before)
    expect(fleet.since(mark).filter((x) => x.kind === 'vc.slices-moved')).toEqual([]);
    expect((await fleet.api<{ annotation: string }>('GET', '/v1/tenants/t1')).annotation).toBe('{"sc":6}');
    const stalled = fleet.since(mark).filter((x) => x.kind === 'coordinator.stalled');
    expect(stalled.length).toBeGreaterThanOrEqual(1); // a loaded CI machine may add a short one
    expect(stalled[0]!.message).toMatch(/stalled for \d+\.\ds/);
    expect((stalled[0]!.data as { gapMs: number }).gapMs).toBeGreaterThanOrEqual(STALL_MS - 500);

    fleet.resume('n-3');
    await waitFor('n-3 to be Ready again', async () => (await nodeStates())['n-3'] === 'Ready', {
      timeoutMs: 10_000,
      intervalMs: 100,
    });
  }, 60_000);
});
