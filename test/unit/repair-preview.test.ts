// A topology preview (`drover diff`, `PUT /v1/topology?dryRun=true`) runs the repair policy's
// decisions as a dry run: it acts on nothing (no event, no task, no request used up), and the
// reconcile that follows does exactly what it showed.
import { describe, expect, it } from 'vitest';
import { beatenRepairFleet, webTopology } from '../helpers/repair-fleet.js';

const TOPOLOGY = webTopology(2);

const moves = (d: {
  moved: Array<{ from: { nodeId: string }; to: { instanceId: string; nodeId: string; epoch: number } }>;
}) => d.moved.map((m) => `${m.to.instanceId}: ${m.from.nodeId} -> ${m.to.nodeId} (epoch ${m.to.epoch})`);

describe('topology previews and the repair policy', () => {
  it('a preview with an operator reassign pending shows the move, uses nothing up, and the reconcile then does exactly that', async () => {
    const f = await beatenRepairFleet({ nodes: 4, address: (i) => `10.0.0.${i + 1}`, topology: TOPOLOGY });
    const victim = f.where('web#0')!;
    f.alive.delete(victim);
    await f.advance(11_000); // Unreachable, but not yet past reassignAfter
    expect(f.where('web#0')).toBe(victim);
    const before = f.engine.events.list().length;
    // `drover repair NODE` on an unreachable node: reassign now (the reconcile is not queued yet)
    f.repair.requestReassign('web#0');
    const topology = f.engine.topology('t')!;
    const first = f.engine.previewTopology(topology);
    expect(moves(first)).toHaveLength(1);
    expect(moves(first)[0]).toMatch(new RegExp(`^web#0: ${victim} -> n\\d \\(epoch 2\\)$`));
    // the dry run emitted nothing and used nothing up: a second preview is the same
    expect(
      f.engine.events
        .list()
        .slice(before)
        .map((e) => e.kind),
    ).toEqual([]);
    expect(moves(f.engine.previewTopology(topology))).toEqual(moves(first));
    // the real reconcile does what the preview showed
    f.engine.queue.add('cluster:t');
    await f.engine.queue.idle();
    const a = f.assignment('web#0')!;
    expect(`web#0: ${a.previousNodeId} -> ${a.nodeId} (epoch ${a.epoch})`).toBe(moves(first)[0]);
    expect(f.events('repair.reassign')).toHaveLength(1);
    await f.engine.close();
  });

  it('a dry run while a node is Unreachable and its move is due (maxReassignPerHour: 1) changes nothing — store revision, events, tasks, rate budget — and the real repair then happens', async () => {
    const f = await beatenRepairFleet({
      nodes: 4,
      address: (i) => `10.0.0.${i + 1}`,
      topology: TOPOLOGY.replace(
        'web: { replicas: 2 }',
        'web: { replicas: 2, repair: { maxReassignPerHour: 1 } }',
      ),
    });
    const victim = f.where('web#0')!;
    f.alive.delete(victim);
    await f.advance(11_000); // Unreachable, not yet past reassignAfter (5 s)
    const since = f.engine.nodes.liveness(victim)!.since;
    expect(f.engine.nodes.liveness(victim)!.state).toBe('Unreachable');
    // the move is due now; the reconcile's wake-up comes 50 ms after the grace ends
    const due = since + 5000;
    while (f.clock.now() + 500 < due) await f.advance(500); // the live nodes keep reporting
    f.clock.advance(due + 10 - f.clock.now());
    expect(f.where('web#0')).toBe(victim);
    expect([...f.repair.decide('t', f.engine.currentAssignments('t')).evictions.evictInstances]).toEqual([
      'web#0',
    ]);
    const state = () => ({
      revision: f.store.revision(),
      events: f.engine.events.list().length,
      tasks: f.bus.tasks.length,
      pushes: f.bus.pushes.length,
      rate: JSON.stringify([...f.repair.memoryView().recentMoves]),
      decided: [...f.repair.memoryView().decided],
      where: f.where('web#0'),
    });
    const before = state();
    const topology = f.engine.topology('t')!;
    const first = f.engine.previewTopology(topology);
    expect(moves(first)).toEqual([
      expect.stringMatching(new RegExp(`^web#0: ${victim} -> n\\d \\(epoch 2\\)$`)),
    ]);
    expect(moves(f.engine.previewTopology(topology))).toEqual(moves(first));
    expect(state()).toEqual(before);
    expect(f.repair.memoryView().recentMoves.get('web') ?? []).toEqual([]);
    // the real reconcile: the budget of one move an hour is still there, so web#0 moves
    await f.advance(1000);
    const a = f.assignment('web#0')!;
    expect(`web#0: ${a.previousNodeId} -> ${a.nodeId} (epoch ${a.epoch})`).toBe(moves(first)[0]);
    expect(f.events('repair.reassign')).toHaveLength(1);
    expect(f.events('repair.held')).toEqual([]);
    expect(f.repair.memoryView().recentMoves.get('web')).toHaveLength(1);
    expect(f.store.revision()).toBeGreaterThan(before.revision);
    await f.engine.close();
  });
});
