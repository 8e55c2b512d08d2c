// freezeAndKill (lab/procs.ts) on real processes: a child that appeared after the first listing
// (an agent restarting a role just as its host "loses power") is listed again and killed too,
// where one listing taken before the freeze would leave it running as an orphan.
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { allProcs, freezeAndKill, readStat, withDescendants } from '../../lab/procs.js';
import { waitFor } from '../helpers/wait.js';

describe('freezeAndKill', () => {
  it('kills a child that the first listing did not show', async () => {
    const parent = spawn('sh', ['-c', 'sleep 1000 & wait'], { stdio: 'ignore' });
    const pid = parent.pid!;
    const child = await waitFor('the child', () => withDescendants([pid]).find((p) => p.pid !== pid));
    let calls = 0;
    const killed = freezeAndKill(() => {
      calls++;
      const all = withDescendants([pid], allProcs());
      // the first listing misses the child, as one taken just before the parent forked would
      return calls === 1 ? all.filter((p) => p.pid === pid) : all;
    });
    expect(killed.map((p) => p.pid).sort()).toEqual([pid, child.pid].sort());
    expect(calls).toBeGreaterThanOrEqual(3);
    // gone, or a zombie its (dead) parent left: not running either way
    const running = (p: number) => {
      const st = readStat(p);
      return !!st && st.state !== 'Z' && st.state !== 'X';
    };
    await waitFor('both gone', () => !running(pid) && !running(child.pid), { timeoutMs: 5000 });
  });
});
