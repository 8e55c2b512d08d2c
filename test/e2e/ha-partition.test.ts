import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { decodeMessage } from '../../protocol/index.js';
import { HaFleet } from '../helpers/ha-fleet.js';
import { waitFor } from '../helpers/proc.js';
import { webTopology } from '../helpers/topologies.js';

/**
 * The leader partitioned in a network namespace (real nats cluster, coordinators, agents): c1
 * leads from its own namespace; its veth goes down. It must stop acting before its lease could
 * pass (its own log says when), a coordinator on the other side takes over, and once the link is
 * back c1 follows and no agent ever sees its plan epoch go down.
 */
const LEASE_MS = 2000;
const topology = (rev: number) => webTopology(2, rev);

/** When a coordinator's log first says `msg` after `since` (pino's epoch-ms `time`). */
function logged(file: string, msg: string, since: number): number | undefined {
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    try {
      const j = JSON.parse(line) as { time?: number; msg?: string };
      if (j.msg?.startsWith(msg) && (j.time ?? 0) >= since) return j.time;
    } catch {}
  }
  return undefined;
}

describe('coordinator HA: the leader partitioned in a network namespace', () => {
  let f: HaFleet;
  const statuses: Array<{ node: string; epoch: number }> = [];
  const pushes: Array<{ epoch: number; at: number }> = [];

  beforeAll(async () => {
    f = await HaFleet.start({
      subnet: '127.0.124',
      agents: ['w-1', 'w-2', 'w-3'],
      netns: { octet: 79 },
      leaseMs: LEASE_MS,
    });
    const nc = await f.connect();
    const st = nc.subscribe('drover.v1.status.>');
    void (async () => {
      for await (const m of st) {
        try {
          const s = decodeMessage('NodeStatus', m.data);
          statuses.push({ node: s.nodeId, epoch: s.plan.coordinatorEpoch });
        } catch {}
      }
    })();
    const pl = nc.subscribe('drover.v1.plan.>');
    void (async () => {
      for await (const m of pl) {
        try {
          pushes.push({ epoch: decodeMessage('SignedPlan', m.data).plan.coordinatorEpoch, at: Date.now() });
        } catch {}
      }
    })();
    await f.api('PUT', '/v1/topology', topology(0));
    await waitFor('converged', () => f.converged(), {
      timeoutMs: 60_000,
    });
  }, 180_000);
  afterAll(() => f?.close());

  it('the cut-off leader fences itself before its lease ends; another takes over; after the heal it follows', async () => {
    onTestFailed(() => {
      process.stderr.write(`\n${f.logs()}\n`);
    });
    const first = await waitFor('c1 leads', async () => {
      const l = await f.leader();
      return l?.id === 'c1' && l.epoch ? l : undefined;
    });
    const t0 = Date.now();
    await f.partition('c1', true);
    const c1 = f.coordinators.get('c1')!;
    const next = await waitFor(
      'a leader on the other side, under a higher epoch',
      async () => {
        const l = await f.leader();
        return l && l.id !== 'c1' && (l.epoch ?? 0) > first.epoch! ? l : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    const lostAt = await waitFor('c1 logs that it lost the lease', () => logged(c1.log, 'lease lost', t0), {
      timeoutMs: 10_000,
    });
    const acquiredAt = logged(f.coordinators.get(next.id)!.log, 'lease acquired', t0)!;
    // it stopped acting within its renew deadline (3/4 of the lease, plus a renew period of slack)
    expect(lostAt - t0, `c1 fenced ${lostAt - t0} ms after the cut`).toBeLessThanOrEqual(
      LEASE_MS * 0.75 + LEASE_MS / 8 + 250,
    );
    // and before anyone else began to lead
    expect(lostAt).toBeLessThan(acquiredAt);
    const firstPush = await waitFor(
      'the new leader pushes',
      () => pushes.find((p) => p.at >= t0 && p.epoch > first.epoch!),
      {
        timeoutMs: 20_000,
      },
    );
    process.stdout.write(
      `\nFIGURES (HA partition, lease ${LEASE_MS} ms): the cut-off leader fenced itself ${lostAt - t0} ms after the cut; ${next.id} took the lease ${acquiredAt - t0} ms after it and pushed ${firstPush.at - t0} ms after it\n`,
    );
    // a write lands on the new leader while c1 is cut off
    await f.api('PUT', '/v1/topology', topology(1));
    await f.partition('c1', false);
    await waitFor(
      'c1 follows after the heal',
      async () => (await f.coordinatorList())?.find((c) => c.id === 'c1')?.role === 'follower',
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    // the leader did not change with the heal (the views settle within a look or two)
    await waitFor(
      'the leader is still the one elected during the cut',
      async () => (await f.leader())?.id === next.id,
      {
        timeoutMs: 10_000,
        intervalMs: 200,
      },
    );
    await waitFor('converged', () => f.converged(), {
      timeoutMs: 60_000,
    });
    // no agent ever applied a plan of a lower epoch after a higher one
    const last = new Map<string, number>();
    const down: string[] = [];
    for (const s of statuses) {
      if (s.epoch < (last.get(s.node) ?? 0)) down.push(`${s.node}: ${s.epoch} after ${last.get(s.node)}`);
      last.set(s.node, Math.max(last.get(s.node) ?? 0, s.epoch));
    }
    expect(down).toEqual([]);
    for (const [id, nodes] of f.running()) expect(nodes, id).toHaveLength(1);
  }, 180_000);
});
