// The REST API's failure limit (issue 15 point 9): keyed by client address and token id, a valid
// token always passes, X-Forwarded-For is honoured only from a trusted proxy.
import { afterEach, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../helpers/api.js';

let t: TestApi | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function call(
  api: TestApi,
  token: string | undefined,
  opts: { from?: string; xff?: string; url?: string } = {},
) {
  const res = await api.app.inject({
    method: 'GET',
    url: opts.url ?? '/v1/nodes',
    remoteAddress: opts.from ?? '127.0.0.1',
    headers: {
      ...(token ? api.auth(token) : {}),
      ...(opts.xff ? { 'x-forwarded-for': opts.xff } : {}),
    },
  });
  return { status: res.statusCode, json: res.json() as { code?: string; message?: string } };
}

/** A well-formed token naming `id` with a wrong secret. */
const wrongSecretFor = (id: string, i: number) => `drv_${id}_${String(i).padStart(43, 'x')}`;

describe('API failure limit', () => {
  it('a blocked address still lets a valid token through; a wrong or missing one gets 429', async () => {
    t = await startTestApi();
    for (let i = 0; i < 10; i++)
      expect((await call(t, `drv_guess${i}`, { from: '10.9.9.9' })).status).toBe(401);
    const refused = await call(t, 'drv_guess10', { from: '10.9.9.9' });
    expect(refused.status).toBe(429);
    expect(refused.json.code).toBe('DROVER_ERR_RATE_LIMITED');
    expect(refused.json.message).toMatch(/from 10\.9\.9\.9/);
    expect((await call(t, undefined, { from: '10.9.9.9' })).status).toBe(429);
    // the operators behind the same address keep working
    expect((await call(t, t.operator, { from: '10.9.9.9' })).status).toBe(200);
    expect((await call(t, t.viewer, { from: '10.9.9.9' })).status).toBe(200);
    // the right role is still needed
    expect((await call(t, t.viewer, { from: '10.9.9.9', url: '/v1/tokens' })).status).toBe(403);
    // another address is not blocked
    expect((await call(t, 'drv_guess11', { from: '10.9.9.8' })).status).toBe(401);
  });

  it('wrong secrets for one token id block the sending address, count against the id, and never the token itself', async () => {
    t = await startTestApi();
    const ops = t.tokens.list().find((x) => x.name === 'ops')!;
    for (let i = 0; i < 10; i++)
      expect((await call(t, wrongSecretFor(ops.id, i), { from: '10.1.1.1' })).status).toBe(401);
    expect((await call(t, wrongSecretFor(ops.id, 99), { from: '10.1.1.1' })).status).toBe(429);
    // the token the guesses named still works, from anywhere, the guesser's address included
    expect((await call(t, t.operator, { from: '10.1.1.1' })).status).toBe(200);
    expect((await call(t, t.operator, { from: '10.2.2.2' })).status).toBe(200);
    const metrics = await t.metrics.registry.metrics();
    expect(metrics).toMatch(new RegExp(`drover_api_token_auth_failures_total\\{token_id="${ops.id}"\\} 10`));
    expect(metrics).toMatch(/drover_api_auth_failures_total\{reason="wrong-secret"\} 10/);
    expect(metrics).toMatch(/drover_api_auth_failures_total\{reason="rate-limited"\} 1/);
  });

  it('honours X-Forwarded-For only from a trusted proxy', async () => {
    t = await startTestApi({ trustedProxies: ['10.0.0.0/24'] });
    // through the proxy, ten guesses from one client block that client only
    for (let i = 0; i < 10; i++)
      expect((await call(t, `drv_g${i}`, { from: '10.0.0.1', xff: '198.51.100.7' })).status).toBe(401);
    expect((await call(t, 'drv_g', { from: '10.0.0.1', xff: '198.51.100.7' })).status).toBe(429);
    expect((await call(t, 'drv_g', { from: '10.0.0.1', xff: '198.51.100.8' })).status).toBe(401);
    // the proxy itself is not blocked (its clients are told apart)
    expect((await call(t, 'drv_g', { from: '10.0.0.1' })).status).toBe(401);
    // a peer that is not a trusted proxy cannot pick its address with the header: its own is blocked
    for (let i = 0; i < 10; i++)
      expect((await call(t, `drv_s${i}`, { from: '203.0.113.5', xff: `198.51.100.${50 + i}` })).status).toBe(
        401,
      );
    expect((await call(t, 'drv_s', { from: '203.0.113.5', xff: '198.51.100.99' })).status).toBe(429);
    // nor can it blame someone else: 198.51.100.60 was named by the spoofer, and is not blocked
    expect((await call(t, 'drv_s', { from: '10.0.0.1', xff: '198.51.100.60' })).status).toBe(401);
  });

  it('without trusted proxies the header is ignored', async () => {
    t = await startTestApi();
    for (let i = 0; i < 10; i++)
      expect((await call(t, `drv_g${i}`, { from: '10.0.0.1', xff: `198.51.100.${i}` })).status).toBe(401);
    expect((await call(t, 'drv_g', { from: '10.0.0.1', xff: '198.51.100.200' })).status).toBe(429);
  });

  it('a bad trusted-proxy entry stops the API from being built, naming the entry', async () => {
    await expect(startTestApi({ trustedProxies: ['10.0.0.0/8', 'lb.internal'] })).rejects.toThrow(
      /api\.trustedProxies: "lb\.internal" is not an IP address or CIDR/,
    );
  });
});
