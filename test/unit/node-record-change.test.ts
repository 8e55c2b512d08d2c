import { describe, expect, it } from 'vitest';
import type { NodeRecord } from '../../coordinator/model.js';
import { NodeRegistry } from '../../coordinator/nodes.js';
import { MemoryStore } from '../../coordinator/store/memory.js';
import { ManualClock } from '../../lib/clock.js';
import { TEST_TIMINGS } from '../helpers/api.js';

/**
 * An operator's change to a node record (cordon, drain, approve) when another write came first:
 * the compare-and-set fails, the record is read again and the change applied to the fresh copy;
 * neither write is lost. (Seen in the HA lab: `drover cordon` right after a failover answered
 * "key nodes/cp-4 is not at revision 77".)
 */
describe('NodeRegistry.change', () => {
  const rec = (over: Partial<NodeRecord> = {}): NodeRecord =>
    ({
      id: 'cp-4',
      hostname: 'cp-4',
      address: '10.0.0.4',
      labels: {},
      state: 'Ready',
      approved: true,
      ...over,
    }) as NodeRecord;

  it('re-reads and re-applies after a conflicting write; the other write survives', async () => {
    const store = new MemoryStore();
    await store.create('nodes/cp-4', rec());
    const nodes = new NodeRegistry(store, new ManualClock(0), TEST_TIMINGS);
    await nodes.load();
    // someone else writes the record behind this registry's back (another coordinator's last write)
    const cur = (await store.get<NodeRecord>('nodes/cp-4'))!;
    await store.update('nodes/cp-4', { ...cur.value, labels: { rack: 'r7' } }, cur.revision);
    const next = await nodes.change('cp-4', (r) => ({ ...r, cordoned: true }));
    expect(next).toMatchObject({ cordoned: true, labels: { rack: 'r7' } });
    expect((await store.get<NodeRecord>('nodes/cp-4'))!.value).toMatchObject({
      cordoned: true,
      labels: { rack: 'r7' },
    });
    expect(nodes.get('cp-4')).toMatchObject({ cordoned: true, labels: { rack: 'r7' } });
  });

  it('gives up after its attempts, and lets other errors through at once', async () => {
    const store = new MemoryStore();
    await store.create('nodes/cp-4', rec());
    const nodes = new NodeRegistry(store, new ManualClock(0), TEST_TIMINGS);
    await nodes.load();
    let calls = 0;
    // a writer that always gets there first
    const racing = async (r: NodeRecord) => {
      const cur = (await store.get<NodeRecord>('nodes/cp-4'))!;
      await store.update('nodes/cp-4', { ...cur.value, hostname: `cp-4-${calls}` }, cur.revision);
      return r;
    };
    const fn = (r: NodeRecord) => {
      calls++;
      return { ...r, cordoned: true };
    };
    const orig = nodes.save.bind(nodes);
    nodes.save = async (r: NodeRecord) => {
      await racing(r);
      return orig(r);
    };
    await expect(nodes.change('cp-4', fn, 3)).rejects.toMatchObject({ code: 'DROVER_ERR_STORE_CONFLICT' });
    expect(calls).toBe(3);
    await expect(nodes.change('nope', fn)).rejects.toThrow(/no node record nope/);
  });
});
