import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkedJoinToken } from '../../agent/bus-join.js';
import { parseJoinArgs } from '../../agent/join.js';
import { KeyPin } from '../../agent/keys.js';
import { parseTtl } from '../../coordinator/api/routes/join.js';
import { claimsUpdateProblem } from '../../coordinator/bus/account-push.js';
import { joinVerdict } from '../../coordinator/engine/join.js';
import { checkUse, type JoinTokenRecord, JoinTokenStore, tokenState } from '../../coordinator/join-tokens.js';
import type { NodeRecord } from '../../coordinator/model.js';
import { MemoryStore } from '../../coordinator/store/index.js';
import { ManualClock } from '../../lib/clock.js';
import { silentLogger } from '../../lib/logger.js';
import { TokenBucket } from '../../lib/token-bucket.js';
import { encodeJoinToken, type Join, PROTOCOL_VERSION } from '../../protocol/index.js';

const NOW = Date.parse('2026-01-01T00:00:00Z');
const rec = (o: Partial<JoinTokenRecord> = {}): JoinTokenRecord => ({
  id: 'abc123def',
  description: '',
  createdAt: new Date(NOW - 1000).toISOString(),
  expiresAt: new Date(NOW + 3600_000).toISOString(),
  uses: 1,
  used: 0,
  bootstrapKey: 'UCXPHN4X4SQUWJGNMOFMPU5BSAVQZN4RSC6LFGOHFRDLHKGJBHXKJ66B',
  ...o,
});

describe('join token decisions (pure)', () => {
  it('states: active, used, expired, revoked (revoked wins, then used)', () => {
    expect(tokenState(rec(), NOW)).toBe('active');
    expect(tokenState(rec({ used: 1 }), NOW)).toBe('used');
    expect(tokenState(rec({ expiresAt: new Date(NOW).toISOString() }), NOW)).toBe('expired');
    expect(tokenState(rec({ used: 1, revokedAt: 'x' }), NOW)).toBe('revoked');
  });

  it('checkUse refuses each ended state with its code and the way out', () => {
    expect(checkUse(rec(), NOW)).toEqual({ ok: true });
    expect(checkUse(undefined, NOW, 'zzzzzz')).toMatchObject({
      ok: false,
      code: 'DROVER_ERR_JOIN_TOKEN_UNKNOWN',
    });
    const used = checkUse(rec({ uses: 2, used: 2 }), NOW);
    expect(used).toMatchObject({ ok: false, code: 'DROVER_ERR_JOIN_TOKEN_USED' });
    expect(!used.ok && used.message).toMatch(/used up \(2 of 2 use\(s\)\).*drover token create --join/);
    expect(checkUse(rec({ expiresAt: new Date(NOW - 1).toISOString() }), NOW)).toMatchObject({
      code: 'DROVER_ERR_JOIN_TOKEN_EXPIRED',
    });
    expect(checkUse(rec({ revokedAt: new Date(NOW).toISOString() }), NOW)).toMatchObject({
      code: 'DROVER_ERR_JOIN_TOKEN_REVOKED',
    });
  });

  const join: Join = {
    v: PROTOCOL_VERSION,
    type: 'join',
    tokenId: 'abc123def',
    nodeId: 'n1',
    hostname: 'n1',
    address: '10.0.0.1',
    fingerprint: { machineId: 'm1', macs: [] },
    userKey: 'UCXPHN4X4SQUWJGNMOFMPU5BSAVQZN4RSC6LFGOHFRDLHKGJBHXKJ66B',
    nonce: 'nonce-0123456789ab',
    agentVersion: 't',
  };
  const base = {
    subjectTokenId: 'abc123def',
    join,
    token: { ok: true } as const,
    existing: undefined,
    pendingCount: 0,
    maxPending: 2,
  };

  it('joinVerdict: subject and body agree, token, fingerprint, Pending cap', () => {
    expect(joinVerdict(base)).toBeUndefined();
    expect(joinVerdict({ ...base, subjectTokenId: 'other1' })?.code).toBe('DROVER_ERR_JOIN_REFUSED');
    expect(
      joinVerdict({ ...base, token: { ok: false, code: 'DROVER_ERR_JOIN_TOKEN_USED', message: 'm' } })?.code,
    ).toBe('DROVER_ERR_JOIN_TOKEN_USED');
    const other = {
      id: 'n1',
      state: 'Ready',
      fingerprint: { machineId: 'm2', macs: [] },
    } as unknown as NodeRecord;
    const v = joinVerdict({ ...base, existing: other });
    expect(v).toMatchObject({ code: 'DROVER_ERR_JOIN_REFUSED', event: { kind: 'node.refused' } });
    expect(v?.message).toMatch(/belongs to another machine/);
    // the same machine may join again (it lost its credentials) even at the cap
    const same = { ...other, fingerprint: { machineId: 'm1', macs: [] } } as NodeRecord;
    expect(joinVerdict({ ...base, existing: same, pendingCount: 5 })).toBeUndefined();
    expect(joinVerdict({ ...base, pendingCount: 2 })).toMatchObject({
      code: 'DROVER_ERR_PENDING_CAP',
      event: { kind: 'node.pending-cap' },
    });
  });

  it('TokenBucket: a burst, then the rate; says when to retry', () => {
    let now = 0;
    const b = new TokenBucket({ now: () => now } as never, 2, 3);
    expect([b.take(), b.take(), b.take(), b.take()]).toEqual([true, true, true, false]);
    expect(b.retryAfterMs()).toBe(500);
    now = 500;
    expect(b.take()).toBe(true);
    expect(b.take()).toBe(false);
    now = 100_000;
    expect([b.take(), b.take(), b.take(), b.take()]).toEqual([true, true, true, false]);
  });

  it('parseTtl takes units (d too) and refuses bare numbers', () => {
    expect(parseTtl('1h')).toBe(3600_000);
    expect(parseTtl('1d12h')).toBe(36 * 3600_000);
    expect(parseTtl('30m')).toBe(1800_000);
    expect(parseTtl('3600')).toBeUndefined();
    expect(parseTtl('soon')).toBeUndefined();
  });

  it('claimsUpdateProblem reads the server answer', () => {
    const e = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
    expect(claimsUpdateProblem(e({ data: { code: 200, message: 'jwt updated' } }))).toBeUndefined();
    expect(claimsUpdateProblem(e({ error: { code: 400, description: 'bad jwt' } }))).toMatch(
      /refused.*400 bad jwt/,
    );
    expect(claimsUpdateProblem(new TextEncoder().encode('x'))).toMatch(/not JSON/);
  });
});

describe('the agent side of joining', () => {
  const token = (expiresAt: string) =>
    encodeJoinToken({
      id: 'abc123def',
      jwt: 'a.b.c',
      seed: `SU${'A'.repeat(56)}`,
      expiresAt,
    });

  it('checkedJoinToken refuses a damaged, old-style or expired token, saying a new one is needed', () => {
    expect(() => checkedJoinToken('s3cret', NOW)).toThrow(/does not start with drover-join-v1\./);
    expect(() => checkedJoinToken('drover-join-v1.!!', NOW)).toThrow(/not base64url/);
    expect(() => checkedJoinToken(token(new Date(NOW - 1).toISOString()), NOW)).toThrow(
      /join token abc123def expired at .*drover token create --join/,
    );
    expect(checkedJoinToken(token(new Date(NOW + 1000).toISOString()), NOW).id).toBe('abc123def');
  });

  it('a corrupt or unreadable pin file stops the agent naming the file; no pin needs the insecure flag', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drover-pin-'));
    const file = join(dir, 'coordinator-key.json');
    for (const text of ['{', '{"fingerprint":"x"}', '{"publicKey":"AAAA"}']) {
      writeFileSync(file, text);
      const err = await new KeyPin(dir, undefined, undefined, true).load().catch((e: Error) => e);
      expect((err as Error).message).toContain(file);
      expect((err as { code?: string }).code).toBe('DROVER_ERR_PIN_FILE');
    }
    const empty = mkdtempSync(join(tmpdir(), 'drover-pin-'));
    const pin = new KeyPin(empty);
    await pin.load();
    expect(() => pin.requirePinOrTofu()).toThrow(/insecureTrustFirstCoordinator/);
    expect(() => new KeyPin(empty, undefined, undefined, true).requirePinOrTofu()).not.toThrow();
    expect(() => new KeyPin(empty, 'ab'.repeat(32)).requirePinOrTofu()).not.toThrow();
  });

  it('drover-agent join takes the long token and needs the fingerprint unless the insecure flag', () => {
    const t = token(new Date(Date.now() + 3600_000).toISOString());
    const long = `${t}${''}`;
    const fp = 'ab'.repeat(32);
    expect(
      parseJoinArgs(['--server', 'tls://h:4222', '--token', long, '--coordinator-key-fingerprint', fp]),
    ).toMatchObject({
      token: long,
      coordinatorKeyFingerprint: fp,
    });
    expect(() => parseJoinArgs(['--server', 'tls://h:4222', '--token', long])).toThrow(
      /--coordinator-key-fingerprint is required.*--insecure-trust-first-coordinator/,
    );
    expect(
      parseJoinArgs(['--server', 'tls://h:4222', '--token', long, '--insecure-trust-first-coordinator']),
    ).toMatchObject({ insecureTrustFirstCoordinator: true });
    expect(() =>
      parseJoinArgs([
        '--server',
        'tls://h:4222',
        '--token',
        'old-shared',
        '--coordinator-key-fingerprint',
        fp,
      ]),
    ).toThrow(/drover token create --join/);
  });
});

describe('join token records written by two coordinators (HA: a previous leader, a new one)', () => {
  const bus = {
    revoked: [] as string[],
    async bootstrapUser(tokenId: string) {
      return {
        jwt: `jwt-${tokenId}`,
        publicKey: 'UCXPHN4X4SQUWJGNMOFMPU5BSAVQZN4RSC6LFGOHFRDLHKGJBHXKJ66B',
        seed: 'SU',
      };
    },
    async revoke(key: string) {
      this.revoked.push(key);
    },
    caPem: () => undefined,
  };
  const open = (store: MemoryStore, clock: ManualClock) =>
    JoinTokenStore.open({ store, bus, clock, logger: silentLogger });

  it('a use on a stale copy reads the record again and counts on what is stored', async () => {
    const store = new MemoryStore();
    const clock = new ManualClock(NOW);
    const a = await open(store, clock);
    const t = await a.create({ uses: 2 });
    const b = await open(store, clock);
    await a.use(t.id, 'n1');
    // b's copy still says 0 uses: it must not write over n1's use
    expect((await b.use(t.id, 'n2')).used).toBe(2);
    expect(
      ((await store.get<JoinTokenRecord>(`join-tokens/${t.id}`))!.value as JoinTokenRecord).nodes,
    ).toEqual(['n1', 'n2']);
    // and a third use is refused on the stored count, from either copy
    await expect(a.use(t.id, 'n3')).rejects.toMatchObject({ code: 'DROVER_ERR_JOIN_TOKEN_USED' });
  });

  it('a sweep on a stale copy finds the revocation already recorded, and does not fail on it again', async () => {
    const store = new MemoryStore();
    const clock = new ManualClock(NOW);
    const a = await open(store, clock);
    const t = await a.create({ uses: 1 });
    await a.use(t.id, 'n1');
    const b = await open(store, clock);
    await a.revokeEnded(t.id);
    expect(await b.sweep()).toBe(1);
    expect(b.get(t.id)?.busRevoked).toBe(true);
    // nothing left to do on either copy
    expect(await b.sweep()).toBe(0);
    expect(await a.sweep()).toBe(0);
  });
});
