// The API's failure limit: who the client is (socket address, or X-Forwarded-For from a trusted
// proxy), which keys a failure counts against, and how a presented token names its id.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  clientAddress,
  compileTrustedProxies,
  trustedProxyProblem,
} from '../../coordinator/api/client-address.js';
import { addressKey, authFailureKeys, FailureLimiter } from '../../coordinator/api/ratelimit.js';
import { claimedTokenId, TokenStore } from '../../coordinator/api/tokens.js';
import { compileCoordinatorOptions } from '../../coordinator/config.js';
import { ManualClock } from '../../lib/clock.js';
import { silentLogger } from '../../lib/logger.js';

describe('clientAddress', () => {
  it('is the socket address when no proxy is trusted, whatever X-Forwarded-For says', () => {
    expect(clientAddress('203.0.113.9', undefined, [])).toBe('203.0.113.9');
    expect(clientAddress('203.0.113.9', '198.51.100.1', [])).toBe('203.0.113.9');
  });

  it('ignores a spoofed X-Forwarded-For from a peer that is not a trusted proxy', () => {
    const trusted = compileTrustedProxies(['10.0.0.1']);
    expect(clientAddress('203.0.113.9', '10.0.0.1, 198.51.100.1', trusted)).toBe('203.0.113.9');
  });

  it('from a trusted proxy, is the right-most entry that is not itself a trusted proxy (IPv4, CIDR)', () => {
    const trusted = compileTrustedProxies(['10.0.0.1', '192.168.0.0/16']);
    expect(clientAddress('10.0.0.1', '198.51.100.7', trusted)).toBe('198.51.100.7');
    // the client's own (spoofable) entries are left of what the proxies appended
    expect(clientAddress('10.0.0.1', '1.1.1.1, 198.51.100.7, 192.168.4.4', trusted)).toBe('198.51.100.7');
    // several headers are one list
    expect(clientAddress('10.0.0.1', ['1.1.1.1', '198.51.100.7, 192.168.4.4'], trusted)).toBe('198.51.100.7');
    // 10.0.0.2 is outside the trusted list: not a proxy, so its header is not read
    expect(clientAddress('10.0.0.2', '198.51.100.7', trusted)).toBe('10.0.0.2');
    // no header: the proxy itself
    expect(clientAddress('10.0.0.1', undefined, trusted)).toBe('10.0.0.1');
    // every hop trusted: the farthest one
    expect(clientAddress('10.0.0.1', '192.168.1.1, 192.168.2.2', trusted)).toBe('192.168.1.1');
  });

  it('handles IPv6 proxies, CIDRs, bracketed entries, ports and IPv4-mapped sockets', () => {
    const trusted = compileTrustedProxies(['fd00::/8', '::1', '127.0.0.1']);
    expect(clientAddress('fd00::5', '2001:db8::9', trusted)).toBe('2001:db8::9');
    expect(clientAddress('::1', '[2001:db8::9]:4711', trusted)).toBe('2001:db8::9');
    expect(clientAddress('::1', '198.51.100.7:4711', trusted)).toBe('198.51.100.7');
    expect(clientAddress('::ffff:127.0.0.1', '198.51.100.7', trusted)).toBe('198.51.100.7');
    expect(clientAddress('fe80::1', '198.51.100.7', trusted)).toBe('fe80::1');
    expect(clientAddress('::1', '::ffff:198.51.100.7', trusted)).toBe('198.51.100.7');
  });

  it('never uses a malformed entry: the walk stops at it, at the nearest trusted hop', () => {
    const trusted = compileTrustedProxies(['10.0.0.0/8']);
    expect(clientAddress('10.0.0.1', 'not-an-ip', trusted)).toBe('10.0.0.1');
    expect(clientAddress('10.0.0.1', '198.51.100.7, bogus, 10.2.2.2', trusted)).toBe('10.2.2.2');
    expect(clientAddress('10.0.0.1', '198.51.100.7, 999.1.1.1', trusted)).toBe('10.0.0.1');
    // empty entries (a trailing comma) are not entries
    expect(clientAddress('10.0.0.1', '198.51.100.7, ,', trusted)).toBe('198.51.100.7');
  });

  it('names a bad trusted-proxy entry', () => {
    expect(trustedProxyProblem('10.0.0.0/8')).toBeUndefined();
    expect(trustedProxyProblem('2001:db8::/32')).toBeUndefined();
    expect(trustedProxyProblem('proxy.example')).toMatch(/"proxy.example" is not an IP address or CIDR/);
    expect(trustedProxyProblem('10.0.0.0/33')).toMatch(/prefix length must be 0 to 32/);
    expect(trustedProxyProblem('::/129')).toMatch(/0 to 128/);
    expect(trustedProxyProblem('10.0.0.0/8/8')).toMatch(/not an IP address/);
    expect(() => compileTrustedProxies(['10.0.0.1', 'x'])).toThrow(/api.trustedProxies: "x"/);
  });

  it('a bad api.trustedProxies entry is a config error naming it; good ones and the defaults compile', () => {
    expect(() =>
      compileCoordinatorOptions({
        file: { path: 'c.yaml', text: 'api:\n  trustedProxies: [10.0.0.1, 10.0.0.0/40]\n' },
        env: {},
      }),
    ).toThrow(/api\.trustedProxies\.1: "10\.0\.0\.0\/40": the prefix length must be 0 to 32/);
    expect(() => compileCoordinatorOptions({ env: { DROVER_API_TRUSTED_PROXIES: 'lb.local' } })).toThrow(
      /api\.trustedProxies\.0: "lb\.local" is not an IP address or CIDR/,
    );
    expect(() =>
      compileCoordinatorOptions({ file: { path: 'c.yaml', text: 'api:\n  maxStreamsPerToken: 0\n' } }),
    ).toThrow(/api\.maxStreamsPerToken/);
    const d = compileCoordinatorOptions({ env: {} });
    expect(d.api).toMatchObject({ trustedProxies: [], maxStreamsPerToken: 8 });
    const c = compileCoordinatorOptions({
      env: { DROVER_API_TRUSTED_PROXIES: '10.0.0.1, fd00::/8', DROVER_API_MAX_STREAMS_PER_TOKEN: '3' },
    });
    expect(c.api).toMatchObject({ trustedProxies: ['10.0.0.1', 'fd00::/8'], maxStreamsPerToken: 3 });
  });
});

describe('failure keys', () => {
  it('a failure counts against the address, and against the token id only when one was claimed', () => {
    expect(authFailureKeys('198.51.100.7')).toEqual(['addr:198.51.100.7']);
    expect(authFailureKeys('198.51.100.7', 'ab12cd34')).toEqual(['addr:198.51.100.7', 'token:ab12cd34']);
  });

  it('counts per key in a window; a key blocks at the limit, others do not', () => {
    const clock = new ManualClock(0);
    const l = new FailureLimiter(clock, { maxFailures: 3, windowMs: 1000 });
    for (const k of authFailureKeys('a', 't1')) l.fail(k);
    for (const k of authFailureKeys('a', 't1')) l.fail(k);
    l.fail(addressKey('b'));
    expect(l.fail(addressKey('a'))).toBe(3);
    expect(l.blockedFor(addressKey('a'))).toBe(1000);
    expect(l.failures('token:t1')).toBe(2);
    expect(l.blockedFor(addressKey('b'))).toBe(0);
    clock.advance(1000);
    expect(l.blockedFor(addressKey('a'))).toBe(0);
    expect(l.failures('token:t1')).toBe(0);
  });

  it('a token names its id; a wrong secret for a known id is told apart from garbage', async () => {
    const s = await TokenStore.open({ logger: silentLogger });
    const a = await s.create('alice', 'operator');
    expect(claimedTokenId(a.token)).toBe(a.id);
    const wrong = `drv_${a.id}_${'A'.repeat(43)}`;
    expect(s.check(a.token)).toEqual({ token: expect.objectContaining({ id: a.id, name: 'alice' }) });
    expect(s.check(wrong)).toEqual({ wrongSecretFor: expect.objectContaining({ id: a.id, name: 'alice' }) });
    expect(s.check(`drv_00000000_${'A'.repeat(43)}`)).toEqual({});
    expect(s.check(`drv_${'A'.repeat(43)}`)).toEqual({});
    expect(s.check(`drv_${a.id}_short`)).toEqual({});
    expect(claimedTokenId('garbage')).toBeUndefined();
  });

  it('a token from before the id was embedded (drv_ + 43 characters) still verifies', async () => {
    const legacy = `drv_${randomBytes(32).toString('base64url')}`;
    const path = join(mkdtempSync(join(tmpdir(), 'drover-tokens-')), 'tokens.json');
    const rec = {
      id: 'old1',
      name: 'legacy',
      role: 'viewer',
      sha256: createHash('sha256').update(legacy).digest('hex'),
      createdAt: '2026-01-01T00:00:00.000Z',
    };
    writeFileSync(path, JSON.stringify({ version: 1, tokens: [rec] }));
    const s = await TokenStore.open({ path, logger: silentLogger });
    expect(s.check(legacy).token).toMatchObject({ id: 'old1', name: 'legacy' });
    expect(claimedTokenId(legacy)).toBeUndefined();
  });
});
