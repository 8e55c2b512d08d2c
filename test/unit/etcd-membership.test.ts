// The etcd membership reconcile on its own work-queue key (`etcd:<cluster>`), with a real
// WorkQueue and a fake EtcdAdmin (a narrow port): the queue's one-in-flight-per-key rule
// serialises membership changes, whoever asked hears the outcome of a run that started after.
import { describe, expect, it } from 'vitest';
import type { EtcdAdmin, EtcdMemberInfo } from '../../coordinator/etcd/admin.js';
import { EtcdMembership, etcdKey } from '../../coordinator/etcd/membership.js';
import type { EventInput } from '../../coordinator/events.js';
import type { Assignment, NodeRecord } from '../../coordinator/model.js';
import { WorkQueue } from '../../coordinator/workqueue.js';
import { ManualClock } from '../../lib/clock.js';
import { silentLogger } from '../../lib/logger.js';
import type { Facts } from '../../protocol/index.js';

const node = (i: number, state: NodeRecord['state'] = 'Ready'): NodeRecord => ({
  id: `n${i}`,
  hostname: `n${i}`,
  address: `10.0.0.${i}`,
  labels: {},
  state,
  facts: {} as Facts,
  fingerprint: { machineId: `n${i}`, macs: [] },
  approved: true,
  cordoned: false,
  createdAt: 't',
  updatedAt: 't',
});
const member = (i: number): EtcdMemberInfo => ({
  id: String(100 + i),
  name: `etcd-${i}`,
  peerURLs: [`http://10.0.0.${i}:2380`],
  clientURLs: [`http://10.0.0.${i}:2379`],
  isLearner: false,
});
const etcd = (ordinal: number, nodeId: string, existing = false): Assignment =>
  ({
    instanceId: `etcd#${ordinal}`,
    role: 'etcd',
    ordinal,
    nodeId,
    epoch: existing ? 2 : 1,
    cluster: 'c',
    since: 't',
    ...(existing ? { existing: true, previousNodeId: 'n9' } : {}),
  }) as Assignment;

function setup(o: {
  members: EtcdMemberInfo[];
  nodes: NodeRecord[];
  assignments: Assignment[];
  /** how many `member add` calls etcd turns down as not ready (its "unhealthy cluster") */
  notReady?: number;
}) {
  const clock = new ManualClock(0);
  const events: EventInput[] = [];
  const calls: string[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let gate: Promise<void> = Promise.resolve();
  const members = [...o.members];
  let notReady = o.notReady ?? 0;
  const admin: EtcdAdmin = {
    async memberList() {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      calls.push('list');
      await gate;
      inFlight--;
      return [...members];
    },
    async healthyEndpoints(urls) {
      return urls;
    },
    async memberRemove(id) {
      calls.push(`remove ${id}`);
      members.splice(
        members.findIndex((m) => m.id === id),
        1,
      );
    },
    async memberAdd(peerURLs, _endpoints, waitMs) {
      calls.push(`add ${peerURLs.join(',')} waitMs=${waitMs}`);
      if (notReady-- > 0)
        throw new Error(
          'no etcd endpoint answered /v3/cluster/member/add: http://10.0.0.1:2379/v3/cluster/member/add: HTTP 500: etcdserver: unhealthy cluster',
        );
      const m = { id: '999', name: '', peerURLs, clientURLs: [], isLearner: false };
      members.push(m);
      return m;
    },
  };
  let membership!: EtcdMembership;
  const queue = new WorkQueue(
    async (key) => (key.startsWith('etcd:') ? membership.reconcile(key.slice(5)) : undefined),
    { clock },
  );
  membership = new EtcdMembership({
    assignments: () => o.assignments,
    nodes: () => o.nodes,
    emit: (e) => void events.push(e),
    enqueue: (k) => queue.add(k),
    admin: () => admin,
    clock,
    log: silentLogger,
  });
  return {
    membership,
    queue,
    clock,
    events,
    calls,
    members,
    maxInFlight: () => maxInFlight,
    hold: () => {
      let release!: () => void;
      gate = new Promise((r) => (release = r));
      return () => release();
    },
  };
}

describe('etcd membership on its own queue key', () => {
  it('a moved member: the dead one removed and the joiner added through the survivors, one run in flight at a time', async () => {
    const s = setup({
      members: [member(1), member(2), member(3)],
      nodes: [node(1), node(2), node(3, 'Unreachable'), node(4)],
      assignments: [etcd(0, 'n1'), etcd(1, 'n2'), etcd(2, 'n4', true)],
    });
    const release = s.hold();
    const first = s.membership.request('c');
    const second = s.membership.request('c'); // queued while the first is in flight
    await new Promise((r) => setImmediate(r));
    expect(s.queue.active).toBe(1);
    release();
    expect(await first).toBe('done');
    expect(await second).toBe('done');
    await s.queue.idle();
    expect(s.maxInFlight()).toBe(1);
    expect(s.calls).toEqual(['list', 'remove 103', 'add http://10.0.0.4:2380 waitMs=0', 'list']);
    expect(s.events.map((e) => e.kind)).toEqual(['etcd.member-removed', 'etcd.member-added']);
    expect(etcdKey('c')).toBe('etcd:c');
  });

  it('afterPlacement runs it for a joiner, then not again once confirmed', async () => {
    const s = setup({
      members: [member(1), member(2), member(3)],
      nodes: [node(1), node(2), node(3, 'Unreachable'), node(4)],
      assignments: [etcd(0, 'n1'), etcd(1, 'n2'), etcd(2, 'n4', true)],
    });
    expect(await s.membership.afterPlacement('c')).toBeUndefined();
    const runs = s.calls.length;
    expect(await s.membership.afterPlacement('c')).toBeUndefined();
    expect(s.calls.length).toBe(runs);
  });

  it('etcd not ready for the add ("unhealthy cluster"): the run ends at once without waiting on the clock, the caller asks again in 500 ms and the add goes through', async () => {
    const s = setup({
      members: [member(1), member(2), member(3)],
      nodes: [node(1), node(2), node(3, 'Unreachable'), node(4)],
      assignments: [etcd(0, 'n1'), etcd(1, 'n2'), etcd(2, 'n4', true)],
      notReady: 1,
    });
    // the manual clock is never advanced: a run that waited on it would never end
    expect(await s.membership.afterPlacement('c')).toBe(500);
    await s.queue.idle();
    expect(s.clock.pending()).toBe(0);
    expect(s.calls).toEqual(['list', 'remove 103', 'add http://10.0.0.4:2380 waitMs=0']);
    // level-triggered: the next run finds the dead member gone and adds the joiner
    expect(await s.membership.afterPlacement('c')).toBeUndefined();
    expect(s.calls.slice(3)).toEqual(['list', 'add http://10.0.0.4:2380 waitMs=0']);
    expect(s.events.map((e) => e.kind)).toEqual(['etcd.member-removed', 'etcd.member-added']);
  });

  it('a change that would break quorum is refused with an event; the caller retries later', async () => {
    const s = setup({
      members: [member(1), member(2), member(3)],
      nodes: [node(1), node(2, 'Unreachable'), node(3, 'Unreachable'), node(4)],
      assignments: [etcd(0, 'n1'), etcd(1, 'n2'), etcd(2, 'n4', true)],
    });
    expect(await s.membership.afterPlacement('c')).toBe(5000);
    expect(s.calls).toEqual(['list']);
    expect(s.events.map((e) => [e.kind, e.severity])).toEqual([['etcd.replace-refused', 'error']]);
  });

  it('a request the queue never runs (closed) gives up after waitMs as pending', async () => {
    const s = setup({ members: [member(1)], nodes: [node(1)], assignments: [etcd(0, 'n1')] });
    s.queue.close();
    const r = s.membership.request('c');
    s.clock.advance(30_000);
    expect(await r).toBe('pending');
    expect(s.calls).toEqual([]);
  });

  it('close() ends every wait at once, and later requests answer pending without waiting (shutdown never waits out waitMs)', async () => {
    const s = setup({ members: [member(1)], nodes: [node(1)], assignments: [etcd(0, 'n1')] });
    s.queue.close();
    const waiting = s.membership.request('c');
    s.membership.close();
    expect(await waiting).toBe('pending');
    expect(await s.membership.request('c')).toBe('pending');
    expect(s.calls).toEqual([]);
  });
});
