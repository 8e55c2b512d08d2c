import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KeyPin } from '../../agent/keys.js';
import { checkPlan } from '../../agent/plan-guard.js';
import { natsConnectionOptions, reconnectDelay } from '../../agent/session.js';
import { generateSigningKey, signPlan } from '../../protocol/index.js';
import { samplePlan } from '../helpers/fixtures.js';
import { tempDir } from '../helpers/proc.js';

describe('reconnect delay', () => {
  it('grows with the outage, from 250 ms to a 10 s cap, with ±20 % jitter', () => {
    const mid = () => 0.5;
    expect(reconnectDelay(0, mid)).toBe(250);
    expect(reconnectDelay(2000, mid)).toBe(1000);
    expect(reconnectDelay(60_000, mid)).toBe(10_000);
    expect(reconnectDelay(2000, () => 0)).toBe(800);
    expect(reconnectDelay(2000, () => 1)).toBe(1200);
  });
});

describe('NATS connection options', () => {
  it('reconnect forever, with credentials and TLS files passed through', () => {
    const o = natsConnectionOptions(
      'n1',
      {
        servers: ['tls://a:4222'],
        user: 'u',
        password: 'p',
        token: 't',
        tls: { ca: '/ca', cert: '/c', key: '/k' },
      },
      () => 1,
    );
    expect(o).toMatchObject({
      servers: ['tls://a:4222'],
      maxReconnectAttempts: -1,
      reconnect: true,
      user: 'u',
      pass: 'p',
      token: 't',
      tls: { caFile: '/ca', certFile: '/c', keyFile: '/k' },
    });
    const nk = natsConnectionOptions('n1', { servers: ['nats://a'], nkeySeed: 'SUAEXAMPLE' }, () => 1);
    expect(typeof nk.authenticator).toBe('function');
  });
});

describe('plan guard', () => {
  const key = generateSigningKey();
  const signed = (gen: number, epoch = 1, nodeId = 'node-1') =>
    signPlan(samplePlan({ generation: gen, coordinatorEpoch: epoch, nodeId }), key);
  const applied = { generation: 5, checksum: signed(5).plan.checksum, coordinatorEpoch: 2 };
  const ctx = { nodeId: 'node-1', key: key.publicKey, applied };
  const code = (fn: () => unknown) => {
    try {
      fn();
      return 'ok';
    } catch (e) {
      return (e as { code: string }).code;
    }
  };
  it('orders plans by coordinator epoch, then generation', () => {
    expect(checkPlan(signed(6, 2), ctx).kind).toBe('apply');
    expect(checkPlan(signed(1, 3), ctx).kind).toBe('apply'); // a newer epoch may restart generations
    expect(checkPlan(signed(5, 2), ctx).kind).toBe('noop');
    expect(code(() => checkPlan(signed(4, 2), ctx))).toBe('DROVER_ERR_PLAN_STALE');
    expect(code(() => checkPlan(signed(9, 1), ctx))).toBe('DROVER_ERR_PLAN_STALE');
    expect(code(() => checkPlan(signed(1, 1), { ...ctx, applied: undefined }))).toBe('ok');
  });
  it('refuses without a key, for another node, or with a bad signature', () => {
    expect(code(() => checkPlan(signed(6, 2), { ...ctx, key: undefined }))).toBe('DROVER_ERR_NO_PINNED_KEY');
    expect(code(() => checkPlan(signed(6, 2, 'node-2'), ctx))).toBe('DROVER_ERR_PLAN_WRONG_NODE');
    expect(code(() => checkPlan(signed(6, 2), { ...ctx, key: generateSigningKey().publicKey }))).toBe(
      'DROVER_ERR_PLAN_SIGNATURE',
    );
  });
});

describe('key pin', () => {
  it('pins on first use (only with insecureTrustFirstCoordinator), accepts the same key, refuses another, survives a restart', async () => {
    const dir = tempDir('pin');
    const a = generateSigningKey();
    const b = generateSigningKey();
    const pin = new KeyPin(dir, undefined, undefined, true);
    await pin.load();
    expect(pin.key()).toBeUndefined();
    await pin.accept(a.publicKeyB64);
    expect(pin.fingerprint()).toBe(a.fingerprint);
    await pin.accept(a.publicKeyB64);
    await expect(pin.accept(b.publicKeyB64)).rejects.toMatchObject({ code: 'DROVER_ERR_KEY_MISMATCH' });
    const again = new KeyPin(dir);
    await again.load();
    expect(again.fingerprint()).toBe(a.fingerprint);
    await expect(again.accept(b.publicKeyB64)).rejects.toMatchObject({ code: 'DROVER_ERR_KEY_MISMATCH' });
  });
  it('checks a configured fingerprint and refuses non-ed25519 keys', async () => {
    const a = generateSigningKey();
    const pin = new KeyPin(tempDir('pin'), a.fingerprint);
    await expect(pin.accept(generateSigningKey().publicKeyB64)).rejects.toMatchObject({
      code: 'DROVER_ERR_KEY_MISMATCH',
    });
    await pin.accept(a.publicKeyB64);
    const rsa = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      .publicKey.export({ type: 'spki', format: 'der' })
      .toString('base64');
    await expect(new KeyPin(tempDir('pin')).accept(rsa)).rejects.toMatchObject({
      code: 'DROVER_ERR_KEY_MISMATCH',
      message: expect.stringMatching(/invalid signing key/),
    });
  });
});
