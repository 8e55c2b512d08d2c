// The etcd quorum watch: a cluster below a majority of healthy members for the grace period gets
// one `etcd.quorum-lost` alert naming the newest snapshot and the commands to restore from it;
// a short loss (start-up, a blip) none; quorum back brings `etcd.quorum-restored`.
import { describe, expect, it } from 'vitest';
import { QuorumWatch, quorumOf, quorumVerdicts } from '../../coordinator/etcd/quorum-watch.js';
import type { SnapshotRecord } from '../../coordinator/etcd/snapshot-book.js';
import type { MemberView } from '../../coordinator/etcd/snapshot-sources.js';
import type { EventInput } from '../../coordinator/events.js';
import { ManualClock } from '../../lib/clock.js';

const member = (i: number, healthy: boolean, state: MemberView['state'] = 'Ready'): MemberView => ({
  assignment: { instanceId: `etcd#${i}`, role: 'etcd', nodeId: `cp-${i}` } as never,
  node: { id: `cp-${i}`, address: `10.0.0.${i}` } as never,
  state,
  healthy,
});

const snap = {
  id: 'prod-20261204T060000Z-abc123',
  revision: 812,
  takenAt: '2026-12-04T06:00:00.000Z',
} as SnapshotRecord;

describe('etcd quorum watch', () => {
  it('quorum is a majority; an unhealthy or Unreachable member does not count', () => {
    expect([1, 2, 3, 4, 5].map(quorumOf)).toEqual([1, 2, 2, 3, 3]);
    expect(
      quorumVerdicts([
        { cluster: 'a', members: [member(0, true), member(1, true), member(2, false)] },
        { cluster: 'b', members: [member(0, true), member(1, true, 'Unreachable'), member(2, false)] },
        { cluster: 'c', members: [] },
      ]),
    ).toEqual([
      { cluster: 'a', members: 3, healthy: 2, lost: false },
      { cluster: 'b', members: 3, healthy: 1, lost: true },
    ]);
  });

  it('one alert after the grace period, with the snapshot and the commands; quorum back is said too', () => {
    const clock = new ManualClock(1_000_000);
    const events: EventInput[] = [];
    let members = [member(0, true), member(1, false, 'Unreachable'), member(2, false, 'Unreachable')];
    const w = new QuorumWatch({
      clusters: () => [{ cluster: 'prod', members }],
      newestSnapshot: () => snap,
      emit: (e) => void events.push(e),
      clock,
      graceMs: 60_000,
    });
    w.check();
    clock.advance(59_999);
    w.check();
    expect(events).toEqual([]);
    clock.advance(1);
    w.check();
    clock.advance(60_000);
    w.check();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ kind: 'etcd.quorum-lost', severity: 'error', cluster: 'prod' });
    expect(events[0]!.message).toMatch(/1 of 3 members healthy, 2 needed/);
    expect(events[0]!.message).toContain(
      `drover etcd restore --cluster prod --snapshot ${snap.id} --yes --wait`,
    );
    members = [member(0, true), member(1, true), member(2, false)];
    w.check();
    expect(events.map((e) => e.kind)).toEqual(['etcd.quorum-lost', 'etcd.quorum-restored']);
  });

  it('a loss shorter than the grace period is no alert; without a snapshot the alert says so', () => {
    const clock = new ManualClock(0);
    const events: EventInput[] = [];
    let healthy = false;
    const w = new QuorumWatch({
      clusters: () => [
        { cluster: 'c', members: [member(0, healthy), member(1, healthy), member(2, healthy)] },
      ],
      newestSnapshot: () => undefined,
      emit: (e) => void events.push(e),
      clock,
    });
    w.check();
    clock.advance(30_000);
    healthy = true;
    w.check();
    healthy = false;
    clock.advance(30_000);
    w.check();
    expect(events).toEqual([]);
    clock.advance(60_000);
    w.check();
    expect(events[0]!.message).toMatch(/no etcd snapshot of c is kept: take backups/);
  });
});
