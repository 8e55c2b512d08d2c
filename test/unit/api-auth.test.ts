import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FailureLimiter, roleAllows, TokenStore } from '../../coordinator/api/index.js';
import { ManualClock } from '../../lib/clock.js';
import { silentLogger } from '../../lib/logger.js';

function dir(): string {
  return mkdtempSync(join(tmpdir(), 'drover-tokens-'));
}

describe('API tokens', () => {
  it('stores only sha256 hashes, mode 0600, and verifies the secret', async () => {
    const d = dir();
    const path = join(d, 'tokens.json');
    const s = await TokenStore.open({ path, logger: silentLogger });
    const t = await s.create('ci', 'operator');
    expect(t.token).toMatch(new RegExp(`^drv_${t.id}_[A-Za-z0-9_-]{43}$`));
    const text = readFileSync(path, 'utf8');
    expect(text).not.toContain(t.token);
    expect(text).toMatch(/"sha256": "[0-9a-f]{64}"/);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(s.verify(t.token)).toMatchObject({ id: t.id, name: 'ci', role: 'operator' });
    expect(s.verify(`${t.token}x`)).toBeUndefined();
    expect(s.verify('')).toBeUndefined();
    // reopening reads the same tokens back
    const again = await TokenStore.open({ path, logger: silentLogger });
    expect(again.verify(t.token)?.id).toBe(t.id);
    expect(again.list()).toEqual([{ id: t.id, name: 'ci', role: 'operator', createdAt: t.createdAt }]);
  });

  it('bootstraps one admin token into a 0600 file and logs only its path', async () => {
    const d = dir();
    const lines: string[] = [];
    const logger = {
      ...silentLogger,
      warn: (obj: unknown, msg?: string) => lines.push(JSON.stringify(obj) + (msg ?? '')),
    } as unknown as typeof silentLogger;
    const s = await TokenStore.open({ path: join(d, 'tokens.json'), logger });
    const r = await s.bootstrapAdmin(join(d, 'admin-token'));
    expect(r.created).toBe(true);
    const token = readFileSync(join(d, 'admin-token'), 'utf8').trim();
    expect(statSync(join(d, 'admin-token')).mode & 0o777).toBe(0o600);
    expect(s.verify(token)?.role).toBe('admin');
    expect(lines.join('\n')).toContain(join(d, 'admin-token'));
    expect(lines.join('\n')).not.toContain(token);
    // second start: nothing new
    const s2 = await TokenStore.open({ path: join(d, 'tokens.json'), logger });
    expect((await s2.bootstrapAdmin(join(d, 'admin-token'))).created).toBe(false);
    expect(s2.list()).toHaveLength(1);
  });

  it('refuses a malformed token file instead of replacing it', async () => {
    const d = dir();
    const path = join(d, 'tokens.json');
    writeFileSync(path, '{"version":1,"tokens":[{"id":"x"}]}');
    await expect(TokenStore.open({ path, logger: silentLogger })).rejects.toThrow(
      /tokens\.json: \/tokens\/0/,
    );
    writeFileSync(path, 'not json');
    await expect(TokenStore.open({ path, logger: silentLogger })).rejects.toThrow(/not valid JSON/);
    expect(readFileSync(path, 'utf8')).toBe('not json');
  });

  it('deletes tokens but never the last admin', async () => {
    const s = await TokenStore.open({ logger: silentLogger });
    const a = await s.create('a', 'admin');
    const v = await s.create('v', 'viewer');
    await expect(s.delete(a.id)).rejects.toMatchObject({ code: 'DROVER_ERR_ILLEGAL_STATE' });
    await expect(s.delete('nope')).rejects.toMatchObject({ code: 'DROVER_ERR_TOKEN_NOT_FOUND', status: 404 });
    await s.delete(v.id);
    expect(s.verify(v.token)).toBeUndefined();
    const a2 = await s.create('a2', 'admin');
    await s.delete(a.id);
    expect(s.verify(a2.token)?.name).toBe('a2');
  });

  it('orders roles viewer < operator < admin', () => {
    expect(roleAllows('admin', 'operator')).toBe(true);
    expect(roleAllows('operator', 'operator')).toBe(true);
    expect(roleAllows('viewer', 'operator')).toBe(false);
    expect(roleAllows('operator', 'admin')).toBe(false);
  });
});

describe('failed-authentication limiter', () => {
  it('blocks a client after the limit until its window ends, others unaffected', () => {
    const clock = new ManualClock(1_000_000);
    const l = new FailureLimiter(clock, { maxFailures: 3, windowMs: 60_000 });
    for (let i = 0; i < 2; i++) l.fail('a');
    expect(l.blockedFor('a')).toBe(0);
    l.fail('a');
    expect(l.blockedFor('a')).toBe(60_000);
    expect(l.blockedFor('b')).toBe(0);
    clock.advance(59_000);
    expect(l.blockedFor('a')).toBe(1000);
    clock.advance(1000);
    expect(l.blockedFor('a')).toBe(0);
    l.fail('a');
    expect(l.blockedFor('a')).toBe(0);
  });

  it('forgets the oldest clients beyond its cap', () => {
    const clock = new ManualClock(0);
    const l = new FailureLimiter(clock, { maxFailures: 1, maxClients: 2 });
    l.fail('a');
    l.fail('b');
    l.fail('c');
    expect(l.blockedFor('a')).toBe(0);
    expect(l.blockedFor('c')).toBeGreaterThan(0);
  });
});
