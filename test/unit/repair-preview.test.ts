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
});
