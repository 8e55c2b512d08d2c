// The one nats.js options builder both daemons use (lib/nats-options.ts), and each daemon's tuning.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { natsConnectionOptions as agentOptions } from '../../agent/session.js';
import { natsConnectionOptions as coordinatorOptions } from '../../coordinator/nats.js';
import { natsConnectOptions } from '../../lib/nats-options.js';

const FULL = {
  servers: ['tls://a:4222', 'tls://b:4222'],
  token: 't',
  user: 'u',
  password: 'p',
  tls: { ca: '/ca', cert: '/c', key: '/k' },
};

describe('natsConnectOptions', () => {
  it('reconnects forever and passes credentials and TLS files through', () => {
    const o = natsConnectOptions(FULL, { name: 'x', reconnect: { waitMs: 100, jitterMs: 50 } });
    expect(o).toEqual({
      servers: ['tls://a:4222', 'tls://b:4222'],
      name: 'x',
      reconnect: true,
      maxReconnectAttempts: -1,
      pingInterval: 10_000,
      reconnectTimeWait: 100,
      reconnectJitter: 50,
      token: 't',
      user: 'u',
      pass: 'p',
      tls: { caFile: '/ca', certFile: '/c', keyFile: '/k' },
    });
    // a copy: nats.js shuffles servers in place
    expect(o.servers).not.toBe(FULL.servers);
  });

  it('leaves out what is not configured: no credentials, no TLS, no authenticator', () => {
    const o = natsConnectOptions({ servers: ['nats://a'] }, { name: 'x', reconnect: { delayMs: () => 7 } });
    expect(Object.keys(o).sort()).toEqual(
      [
        'maxReconnectAttempts',
        'name',
        'pingInterval',
        'reconnect',
        'reconnectDelayHandler',
        'servers',
      ].sort(),
    );
    expect(o.reconnectDelayHandler?.()).toBe(7);
  });

  it('an empty tls block still asks for TLS; only the files given are set', () => {
    expect(
      natsConnectOptions({ servers: ['nats://a'], tls: {} }, { name: 'x', reconnect: { delayMs: () => 1 } })
        .tls,
    ).toEqual({});
    expect(
      natsConnectOptions(
        { servers: ['nats://a'], tls: { ca: '/ca' } },
        { name: 'x', reconnect: { delayMs: () => 1 } },
      ).tls,
    ).toEqual({ caFile: '/ca' });
  });

  it('an nkey seed and a creds file become authenticators; the creds file is read when connecting', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nats-opts-'));
    const creds = join(dir, 'x.creds');
    const one = natsConnectOptions(
      { servers: ['nats://a'], nkeySeed: 'SUAEXAMPLE' },
      { name: 'x', reconnect: { delayMs: () => 1 } },
    );
    expect(typeof one.authenticator).toBe('function');
    // the file need not exist when the options are built (it is read when connecting)
    const both = natsConnectOptions(
      { servers: ['nats://a'], nkeySeed: 'SUAEXAMPLE', credsFile: creds },
      { name: 'x', reconnect: { delayMs: () => 1 } },
    );
    expect(Array.isArray(both.authenticator)).toBe(true);
    expect((both.authenticator as unknown[]).length).toBe(2);
  });

  it('each daemon: the agent paces reconnects by the outage, the coordinator by a fixed wait', () => {
    const delay = () => 1234;
    const a = agentOptions('n1', { servers: ['nats://a'] }, delay);
    expect(a).toMatchObject({
      name: 'drover-agent-n1',
      reconnect: true,
      maxReconnectAttempts: -1,
      maxPingOut: 3,
      timeout: 5000,
      pingInterval: 10_000,
    });
    expect(a.reconnectDelayHandler).toBe(delay);
    expect(a.reconnectTimeWait).toBeUndefined();
    const c = coordinatorOptions({ servers: ['nats://a'], user: 'u', password: 'p' }, 'drover-coordinator');
    expect(c).toMatchObject({
      name: 'drover-coordinator',
      reconnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      reconnectJitter: 500,
      noAsyncTraces: true,
      pingInterval: 10_000,
      user: 'u',
      pass: 'p',
    });
    expect(c.reconnectDelayHandler).toBeUndefined();
  });
});
