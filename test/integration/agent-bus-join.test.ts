// Issue 15, points 3–5 over a real nats-server running the generated auth and TLS, with a real
// coordinator: an agent joins with a per-host token and gets its own credentials; a used-up,
// expired or revoked token, a wrong pin and a missing pin are refused with a clear error and
// leave no credentials; trust on first use needs its flag; a corrupt pin file stops the agent;
// removing a node cuts it off, and it cannot come back without a new token.
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, credsAuthenticator } from 'nats';
import { describe, expect, it } from 'vitest';
import { Agent } from '../../agent/agent.js';
import { busCredsPath } from '../../agent/bus-join.js';
import { startTestAgent } from '../helpers/agent-harness.js';
import { hostFacts, startJoinFleet } from '../helpers/join-fleet.js';
import { waitFor } from '../helpers/wait.js';

const ready = (f: Awaited<ReturnType<typeof startJoinFleet>>, id: string) => {
  const r = f.coord.engine.nodes.get(id);
  return r ? f.coord.engine.nodes.effectiveState(r) : undefined;
};

describe('joining the bus with a per-host token', () => {
  it('a valid token joins the host: node Ready with its own creds; the token is used up', async () => {
    const f = await startJoinFleet({ name: 'join-ok' });
    const t = await f.token({ description: 'first host' });
    const agent = await f.agent(t.token, { nodeId: 'host-a' });
    await waitFor('host-a Ready', () => ready(f, 'host-a') === 'Ready');
    const creds = busCredsPath(agent.options.dataDir);
    expect(existsSync(creds)).toBe(true);
    expect(statSync(creds).mode & 0o777).toBe(0o600);
    expect(readFileSync(creds, 'utf8')).toMatch(/BEGIN NATS USER JWT/);
    // the record holds the node's bus key; the token counts its use and is now used up
    const rec = f.coord.engine.nodes.get('host-a')!;
    expect(rec.busKey).toMatch(/^U[A-Z2-7]{55}$/);
    expect(rec.joinedWith).toBe(t.id);
    expect(f.coord.joinTokens!.list().find((x) => x.id === t.id)).toMatchObject({
      used: 1,
      uses: 1,
      state: 'used',
      nodes: ['host-a'],
    });
    // the pin was written from the configured fingerprint
    expect(
      JSON.parse(readFileSync(join(agent.options.dataDir, 'coordinator-key.json'), 'utf8')).fingerprint,
    ).toBe(f.fingerprint);
    expect(f.coord.engine.events.list({ kind: 'node.join-token-used' })).toHaveLength(1);
  });

  it('a used-up token is refused for a second host, clearly, and it keeps no creds', async () => {
    const f = await startJoinFleet({ name: 'join-used' });
    const t = await f.token();
    await f.agent(t.token, { nodeId: 'host-a' });
    await waitFor('host-a Ready', () => ready(f, 'host-a') === 'Ready');
    const opts = f.agentOptions(t.token, { nodeId: 'host-b', advertiseAddress: '127.0.0.2' });
    const err = await startTestAgent(opts).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(
      /join token .* (expired, used up or revoked|is used up).*drover token create --join/,
    );
    expect(existsSync(busCredsPath(opts.dataDir))).toBe(false);
    expect(f.coord.engine.nodes.get('host-b')).toBeUndefined();
  });

  it('an expired token is refused before it is sent; a revoked one by the bus', async () => {
    const f = await startJoinFleet({ name: 'join-expired' });
    const short = await f.token({ ttlMs: 1000 });
    await waitFor('the token to expire', () => f.coord.joinTokens!.list()[0]?.state === 'expired', {
      timeoutMs: 5000,
    });
    const a = f.agentOptions(short.token, { nodeId: 'host-x' });
    const e1 = await startTestAgent(a).catch((e: Error) => e);
    expect((e1 as Error).message).toMatch(
      new RegExp(`join token ${short.id} expired at .*drover token create --join`),
    );
    expect(existsSync(busCredsPath(a.dataDir))).toBe(false);

    const revoked = await f.token();
    await f.coord.joinTokens!.revoke(revoked.id);
    const b = f.agentOptions(revoked.token, { nodeId: 'host-y' });
    const e2 = await startTestAgent(b).catch((e: Error) => e);
    expect((e2 as Error).message).toMatch(
      /refused join token .*expired, used up or revoked.*drover token create --join/,
    );
    expect(existsSync(busCredsPath(b.dataDir))).toBe(false);
    expect(f.coord.engine.nodes.all()).toHaveLength(0);
  });

  it('a wrong pin is refused and leaves no creds; no pin needs the insecure flag, which works', async () => {
    const f = await startJoinFleet({ name: 'join-pin' });
    const t = await f.token({ uses: 3 });
    const wrong = f.agentOptions(t.token, { nodeId: 'host-w', coordinatorKeyFingerprint: 'ab'.repeat(32) });
    const e1 = await startTestAgent(wrong).catch((e: Error) => e);
    expect((e1 as Error).message).toMatch(/not the pinned coordinator key abab/);
    expect((e1 as Error).message).toMatch(/no credentials were written/);
    expect(existsSync(busCredsPath(wrong.dataDir))).toBe(false);

    const none = f.agentOptions(t.token, { nodeId: 'host-n', coordinatorKeyFingerprint: undefined });
    const e2 = await startTestAgent(none).catch((e: Error) => e);
    expect((e2 as Error).message).toMatch(
      /no coordinatorKeyFingerprint is configured.*insecureTrustFirstCoordinator/,
    );
    expect(existsSync(busCredsPath(none.dataDir))).toBe(false);

    const tofu = f.agentOptions(t.token, {
      nodeId: 'host-t',
      advertiseAddress: '127.0.0.3',
      coordinatorKeyFingerprint: undefined,
      insecureTrustFirstCoordinator: true,
    });
    await startTestAgent(tofu, { factsSource: hostFacts('host-t') });
    await waitFor('host-t Ready', () => ready(f, 'host-t') === 'Ready');
    expect(JSON.parse(readFileSync(join(tofu.dataDir, 'coordinator-key.json'), 'utf8')).fingerprint).toBe(
      f.fingerprint,
    );
    // the coordinator cannot tell a refused reply from a lost one: host-w's join counted a use
    // (its record waits Pending, with no credentials on the host); the missing pin used nothing
    expect(f.coord.joinTokens!.list()[0]).toMatchObject({ used: 2, nodes: ['host-w', 'host-t'] });
  });

  it('a corrupt pin file stops the agent with a message naming the file (no trust on first use)', async () => {
    const f = await startJoinFleet({ name: 'join-corrupt-pin' });
    const t = await f.token();
    const opts = f.agentOptions(t.token, {
      nodeId: 'host-c',
      coordinatorKeyFingerprint: undefined,
      insecureTrustFirstCoordinator: true,
    });
    const pinFile = join(opts.dataDir, 'coordinator-key.json');
    writeFileSync(pinFile, '{"publicKey": "not-a-key"');
    const agent = new Agent(opts, { binaries: { binaries: {} } });
    const err = await agent.start().catch((e: Error) => e);
    expect((err as Error).message).toContain(pinFile);
    expect((err as Error).message).toMatch(/damaged/);
    expect(agent.state).toBe('failed');
    expect(existsSync(busCredsPath(opts.dataDir))).toBe(false);
    expect(f.coord.joinTokens!.list()[0]).toMatchObject({ used: 0, state: 'active' });
  });

  it('removing a node disconnects it, and it cannot come back without a new token', async () => {
    const f = await startJoinFleet({ name: 'join-remove' });
    const t = await f.token();
    const agent = await f.agent(t.token, { nodeId: 'host-r' });
    await waitFor('host-r Ready', () => ready(f, 'host-r') === 'Ready');
    const creds = busCredsPath(agent.options.dataDir);
    // a connection of our own with the node's creds sees the revocation too
    const nc = await connect({
      servers: f.natsUrl,
      authenticator: credsAuthenticator(new Uint8Array(readFileSync(creds))),
      inboxPrefix: '_INBOX_host-r',
      tls: { caFile: f.caFile },
      reconnect: false,
    });
    const closed = nc.closed();
    await f.coord.engine.remove('host-r', { force: true });
    const why = await closed;
    expect(String(why?.message ?? why)).toMatch(/revoked|authorization/i);
    await waitFor('the agent disconnected', () => agent.session?.isConnected === false);
    // its creds no longer connect
    const again = await connect({
      servers: f.natsUrl,
      authenticator: credsAuthenticator(new Uint8Array(readFileSync(creds))),
      tls: { caFile: f.caFile },
      reconnect: false,
    }).catch((e: Error) => e);
    expect(String((again as Error).message)).toMatch(/authorization violation/i);
    // it tried to join again with its (used-up) token: refused, so the node stays gone
    await new Promise((r) => setTimeout(r, 1500));
    expect(f.coord.engine.nodes.get('host-r')).toBeUndefined();
    // with a new token it comes back
    const t2 = await f.token();
    await agent.close();
    await f.agent(t2.token, { nodeId: 'host-r', dataDir: agent.options.dataDir });
    await waitFor('host-r Ready again', () => ready(f, 'host-r') === 'Ready');
  });
});
