import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer as createHttp, type Server } from 'node:http';
import { createServer as createHttps } from 'node:https';
import { createServer as createTcp } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeExpander, ROOT_VAR } from '../../agent/applier.js';
import { type Health, Prober, probeUnderRoot, runProbe } from '../../agent/probes.js';
import { buildInstanceStatus, healthDigest, instancePhase } from '../../agent/status.js';
import { ManualClock } from '../../lib/clock.js';
import type { HealthProbe, InstanceStatus } from '../../protocol/index.js';
import { sampleInstance } from '../helpers/fixtures.js';
import { tempDir, waitFor } from '../helpers/proc.js';

const base = { periodMs: 1000, timeoutMs: 500, initialDelayMs: 0, failureThreshold: 1, successThreshold: 1 };
const closers: Array<() => void> = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
});

function listen(s: Server | ReturnType<typeof createTcp>): Promise<number> {
  closers.push(() => s.close());
  return new Promise((r) => s.listen(0, '127.0.0.1', () => r((s.address() as { port: number }).port)));
}

describe('probe kinds against real endpoints', () => {
  it('http: 2xx/3xx pass, 5xx and refused connections fail with the reason', async () => {
    let code = 200;
    const server = createHttp((_q, res) => res.writeHead(code).end());
    const port = await listen(server);
    const p: HealthProbe = { kind: 'http', port, path: '/healthz', ...base };
    expect(await runProbe(p)).toEqual({ ok: true });
    code = 503;
    expect(await runProbe(p)).toEqual({ ok: false, error: `GET http://127.0.0.1:${port}/healthz: HTTP 503` });
    server.close();
    server.closeAllConnections();
    expect((await runProbe(p)).error).toMatch(/ECONNREFUSED/);
  });

  it('http: a server that never answers times out', async () => {
    const port = await listen(createHttp(() => {}));
    const r = await runProbe({ kind: 'http', port, ...base, timeoutMs: 100 });
    expect(r).toEqual({ ok: false, error: `GET http://127.0.0.1:${port}/: timed out after 100 ms` });
  });

  it('https: a self-signed cert fails unless insecure or its CA is given', async () => {
    const dir = tempDir('tls');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    const server = createHttps(
      { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) },
      (_q, res) => res.end('ok'),
    );
    const port = await listen(server);
    const p: HealthProbe = { kind: 'https', port, path: '/livez', ...base };
    expect((await runProbe(p)).error).toMatch(/self[- ]signed/i);
    expect(await runProbe({ ...p, insecure: true })).toEqual({ ok: true });
    expect(await runProbe({ ...p, caFile: join(dir, 'cert.pem') })).toEqual({ ok: true });
    // a plan names the CA under the role's root; the agent expands it like every other path
    const planned = { ...p, caFile: `${ROOT_VAR}/cert.pem` };
    expect((await runProbe(planned)).ok).toBe(false);
    expect(await runProbe(probeUnderRoot(planned, makeExpander(dir)))).toEqual({ ok: true });
    const exec = probeUnderRoot(
      { kind: 'exec', command: `${ROOT_VAR}/bin/check`, args: ['--ca', `${ROOT_VAR}/ca.crt`], ...base },
      makeExpander('/srv/host1'),
    );
    expect([exec.command, exec.args]).toEqual(['/srv/host1/bin/check', ['--ca', '/srv/host1/ca.crt']]);
  });

  it('tcp and exec', async () => {
    const port = await listen(createTcp((s) => s.end()));
    expect(await runProbe({ kind: 'tcp', port, ...base })).toEqual({ ok: true });
    expect(await runProbe({ kind: 'exec', command: '/bin/true', ...base })).toEqual({ ok: true });
    const bad = await runProbe({
      kind: 'exec',
      command: '/bin/sh',
      args: ['-c', 'echo nope; exit 4'],
      ...base,
    });
    expect(bad).toEqual({ ok: false, error: '/bin/sh: exit 4: nope' });
    const slow = await runProbe({
      kind: 'exec',
      command: '/bin/sleep',
      args: ['5'],
      ...base,
      timeoutMs: 100,
    });
    expect(slow.error).toMatch(/timed out after 100 ms/);
    expect((await runProbe({ kind: 'tcp', ...base })).error).toBe('tcp probe has no port');
  });
});

describe('Prober thresholds and timing (injected clock)', () => {
  it('probes every period and applies success/failure thresholds', async () => {
    const clock = new ManualClock();
    const results: boolean[] = [true, true, false, false, false, true, true];
    let calls = 0;
    const changes: Array<[Health, string | undefined]> = [];
    const p = new Prober(
      { kind: 'tcp', port: 1, ...base, initialDelayMs: 0, failureThreshold: 3, successThreshold: 2 },
      {
        clock,
        onChange: (h, e) => changes.push([h, e]),
        run: async () => {
          const ok = results[calls++] ?? true;
          return ok ? { ok } : { ok, error: `fail ${calls}` };
        },
      },
    );
    p.start();
    const step = async (ms: number) => {
      clock.advance(ms);
      await new Promise((r) => setImmediate(r));
    };
    await step(0);
    expect(calls).toBe(1);
    expect(p.health).toBe('unknown'); // 1 success < successThreshold 2
    await step(999);
    expect(calls).toBe(1);
    await step(1000);
    expect(p.health).toBe('healthy');
    await step(1000);
    await step(1000);
    expect(p.health).toBe('healthy'); // 2 failures < failureThreshold 3
    await step(1000);
    expect(p.health).toBe('unhealthy');
    expect(p.lastError).toBe('fail 5');
    await step(1000);
    expect(p.health).toBe('unhealthy');
    await step(1000);
    expect(p.health).toBe('healthy');
    expect(changes).toEqual([
      ['healthy', undefined],
      ['unhealthy', 'fail 5'],
      ['healthy', undefined],
    ]);
    p.stop();
    await step(10_000);
    expect(calls).toBe(7);
  });

  it('treats initialDelay as a start-up grace: fast probes, failures not counted, healthy at the first pass', async () => {
    const clock = new ManualClock();
    // fails for the first 3 s of start-up, then passes, then fails for good
    let up = false;
    let down = false;
    let calls = 0;
    const changes: Array<[Health, string | undefined]> = [];
    const p = new Prober(
      { kind: 'tcp', port: 1, ...base, periodMs: 2000, initialDelayMs: 10_000, failureThreshold: 2 },
      {
        clock,
        onChange: (h, e) => changes.push([h, e]),
        run: async () => {
          calls++;
          return up && !down ? { ok: true } : { ok: false, error: `refused ${calls}` };
        },
      },
    );
    const step = async (ms: number) => {
      clock.advance(ms);
      await new Promise((r) => setImmediate(r));
    };
    p.start();
    for (let i = 0; i < 6; i++) await step(500); // 3 s: six failed probes at the start-up pace
    expect(calls).toBe(6);
    expect(p.health).toBe('unknown'); // not unhealthy: the failures fell inside the grace
    expect(p.lastError).toBe('refused 6');
    up = true;
    await step(500);
    expect(p.health).toBe('healthy'); // 3.5 s after start, not after the 10 s "delay"
    await step(500);
    expect(calls).toBe(7); // back to periodMs after the first pass
    down = true;
    await step(1500);
    await step(2000); // inside the 10 s window, but it passed once, so failures count now
    expect(p.health).toBe('unhealthy');
    expect(changes.map((c) => c[0])).toEqual(['healthy', 'unhealthy']);
    p.stop();
  });

  it('restart resets the verdict to unknown', async () => {
    const clock = new ManualClock();
    const p = new Prober(
      { kind: 'tcp', port: 1, ...base },
      { clock, onChange: () => {}, run: async () => ({ ok: true }) },
    );
    p.start();
    clock.advance(0);
    await waitFor('healthy', () => p.health === 'healthy');
    p.start();
    expect(p.health).toBe('unknown');
    p.stop();
  });
});

describe('status', () => {
  it('maps runtime state and health to a phase', () => {
    const rs = { id: 'a#0', checksum: 'c', restarts: 0, consecutiveFailures: 0 };
    expect(instancePhase(undefined, 'unknown', true, false)).toBe('Pending');
    expect(instancePhase(undefined, 'unknown', true, true)).toBe('Stopped');
    expect(instancePhase({ ...rs, state: 'running' }, 'unknown', false, false)).toBe('Running');
    expect(instancePhase({ ...rs, state: 'running' }, 'unknown', true, false)).toBe('Starting');
    expect(instancePhase({ ...rs, state: 'running' }, 'healthy', true, false)).toBe('Healthy');
    expect(instancePhase({ ...rs, state: 'running' }, 'unhealthy', true, false)).toBe('Unhealthy');
    expect(instancePhase({ ...rs, state: 'backoff' }, 'healthy', true, false)).toBe('Starting');
    expect(instancePhase({ ...rs, state: 'crashloop' }, 'healthy', true, false)).toBe('CrashLoop');
    expect(instancePhase({ ...rs, state: 'failed' }, 'unknown', true, false)).toBe('Failed');
    expect(instancePhase({ ...rs, state: 'stopped' }, 'unknown', true, false)).toBe('Stopped');
  });

  it('the health digest is order-independent and changes with phase, restarts or checksum', () => {
    const spec = { ...sampleInstance(), checksum: 'c'.repeat(64) };
    const a = buildInstanceStatus(
      spec,
      { id: 'web#0', checksum: 'x', state: 'running', restarts: 1, consecutiveFailures: 0, pid: 5 },
      { health: 'healthy' },
      false,
    );
    const b: InstanceStatus = { ...a, id: 'db#0' };
    expect(a.phase).toBe('Healthy');
    expect(healthDigest([a, b])).toBe(healthDigest([b, a]));
    expect(healthDigest([a, b])).toMatch(/^[0-9a-f]{16}$/);
    expect(healthDigest([{ ...a, restarts: 2 }, b])).not.toBe(healthDigest([a, b]));
    expect(healthDigest([{ ...a, phase: 'Unhealthy' }, b])).not.toBe(healthDigest([a, b]));
    expect(healthDigest([{ ...a, checksum: 'y' }, b])).not.toBe(healthDigest([a, b]));
  });
});
