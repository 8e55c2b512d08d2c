/**
 * Watches each cluster's etcd for a lost quorum: fewer healthy members (on live nodes) than a
 * majority of the members placed. Member replacement cannot help then (every membership change
 * needs a quorum, and is refused); the way back is a restore from a snapshot. So the alert
 * `etcd.quorum-lost` (severity error) names the newest snapshot and the commands to run, once per
 * episode, after the loss has lasted `graceMs` (default 60 s: members starting up, a coordinator
 * that has not heard every status yet, a short partition are no loss); `etcd.quorum-restored`
 * says when a majority is healthy again.
 *
 * `quorumVerdicts` decides purely from the members' health; `QuorumWatch.check` acts on it.
 */
import type { Clock } from '../../lib/clock.js';
import type { EventInput } from '../events.js';
import type { SnapshotRecord } from './snapshot-book.js';
import type { MemberView } from './snapshot-sources.js';

export interface QuorumVerdict {
  cluster: string;
  members: number;
  healthy: number;
  lost: boolean;
}

/** A majority of `members`. */
export const quorumOf = (members: number) => Math.floor(members / 2) + 1;

export function quorumVerdicts(
  clusters: ReadonlyArray<{ cluster: string; members: readonly MemberView[] }>,
): QuorumVerdict[] {
  return clusters
    .filter((c) => c.members.length > 0)
    .map((c) => {
      const healthy = c.members.filter((m) => m.healthy && m.state !== 'Unreachable').length;
      return {
        cluster: c.cluster,
        members: c.members.length,
        healthy,
        lost: healthy < quorumOf(c.members.length),
      };
    });
}

/** The way back the alert names: the restore command with the newest snapshot. */
export function restoreSteps(cluster: string, snapshot: SnapshotRecord | undefined): string {
  if (!snapshot)
    return `no etcd snapshot of ${cluster} is kept: take backups (\`drover etcd snapshot save\`); recovery then needs a surviving member's data dir (etcdutl snapshot restore of its member/snap/db with --skip-hash-check)`;
  return `restore from the newest snapshot ${snapshot.id} (revision ${snapshot.revision}, taken ${snapshot.takenAt}): \`drover etcd restore --cluster ${cluster} --snapshot ${snapshot.id} --yes --wait\` (check first with --dry-run; docs/operations.md, "Restoring etcd after a lost quorum")`;
}

export class QuorumWatch {
  private readonly lost = new Set<string>();
  /** since when each cluster has been below quorum (not yet announced) */
  private readonly since = new Map<string, number>();
  private timer: { stop(): void } | undefined;

  constructor(
    private readonly p: {
      clusters: () => Array<{ cluster: string; members: MemberView[] }>;
      newestSnapshot: (cluster: string) => SnapshotRecord | undefined;
      emit: (e: EventInput) => void;
      clock: Clock;
      graceMs?: number;
    },
  ) {}

  /** One pass: alerts for clusters that lost quorum since the last, notes the ones that got it back. */
  check(): QuorumVerdict[] {
    const verdicts = quorumVerdicts(this.p.clusters());
    const now = this.p.clock.now();
    const seen = new Set(verdicts.map((v) => v.cluster));
    for (const c of [...this.since.keys()]) if (!seen.has(c)) this.since.delete(c);
    for (const v of verdicts) {
      if (!v.lost) this.since.delete(v.cluster);
      else if (!this.since.has(v.cluster)) this.since.set(v.cluster, now);
      const lasted = v.lost && now - this.since.get(v.cluster)! >= (this.p.graceMs ?? 60_000);
      if (lasted && !this.lost.has(v.cluster)) {
        this.lost.add(v.cluster);
        const snapshot = this.p.newestSnapshot(v.cluster);
        this.p.emit({
          kind: 'etcd.quorum-lost',
          severity: 'error',
          cluster: v.cluster,
          role: 'etcd',
          message: `etcd of cluster ${v.cluster} has lost quorum: ${v.healthy} of ${v.members} members healthy, ${quorumOf(v.members)} needed; members cannot be replaced until it is back. If the others are gone for good, ${restoreSteps(v.cluster, snapshot)}`,
          data: { members: v.members, healthy: v.healthy, snapshot: snapshot?.id },
        });
      } else if (!v.lost && this.lost.delete(v.cluster))
        this.p.emit({
          kind: 'etcd.quorum-restored',
          severity: 'info',
          cluster: v.cluster,
          role: 'etcd',
          message: `etcd of cluster ${v.cluster} has quorum again: ${v.healthy} of ${v.members} members healthy`,
        });
    }
    return verdicts;
  }

  /** Checks every `everyMs` (default 5 s). */
  start(everyMs = 5000): void {
    this.timer ??= this.p.clock.every(everyMs, () => void this.check());
  }

  stop(): void {
    this.timer?.stop();
    this.timer = undefined;
  }
}
