import { describe, expect, it } from 'vitest';
import { lab, labLeftovers, labOk, readState } from '../helpers/lab-e2e.js';
import { FAST_LIVENESS, labDroverSync, labSession, labUp } from '../helpers/lab-session.js';
import { tempDir, waitFor } from '../helpers/proc.js';

/**
 * `drover lab up --ha` by the steps of docs/lab.md ("Coordinator HA"): three nats-servers as a
 * JetStream cluster, three coordinators, one leading; the CLI (whose config lists every API URL)
 * finds the leader; `lab kill-coordinator --leader` hands the lease to another coordinator under
 * a higher epoch; `lab kill-nats` takes one server away and nothing stops; `lab down` is clean.
 */
describe('lab --ha: three nats-servers, three coordinators, faults by lab command', () => {
  const dir = tempDir('lab-ha');
  const lock = labSession(dir);

  it('comes up with one leader, survives killing it and a nats-server, and goes down clean', async () => {
    await lock.take();
    const up = await labUp(dir, [
      '--ha',
      '--simulated',
      '--nodes',
      '5',
      '--subnet',
      '127.0.86',
      ...FAST_LIVENESS,
    ]);
    expect(up.code).toBe(0);
    expect(up.stdout).toMatch(/coordinators\s+c1 http:\S+, c2 http:\S+, c3 http:\S+\s+\(one leads by lease/);
    const state = readState(dir);
    expect(state.ha?.nats).toHaveLength(3);
    expect(state.coordinator.apiUrl.split(',')).toHaveLength(3);
    const drover = (...args: string[]) => labDroverSync(dir, ...args);
    const leaderOf = (out: string) => /^(c\d)\s+\S+\s+leader\s+(\d+)/m.exec(out);
    const first = await waitFor(
      'a leader with its epoch',
      () => leaderOf(drover('get', 'coordinators')) ?? undefined,
      { timeoutMs: 20_000, intervalMs: 300 },
    );
    expect(drover('get', 'coordinators')).toMatch(/follower/);
    const killed = await labOk(dir, ['kill-coordinator', '--leader']);
    expect(killed.stdout).toMatch(
      new RegExp(`coordinator ${first[1]} killed \\(SIGKILL, pid \\d+\\); it led`),
    );
    const next = await waitFor(
      'another coordinator leads under a higher epoch',
      () => {
        const m = leaderOf(drover('get', 'coordinators'));
        return m && m[1] !== first[1] && Number(m[2]) > Number(first[2]) ? m : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 300 },
    );
    expect(next[1]).not.toBe(first[1]);
    // a write through the CLI goes to the new leader; status shows the dead coordinator
    expect(drover('cordon', 'cp-4')).toMatch(/cp-4/);
    const st = await lab(dir, ['status']);
    expect(st.stdout).toMatch(new RegExp(`coordinator ${first[1]} is down`));
    await labOk(dir, ['revive-coordinator', first[1]!]);
    // each nats-server in turn goes (one of them holds the leader's connection): the fleet carries
    // on, a write lands, every host stays Ready
    for (const [i, name] of ['nats-1', 'nats-2', 'nats-3'].entries()) {
      await labOk(dir, ['kill-nats', name]);
      expect(drover(i % 2 ? 'uncordon' : 'cordon', 'cp-4')).toMatch(/cp-4/);
      await waitFor(
        `every host Ready with ${name} down`,
        () => {
          const rows = drover('get', 'nodes').trim().split('\n').slice(1);
          return rows.length === 5 && rows.every((r) => /\s(Ready|Cordoned)\s/.test(r));
        },
        { timeoutMs: 30_000, intervalMs: 500 },
      );
      const down = await lab(dir, ['status']);
      expect(down.stdout).toMatch(new RegExp(`HA: nats .*${name} down`));
      await labOk(dir, ['revive-nats', name]);
    }
    expect(drover('uncordon', 'cp-4')).toMatch(/cp-4/);
    await waitFor('lab status all up and converged', async () => (await lab(dir, ['status'])).code === 0, {
      timeoutMs: 60_000,
      intervalMs: 1000,
    });
    await labOk(dir, ['down']);
    expect(await labLeftovers(state)).toEqual([]);
  }, 300_000);
});
