import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ProcessRuntime } from '../../agent/runtime/process.js';
import { SystemdRuntime, unitNameFor } from '../../agent/runtime/systemd.js';
import type { Runtime } from '../../agent/runtime/types.js';
import { installFakeSystemd } from '../helpers/agent-fake-systemd.js';
import { alive, killGroups, sleeper } from '../helpers/agent-instances.js';
import { rmrf, tempDir, waitFor } from '../helpers/proc.js';

interface Impl {
  name: string;
  make(dir: string): Runtime;
  /** where the runtime keeps the record that outlives it (pidfile or unit file) */
  record(dir: string, id: string): string;
}

const impls: Impl[] = [
  {
    name: 'process',
    make: (dir) => new ProcessRuntime({ dataDir: dir, pollIntervalMs: 100 }),
    record: (dir, id) => join(dir, 'run', `${id.replace('#', '-')}.json`),
  },
  {
    name: 'systemd (recording fake systemctl on PATH)',
    make: (dir) => {
      const fake = installFakeSystemd(dir);
      return new SystemdRuntime({ unitDir: fake.unitDir, env: fake.env, pollIntervalMs: 2000 });
    },
    record: (dir, id) => join(dir, 'units', unitNameFor(id)),
  },
];

describe.each(impls)('runtime conformance: $name', (impl) => {
  const runtimes: Runtime[] = [];
  const pids = new Set<number>();
  let dir = '';
  const make = () => {
    const r = impl.make(dir);
    runtimes.push(r);
    return r;
  };
  const running = async (r: Runtime, id: string) =>
    waitFor(`${id} running`, () => {
      const s = r.status(id);
      if (s?.state === 'running' && s.pid) {
        pids.add(s.pid);
        return s.pid;
      }
      return undefined;
    });

  afterEach(async () => {
    for (const r of runtimes.splice(0)) {
      await r.stopAll().catch(() => {});
      await r.close();
    }
    killGroups(pids);
    pids.clear();
    rmrf(dir);
  });

  it('starts an instance; starting it again with the same checksum keeps its pid', async () => {
    dir = tempDir('rt');
    const r = make();
    await r.start(sleeper('web#0'));
    const pid = await running(r, 'web#0');
    expect(alive(pid)).toBe(true);
    await r.start(sleeper('web#0'));
    expect(r.status('web#0')?.pid).toBe(pid);
    expect(r.list().map((s) => s.id)).toEqual(['web#0']);
    expect(existsSync(impl.record(dir, 'web#0'))).toBe(true);
  });

  it('start with a changed checksum replaces the process', async () => {
    dir = tempDir('rt');
    const r = make();
    await r.start(sleeper('web#0'));
    const pid = await running(r, 'web#0');
    await r.start(sleeper('web#0', { checksum: 'b'.repeat(64) }));
    const pid2 = await running(r, 'web#0');
    expect(pid2).not.toBe(pid);
    expect(r.status('web#0')?.checksum).toBe('b'.repeat(64));
    await waitFor('old process gone', () => !alive(pid));
  });

  it('restart gives a new process; stop stops it; start brings it back', async () => {
    dir = tempDir('rt');
    const r = make();
    await r.start(sleeper('api#1'));
    const pid = await running(r, 'api#1');
    await r.restart(sleeper('api#1'));
    const pid2 = await running(r, 'api#1');
    expect(pid2).not.toBe(pid);
    expect(alive(pid)).toBe(false);
    await r.stop('api#1');
    await waitFor('stopped', () => r.status('api#1')?.state === 'stopped');
    expect(alive(pid2)).toBe(false);
    await r.stop('api#1'); // idempotent
    await r.start(sleeper('api#1'));
    const pid3 = await running(r, 'api#1');
    expect(pid3).not.toBe(pid2);
  });

  it('remove stops the instance and forgets it', async () => {
    dir = tempDir('rt');
    const r = make();
    await r.start(sleeper('web#0'));
    await r.start(sleeper('db#0'));
    const pid = await running(r, 'web#0');
    const other = await running(r, 'db#0');
    await r.remove('web#0');
    expect(r.status('web#0')).toBeUndefined();
    expect(alive(pid)).toBe(false);
    expect(existsSync(impl.record(dir, 'web#0'))).toBe(false);
    expect(r.status('db#0')?.pid).toBe(other);
    await r.remove('nope#0'); // unknown: no-op
    await r.stop('nope#0');
    expect(r.status('nope#0')).toBeUndefined();
  });

  it('logs returns the tail of the instance output', async () => {
    dir = tempDir('rt');
    const r = make();
    await r.start(sleeper('web#0'));
    await running(r, 'web#0');
    await waitFor('greeting in logs', async () => (await r.logs('web#0', 5)).includes('hello-web 100%'));
  });

  it('a new runtime recovers running instances with their pids and checksums', async () => {
    dir = tempDir('rt');
    const r1 = make();
    await r1.start(sleeper('web#0', { checksum: 'c'.repeat(64) }));
    const pid = await running(r1, 'web#0');
    await r1.close(); // the agent goes away; the instance keeps running
    expect(alive(pid)).toBe(true);
    const r2 = make();
    expect(await r2.recover()).toEqual(['web#0']);
    const s = r2.status('web#0');
    expect(s?.pid).toBe(pid);
    expect(s?.checksum).toBe('c'.repeat(64));
    expect(s?.adopted).toBe(true);
    // Applying the same spec again leaves it alone.
    await r2.start(sleeper('web#0', { checksum: 'c'.repeat(64) }));
    expect(r2.status('web#0')?.pid).toBe(pid);
    await r2.stop('web#0');
    await waitFor('adopted instance stopped', () => !alive(pid));
  });

  it('does not recover an instance whose process is gone', async () => {
    dir = tempDir('rt');
    const r1 = make();
    await r1.start(sleeper('web#0'));
    const pid = await running(r1, 'web#0');
    await r1.close();
    killGroups([pid]);
    await waitFor('killed', () => !alive(pid));
    const r2 = make();
    expect(await r2.recover()).toEqual([]);
  });
});
