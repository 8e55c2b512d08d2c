import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ProcessRuntime } from '../../agent/runtime/process.js';
import { readProcStat } from '../../agent/runtime/procfs.js';
import { ManualClock } from '../../lib/clock.js';
import { alive, FAST_RESTART, killGroups, sleeper } from '../helpers/agent-instances.js';
import { tempDir, waitFor } from '../helpers/proc.js';

const runtimes: ProcessRuntime[] = [];
const pids = new Set<number>();
afterEach(async () => {
  for (const r of runtimes.splice(0)) {
    await r.stopAll().catch(() => {});
    await r.close();
  }
  killGroups(pids);
  pids.clear();
});

function make(opts: Partial<ConstructorParameters<typeof ProcessRuntime>[0]> = {}) {
  const r = new ProcessRuntime({ dataDir: tempDir('prt'), pollIntervalMs: 50, ...opts });
  runtimes.push(r);
  return r;
}

async function runningPid(r: ProcessRuntime, id: string, not?: number): Promise<number> {
  return waitFor(`${id} running`, () => {
    const s = r.status(id);
    if (s?.pid && s.pid !== not && (s.state === 'running' || s.state === 'crashloop')) {
      pids.add(s.pid);
      return s.pid;
    }
    return undefined;
  });
}

describe('process runtime', () => {
  it('restarts a killed role with exponential backoff: 1s doubling to a 60s cap, reset after a stable minute', async () => {
    const clock = new ManualClock(1_000_000);
    const r = make({ clock });
    await r.start(sleeper('web#0'));
    let pid = await runningPid(r, 'web#0');
    const schedule: number[] = [];
    for (let i = 0; i < 8; i++) {
      process.kill(pid, 'SIGKILL');
      const s = await waitFor('exit noticed', () => {
        const st = r.status('web#0');
        return st?.pid === undefined && st?.nextRestartDelayMs !== undefined ? st : undefined;
      });
      schedule.push(s.nextRestartDelayMs!);
      expect(s.lastError).toBe('killed by SIGKILL');
      // One millisecond early: still down.
      clock.advance(s.nextRestartDelayMs! - 1);
      expect(r.status('web#0')?.pid).toBeUndefined();
      clock.advance(1);
      pid = await runningPid(r, 'web#0', pid);
    }
    expect(schedule).toEqual([1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000]);
    const st = r.status('web#0')!;
    expect(st.restarts).toBe(8);
    expect(st.state).toBe('crashloop'); // 8 failures in a row >= threshold 5
    // A run of resetAfterMs (60 s) resets the backoff and the crash loop.
    clock.advance(60_000);
    expect(r.status('web#0')?.state).toBe('running');
    expect(r.status('web#0')?.consecutiveFailures).toBe(0);
    process.kill(pid, 'SIGKILL');
    const s = await waitFor('exit noticed', () => r.status('web#0')?.nextRestartDelayMs);
    expect(s).toBe(1000);
  });

  it('holds a crashed instance’s restart while the plan may be stale, at most restartHoldMaxMs, and restarts when it clears', async () => {
    const clock = new ManualClock(1_000_000);
    let stale = true;
    const r = make({ clock, restartHold: () => stale, restartHoldMaxMs: 5000 });
    await r.start(sleeper('web#0'));
    let pid = await runningPid(r, 'web#0');
    const killAndBackoff = async () => {
      process.kill(pid, 'SIGKILL');
      const s = await waitFor('exit noticed', () => {
        const st = r.status('web#0');
        return st?.pid === undefined && st?.nextRestartDelayMs !== undefined ? st : undefined;
      });
      clock.advance(s.nextRestartDelayMs!); // backoff over: the hold is asked
    };
    await killAndBackoff();
    for (let i = 0; i < 19; i++) clock.advance(250); // 4.75 s held
    await new Promise((res) => setTimeout(res, 100));
    expect(r.status('web#0')?.pid, 'held while the plan may be stale').toBeUndefined();
    clock.advance(250); // 5 s: the bound — restart on the last plan (static stability)
    pid = await runningPid(r, 'web#0', pid);
    // the hold clears (a fresh plan arrived): the next crash restarts at the end of its backoff
    await killAndBackoff();
    clock.advance(250);
    stale = false;
    clock.advance(250);
    pid = await runningPid(r, 'web#0', pid);
    expect(r.status('web#0')?.restarts).toBe(2);
  });

  it('policy never: a clean exit is Stopped, a failing one is Failed; on-failure restarts only failures', async () => {
    const clock = new ManualClock();
    const r = make({ clock });
    await r.start(
      sleeper('ok#0', {
        command: '/bin/sh',
        args: ['-c', 'exit 0'],
        restart: { ...FAST_RESTART, policy: 'never' },
      }),
    );
    await r.start(
      sleeper('bad#0', {
        command: '/bin/sh',
        args: ['-c', 'exit 3'],
        restart: { ...FAST_RESTART, policy: 'never' },
      }),
    );
    await r.start(
      sleeper('of#0', {
        command: '/bin/sh',
        args: ['-c', 'exit 0'],
        restart: { ...FAST_RESTART, policy: 'on-failure' },
      }),
    );
    await r.start(
      sleeper('of#1', {
        command: '/bin/sh',
        args: ['-c', 'exit 2'],
        restart: { ...FAST_RESTART, policy: 'on-failure' },
      }),
    );
    await waitFor('all exited', () =>
      ['ok#0', 'bad#0', 'of#0', 'of#1'].every(
        (id) => r.status(id)?.pid === undefined && r.status(id)?.state !== 'running',
      ),
    );
    expect(r.status('ok#0')?.state).toBe('stopped');
    expect(r.status('bad#0')).toMatchObject({ state: 'failed', lastError: 'exited with code 3' });
    expect(r.status('of#0')?.state).toBe('stopped');
    expect(r.status('of#1')).toMatchObject({ state: 'backoff', nextRestartDelayMs: 1000 });
    expect(clock.pending()).toBeGreaterThan(0);
    expect(r.status('bad#0')?.lastExitCode).toBe(3);
    expect(r.status('of#1')?.lastExitCode).toBe(2);
    expect(r.status('ok#0')?.lastExitCode).toBe(0);
  });

  it('a binary that refuses its flags crash-loops with its exit code; its stderr is in the log tail', async () => {
    const clock = new ManualClock(1_000_000);
    const r = make({ clock });
    const flagError = 'echo "Error: unknown flag: --bogus" >&2; echo "Usage: web [flags]" >&2; exit 2';
    await r.start(sleeper('web#0', { command: '/bin/sh', args: ['-c', flagError] }));
    for (let i = 1; i <= FAST_RESTART.crashLoopThreshold; i++) {
      const s = await waitFor(`exit ${i}`, () => {
        const st = r.status('web#0');
        return st?.pid === undefined && st?.consecutiveFailures === i ? st : undefined;
      });
      if (i < FAST_RESTART.crashLoopThreshold) clock.advance(s.nextRestartDelayMs!);
    }
    // down, waiting out its backoff: nothing writes to the log now
    expect(r.status('web#0')).toMatchObject({
      state: 'crashloop',
      lastExitCode: 2,
      lastError: 'exited with code 2',
    });
    const tail = await r.logs('web#0', 2);
    expect(tail).toBe('Error: unknown flag: --bogus\nUsage: web [flags]');
    // killed by a signal: no exit code
    await r.start(sleeper('kill#0'));
    const pid = await runningPid(r, 'kill#0');
    process.kill(pid, 'SIGKILL');
    const k = await waitFor('kill noticed', () =>
      r.status('kill#0')?.pid === undefined ? r.status('kill#0') : undefined,
    );
    expect(k).toMatchObject({ state: 'backoff', lastError: 'killed by SIGKILL' });
    expect(k.lastExitCode).toBeUndefined();
  });

  it('a missing binary is retried with backoff and reported, not thrown', async () => {
    const clock = new ManualClock();
    const r = make({ clock });
    await r.start(sleeper('ghost#0', { command: '/nonexistent/ghost', args: [] }));
    const s = await waitFor('spawn failure', () =>
      r.status('ghost#0')?.lastError ? r.status('ghost#0') : undefined,
    );
    expect(s.lastError).toMatch(/cannot start \/nonexistent\/ghost: .*ENOENT/);
    expect(s.state).toBe('backoff');
    expect(s.nextRestartDelayMs).toBe(1000);
  });

  it('graceful stop: SIGTERM, then SIGKILL to the whole group after the stop timeout', async () => {
    const r = make();
    // The leader ignores TERM and has a child in its group that ignores TERM too.
    await r.start(
      sleeper('stubborn#0', {
        command: '/bin/sh',
        args: ['-c', "trap '' TERM; sh -c \"trap '' TERM; sleep 1000\" & echo child=$!; wait"],
        stopTimeoutMs: 300,
      }),
    );
    const pid = await runningPid(r, 'stubborn#0');
    const child = await waitFor('child pid in log', async () => {
      const m = /child=(\d+)/.exec(await r.logs('stubborn#0', 5));
      return m ? Number(m[1]) : undefined;
    });
    pids.add(child);
    expect(readProcStat(child)?.pgrp).toBe(pid); // same process group: detached leader
    const t = Date.now();
    await r.stop('stubborn#0');
    expect(Date.now() - t).toBeGreaterThanOrEqual(250);
    expect(alive(pid)).toBe(false);
    await waitFor('group member killed', () => !alive(child));
    expect(r.status('stubborn#0')?.state).toBe('stopped');
  });

  it('does not adopt a recycled pid: the start time in the pidfile must match', async () => {
    const dataDir = tempDir('prt');
    const r1 = make({ dataDir });
    await r1.start(sleeper('web#0'));
    const pid = await runningPid(r1, 'web#0');
    await r1.close();
    const pf = join(dataDir, 'run', 'web-0.json');
    const rec = JSON.parse(readFileSync(pf, 'utf8'));
    rec.startTime = '1'; // as if this pid now belonged to another process
    writeFileSync(pf, JSON.stringify(rec));
    const r2 = make({ dataDir });
    expect(await r2.recover()).toEqual([]);
    expect(existsSync(pf)).toBe(false);
    expect(alive(pid)).toBe(true); // a stranger is left alone
  });

  it('notices when an adopted process exits and restarts it per policy', async () => {
    const dataDir = tempDir('prt');
    const r1 = make({ dataDir });
    await r1.start(sleeper('web#0'));
    const pid = await runningPid(r1, 'web#0');
    await r1.close();
    const r2 = make({ dataDir });
    await r2.recover();
    killGroups([pid]);
    const s = await waitFor('adopted exit seen', () =>
      r2.status('web#0')?.state === 'backoff' ? r2.status('web#0') : undefined,
    );
    expect(s.lastError).toMatch(/adopted process/);
    await runningPid(r2, 'web#0', pid); // restarted after 1 s
  });

  it("stamps the pidfile's start with the runtime's clock; an adopter keeps it", async () => {
    const dataDir = tempDir('prt');
    const clock = new ManualClock(5_000_000);
    const r1 = make({ dataDir, clock });
    await r1.start(sleeper('web#0'));
    const pid = await runningPid(r1, 'web#0');
    const pf = join(dataDir, 'run', 'web-0.json');
    await waitFor('pidfile written', () => existsSync(pf));
    expect(JSON.parse(readFileSync(pf, 'utf8')).startedAt).toBe(5_000_000);
    expect(r1.status('web#0')?.startedAt).toBe(5_000_000);
    await r1.close();
    clock.advance(59_000);
    const r2 = make({ dataDir, clock });
    expect(await r2.recover()).toEqual(['web#0']);
    expect(r2.status('web#0')).toMatchObject({ pid, startedAt: 5_000_000, state: 'running' });
  });

  it('caps the log size by rotating to .1', async () => {
    const dataDir = tempDir('prt');
    const r = make({ dataDir, logMaxBytes: 4096 });
    await r.start(
      sleeper('chatty#0', {
        command: '/bin/sh',
        args: [
          '-c',
          'i=0; while [ $i -lt 400 ]; do echo "line $i ................................"; i=$((i+1)); done; exec sleep 1000',
        ],
      }),
    );
    await runningPid(r, 'chatty#0');
    const log = r.logPath('chatty#0');
    await waitFor('rotated', () => existsSync(`${log}.1`) && statSync(log).size <= 4096);
    expect(statSync(`${log}.1`).size).toBeGreaterThan(4096);
  });
});
