import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import {
  lastExitCodeOf,
  parseShow,
  renderUnit,
  SystemdRuntime,
  unitNameFor,
} from '../../agent/runtime/systemd.js';
import { ManualClock } from '../../lib/clock.js';
import { installFakeSystemd } from '../helpers/agent-fake-systemd.js';
import { FAST_RESTART, killGroups, sleeper } from '../helpers/agent-instances.js';
import { hasBinary, tempDir } from '../helpers/proc.js';

const run = promisify(execFile);
const runtimes: SystemdRuntime[] = [];
afterEach(async () => {
  for (const r of runtimes.splice(0)) {
    killGroups(r.list().map((s) => s.pid));
    await r.close();
  }
});

const full = sleeper('kube-apiserver#2', {
  command: '/bin/sleep',
  args: ['1000', 'with space', 'quote"d', '100%', '$HOME', 'back\\slash'],
  env: { B: 'two words', A: '50%', C: 'x"y' },
  cwd: '/tmp',
  unit: {
    after: ['etcd.service'],
    wants: ['etcd.service'],
    type: 'simple',
    limitNOFILE: 65536,
    extraService: { Nice: '5' },
  },
  restart: { ...FAST_RESTART, policy: 'on-failure', initialBackoffMs: 1500 },
  stopTimeoutMs: 20_000,
});

describe('systemd unit rendering', () => {
  it('names units drover-<role>-<ordinal>.service', () => {
    expect(unitNameFor('kube-apiserver#2')).toBe('drover-kube-apiserver-2.service');
    expect(unitNameFor('web#0')).toBe('drover-web-0.service');
  });

  it('renders ExecStart, Environment, Restart, LimitNOFILE, After with systemd quoting', () => {
    const text = renderUnit(full);
    expect(text).toContain(
      'ExecStart="/bin/sleep" "1000" "with space" "quote\\"d" "100%%" "$$HOME" "back\\\\slash"',
    );
    expect(text).toContain('Environment="A=50%%"\nEnvironment="B=two words"\nEnvironment="C=x\\"y"');
    expect(text).toContain('After=network-online.target etcd.service');
    expect(text).toContain('Wants=network-online.target etcd.service');
    expect(text).toContain('Restart=on-failure');
    expect(text).toContain('RestartSec=1500ms');
    expect(text).toContain('TimeoutStopSec=20s');
    expect(text).toContain('LimitNOFILE=65536');
    expect(text).toContain('WorkingDirectory=/tmp');
    expect(text).toContain('Nice=5');
    expect(text).toContain(`X-Drover-Checksum=${full.checksum}`);
    expect(renderUnit({ ...full, restart: { ...FAST_RESTART, policy: 'never' } })).toContain('Restart=no');
    expect(renderUnit({ ...full, command: 'sleep' })).toContain('ExecStart="/usr/bin/sleep"');
  });

  it.skipIf(!hasBinary('systemd-analyze'))('systemd-analyze verify accepts the generated units', async () => {
    const dir = tempDir('units');
    const units = [
      full,
      sleeper('web#0', { command: '/bin/sleep', args: ['1000'] }),
      sleeper('etcd#1', {
        command: '/bin/sleep',
        args: ['infinity'],
        unit: { type: 'notify', user: 'root' },
      }),
    ];
    const paths = units.map((u) => {
      const p = join(dir, unitNameFor(u.id));
      writeFileSync(p, renderUnit(u));
      return p;
    });
    const r = await run('systemd-analyze', ['verify', ...paths]).catch(
      (e) => e as { stderr: string; code: number },
    );
    const stderr = (r as { stderr: string }).stderr;
    // verify exits 0 and prints nothing about our units when they are valid.
    expect((r as { code?: number }).code ?? 0).toBe(0);
    expect(stderr).not.toMatch(/drover-.*\.service:\d+/);
    // And it does fail on a broken unit, so the check above can fail.
    const bad = join(dir, 'drover-bad-0.service');
    writeFileSync(
      bad,
      renderUnit(units[1]!).replace('ExecStart="/bin/sleep"', 'ExecStart="/nonexistent/bin"'),
    );
    const r2 = await run('systemd-analyze', ['verify', bad]).catch(
      (e) => e as { stderr: string; code: number },
    );
    expect((r2 as { code?: number }).code).not.toBe(0);
  });
});

describe('systemd runtime against a recording fake systemctl', () => {
  it('drives daemon-reload / enable --now / restart / stop / disable in order, and reads journalctl', async () => {
    const dir = tempDir('sd');
    const fake = installFakeSystemd(dir);
    const r = new SystemdRuntime({ unitDir: fake.unitDir, env: fake.env, pollIntervalMs: 60_000 });
    runtimes.push(r);
    const inst = sleeper('web#0');
    await r.start(inst);
    await r.start(inst); // unchanged: no systemctl write calls
    await r.restart(inst);
    await r.stop('web#0');
    await r.remove('web#0');
    await r.logs('web#0', 7);
    const calls = fake.calls().filter((c) => c[0] !== 'show');
    expect(calls).toEqual([
      ['daemon-reload'],
      ['enable', '--now', 'drover-web-0.service'],
      ['enable', 'drover-web-0.service'],
      ['restart', 'drover-web-0.service'],
      ['stop', 'drover-web-0.service'],
      ['disable', '--now', 'drover-web-0.service'],
      ['daemon-reload'],
      ['reset-failed', 'drover-web-0.service'],
      ['journalctl', '-u', 'drover-web-0.service', '-n', '7', '--no-pager', '-o', 'cat'],
    ]);
    expect(fake.starts('drover-web-0.service')).toBe(2);
  });

  it('a changed checksum rewrites the unit, reloads and restarts', async () => {
    const dir = tempDir('sd');
    const fake = installFakeSystemd(dir);
    const r = new SystemdRuntime({ unitDir: fake.unitDir, env: fake.env, pollIntervalMs: 60_000 });
    runtimes.push(r);
    await r.start(sleeper('web#0'));
    await r.start(sleeper('web#0', { checksum: 'e'.repeat(64), args: ['-c', 'exec sleep 999'] }));
    const unit = readFileSync(join(fake.unitDir, 'drover-web-0.service'), 'utf8');
    expect(unit).toContain('"exec sleep 999"');
    expect(fake.calls().filter((c) => c[0] !== 'show')).toEqual([
      ['daemon-reload'],
      ['enable', '--now', 'drover-web-0.service'],
      ['daemon-reload'],
      ['enable', 'drover-web-0.service'],
      ['restart', 'drover-web-0.service'],
    ]);
  });

  it('a failing systemctl is reported as DROVER_ERR_RUNTIME with its output', async () => {
    const dir = tempDir('sd');
    const fake = installFakeSystemd(dir);
    writeFileSync(join(fake.binDir, 'systemctl'), '#!/bin/sh\necho "Access denied" >&2\nexit 1\n');
    const r = new SystemdRuntime({ unitDir: fake.unitDir, env: fake.env, pollIntervalMs: 60_000 });
    runtimes.push(r);
    await expect(r.start(sleeper('web#0'))).rejects.toMatchObject({
      code: 'DROVER_ERR_RUNTIME',
      message: expect.stringMatching(/daemon-reload failed \(exit 1\): Access denied/),
    });
  });

  it('maps unit states, counts NRestarts and reports a crash loop', async () => {
    const dir = tempDir('sd');
    const fake = installFakeSystemd(dir);
    let nrestarts = 0;
    let active = 'activating';
    let sub = 'auto-restart';
    writeFileSync(
      join(fake.binDir, 'systemctl'),
      `#!/bin/sh\ncase "$1" in show) cat ${join(dir, 'show.txt')};; esac\nexit 0\n`,
    );
    const writeShow = () =>
      writeFileSync(
        join(dir, 'show.txt'),
        `Id=drover-web-0.service\nActiveState=${active}\nSubState=${sub}\nMainPID=${active === 'active' ? 4242 : 0}\nNRestarts=${nrestarts}\nResult=exit-code\nExecMainStartTimestamp=Mon 2026-11-23 08:00:00 UTC\n\nId=drover-db-0.service\nActiveState=failed\nSubState=failed\nMainPID=0\nNRestarts=0\nResult=exit-code\nExecMainCode=1\nExecMainStatus=2\n`,
      );
    writeShow();
    const clock = new ManualClock(0);
    const r = new SystemdRuntime({ unitDir: fake.unitDir, env: fake.env, clock, pollIntervalMs: 60_000 });
    runtimes.push(r);
    const changes: string[] = [];
    r.onChange((id) => changes.push(id));
    await r.start(sleeper('web#0'));
    await r.start(sleeper('db#0'));
    expect(r.status('web#0')).toMatchObject({ state: 'backoff', restarts: 0 });
    expect(r.status('db#0')).toMatchObject({
      state: 'failed',
      lastError: 'unit failed: exit-code',
      lastExitCode: 2,
    });
    expect(r.status('web#0')?.lastExitCode).toBeUndefined();
    nrestarts = 5;
    writeShow();
    await r.refresh(['web#0']);
    expect(r.status('web#0')).toMatchObject({ state: 'crashloop', restarts: 5, consecutiveFailures: 5 });
    active = 'active';
    sub = 'running';
    writeShow();
    await r.refresh(['web#0']);
    expect(r.status('web#0')).toMatchObject({ state: 'crashloop', pid: 4242 });
    clock.advance(60_000); // a stable minute resets the streak
    await r.refresh(['web#0']);
    expect(r.status('web#0')).toMatchObject({ state: 'running', consecutiveFailures: 0, restarts: 5 });
    expect(r.status('web#0')?.startedAt).toBe(Date.parse('2026-11-23T08:00:00Z'));
    expect(changes).toContain('web#0');
  });

  it('lastExitCodeOf reads an exit code only when the main process exited', () => {
    expect(lastExitCodeOf({ ExecMainCode: '1', ExecMainStatus: '2' })).toBe(2);
    expect(lastExitCodeOf({ ExecMainCode: '1', ExecMainStatus: '0' })).toBe(0);
    // 2 = killed, 3 = dumped core: the status is a signal number, not an exit code
    expect(lastExitCodeOf({ ExecMainCode: '2', ExecMainStatus: '9' })).toBeUndefined();
    expect(lastExitCodeOf({ ExecMainCode: '0', ExecMainStatus: '0' })).toBeUndefined();
    expect(lastExitCodeOf({ ExecMainCode: '1', ExecMainStatus: 'junk' })).toBeUndefined();
    expect(lastExitCodeOf({})).toBeUndefined();
  });

  it('parseShow splits blocks by unit', () => {
    const m = parseShow('Id=a.service\nActiveState=active\n\nId=b.service\nActiveState=inactive\n');
    expect(m.get('a.service')?.ActiveState).toBe('active');
    expect(m.get('b.service')?.ActiveState).toBe('inactive');
  });
});
