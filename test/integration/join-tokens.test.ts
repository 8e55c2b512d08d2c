// Issue 15, points 4 and 9 against a real coordinator on a real nats-server running the generated
// auth: join tokens created, listed and revoked over the API and the CLI; host names unique within
// a cluster (a second host that claims a taken name waits Pending, with an event); the Pending cap;
// malformed Join bodies refused with a signed, clear error that changes nothing; the join rate limit.

import { verify } from 'node:crypto';
import { join } from 'node:path';
import { connect, jwtAuthenticator, type NatsConnection } from 'nats';
import { describe, expect, it } from 'vitest';
import { compileCoordinatorOptions, RemovedOptionError } from '../../coordinator/config.js';
import {
  bootstrapInboxPrefix,
  decodeJoinToken,
  decodeMessage,
  encode,
  joinReplySigningBytes,
  PROTOCOL_VERSION,
  publicKeyFromB64,
  subjects,
} from '../../protocol/index.js';
import { startTestAgent } from '../helpers/agent-harness.js';
import { runCaptured } from '../helpers/daemons.js';
import { hostFacts, type JoinFleet, startJoinFleet } from '../helpers/join-fleet.js';
import { waitFor } from '../helpers/wait.js';

const DROVER = join(process.cwd(), 'dist', 'drover.mjs');

const api = async (f: JoinFleet, method: string, path: string, body?: unknown, token = f.adminToken) => {
  const r = await fetch(`${f.coord.api.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> & { items?: unknown[] } };
};

const state = (f: JoinFleet, id: string) => {
  const r = f.coord.engine.nodes.get(id);
  return r ? f.coord.engine.nodes.effectiveState(r) : undefined;
};

/** A raw connection as a token's bootstrap user. */
async function bootstrapConnection(f: JoinFleet, token: string): Promise<NatsConnection> {
  const b = decodeJoinToken(token);
  const nc = await connect({
    servers: f.natsUrl,
    authenticator: jwtAuthenticator(b.jwt, new TextEncoder().encode(b.seed)),
    inboxPrefix: bootstrapInboxPrefix(b.id),
    tls: { caFile: f.caFile },
    reconnect: false,
  });
  return nc;
}

describe('join tokens over the API and the CLI', () => {
  it('create, list (no secrets), revoke; bad input names the field; viewers may not', async () => {
    const f = await startJoinFleet({ name: 'jt-api' });
    const c = await api(f, 'POST', '/v1/join-tokens', { ttl: '1h', uses: 2, description: 'rack-4' });
    expect(c.status).toBe(201);
    expect(c.body).toMatchObject({ uses: 2, used: 0, state: 'active', description: 'rack-4' });
    expect(String(c.body.token)).toMatch(/^drover-join-v1\./);
    expect(decodeJoinToken(String(c.body.token)).ca).toContain('BEGIN CERTIFICATE');
    expect(String(c.body.joinCommand)).toContain(`--coordinator-key-fingerprint ${f.fingerprint}`);
    expect(String(c.body.joinCommand)).toContain(String(c.body.token));
    const hour = Date.parse(String(c.body.expiresAt)) - Date.parse(String(c.body.createdAt));
    expect(hour).toBe(3600_000);

    const list = await api(f, 'GET', '/v1/join-tokens');
    expect(list.body.items).toHaveLength(1);
    const text = JSON.stringify(list.body);
    expect(text).not.toContain('drover-join-v1');
    expect(text).not.toMatch(/bootstrapKey|seed|"token"/);

    for (const [body, field] of [
      [{ ttl: 'soon' }, 'ttl'],
      [{ ttl: '3600' }, 'ttl'],
      [{ uses: 0 }, 'uses'],
      [{ description: 'x'.repeat(300) }, 'description'],
      [{ role: 'admin' }, 'role'],
    ] as const) {
      const r = await api(f, 'POST', '/v1/join-tokens', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(String(r.body.message), JSON.stringify(body)).toContain(field);
    }
    expect((await api(f, 'GET', '/v1/join-tokens')).body.items).toHaveLength(1);

    const viewer = await api(f, 'POST', '/v1/tokens', { name: 'v', role: 'viewer' });
    expect((await api(f, 'POST', '/v1/join-tokens', {}, String(viewer.body.token))).status).toBe(403);
    expect((await api(f, 'GET', '/v1/join-tokens', undefined, String(viewer.body.token))).status).toBe(403);

    const gone = await api(f, 'DELETE', `/v1/join-tokens/${c.body.id}`);
    expect(gone.body).toMatchObject({ id: c.body.id, state: 'revoked' });
    expect((await api(f, 'DELETE', '/v1/join-tokens/nosuchtoken1')).status).toBe(404);
    // the revoked token's bootstrap user is cut off the bus
    await expect(bootstrapConnection(f, String(c.body.token))).rejects.toThrow(/authorization violation/i);

    // the join command makes a fresh single-use 24 h token
    const jc = await api(f, 'GET', '/v1/join-command');
    expect(String(jc.body.command)).toMatch(
      new RegExp(
        `^drover-agent join --server tls://127\\.0\\.0\\.1:\\d+ --token drover-join-v1\\.\\S+ --coordinator-key-fingerprint ${f.fingerprint}$`,
      ),
    );
    const made = f.coord.joinTokens!.list().find((t) => t.id === jc.body.tokenId)!;
    expect(made).toMatchObject({ uses: 1, used: 0, state: 'active' });
    expect(Date.parse(made.expiresAt) - Date.parse(made.createdAt)).toBe(24 * 3600_000);
  });

  it('drover token create --join / get tokens (KIND) / token revoke', async () => {
    const f = await startJoinFleet({ name: 'jt-cli' });
    const run = (...args: string[]) =>
      runCaptured(process.execPath, [DROVER, ...args], { env: f.cliEnv, timeout: 30_000 });
    const c = await run('token', 'create', '--join', '--ttl', '1h', '--uses', '3', '--description', 'rack-4');
    expect(c.code, c.stderr).toBe(0);
    const token = c.stdout.trim();
    expect(token).toMatch(/^drover-join-v1\./);
    expect(c.stderr).toMatch(/created join token [0-9a-f]+ \(3 use\(s\), expires /);
    expect(c.stderr).toContain(`drover-agent join --server tls://127.0.0.1:`);
    expect(c.stderr).toContain(`--coordinator-key-fingerprint ${f.fingerprint}`);
    const id = decodeJoinToken(token).id;

    const t = await run('get', 'tokens');
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toMatch(/^KIND\s+ID\s+NAME\s+ROLE\/STATE\s+USES\s+EXPIRES\s+AGE/);
    expect(t.stdout).toMatch(new RegExp(`join\\s+${id}\\s+rack-4\\s+active\\s+0/3`));
    expect(t.stdout).toMatch(/api\s+\S+\s+bootstrap-admin\s+admin/);
    const j = await run('get', 'tokens', '-o', 'json');
    const items = JSON.parse(j.stdout).items as Array<{ kind: string; id: string }>;
    expect(items.map((i) => i.kind).sort()).toEqual(['api', 'join']);
    expect(j.stdout).not.toContain('drover-join-v1');
    const y = await run('get', 'tokens', '-o', 'yaml');
    expect(y.stdout).toMatch(/kind: join/);

    const held = await run('token', 'create', '--join', '--require-approval');
    expect(held.code, held.stderr).toBe(0);
    expect(held.stderr).toMatch(/hosts wait Pending for `drover approve`/);
    const notJoin = await run('token', 'create', 'ci', '--require-approval');
    expect(notJoin.code).toBe(2);
    expect(notJoin.stderr).toMatch(/--require-approval are for join tokens: add --join/);

    const bad = await run('token', 'create', '--join', '--uses', 'many');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--uses/);
    const stray = await run('token', 'create', 'ci', '--ttl', '1h');
    expect(stray.stderr).toMatch(/add --join/);

    const r = await run('token', 'revoke', id);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`join token ${id} revoked`);
    expect((await run('get', 'tokens')).stdout).toMatch(new RegExp(`join\\s+${id}\\s+rack-4\\s+revoked`));
    const d = await run('token', 'create', '--join');
    const id2 = decodeJoinToken(d.stdout.trim()).id;
    expect((await run('token', 'delete', '--join', id2)).stdout).toContain(`join token ${id2} revoked`);
  });

  it('a coordinator config that still sets joinToken is refused, naming drover token create --join', () => {
    for (const text of ['joinToken: s3cret\n', 'joinTokenFile: /etc/drover/join-token\n'])
      expect(() => compileCoordinatorOptions({ file: { path: 'c.yaml', text }, env: {} })).toThrow(
        RemovedOptionError,
      );
    expect(() =>
      compileCoordinatorOptions({ file: { path: 'c.yaml', text: 'joinToken: x\n' }, env: {} }),
    ).toThrow(/drover token create --join/);
  });
});

describe('the join handler and intake limits', () => {
  it('a token that requires approval leaves its host Pending (event) until drover approve; a fresh join moves no cluster', async () => {
    const f = await startJoinFleet({ name: 'jt-approval' });
    const c = await api(f, 'POST', '/v1/join-tokens', {
      requireApproval: true,
      uses: 2,
      description: 'rack-9',
    });
    expect(c.status).toBe(201);
    expect(c.body).toMatchObject({ requireApproval: true, coordinatorKeyFingerprint: f.fingerprint });
    await f.agent(String(c.body.token), {
      nodeId: 'r-a',
      advertiseAddress: '127.0.0.1',
      labels: { 'drover.dev/cluster': 'rack' },
    });
    await waitFor('r-a registered', () => f.coord.engine.nodes.get('r-a')?.facts.cpu.model !== '');
    // it registered with its own credentials, and still waits: the token said so
    await new Promise((r) => setTimeout(r, 1500));
    expect(state(f, 'r-a')).toBe('Pending');
    const ev = f.coord.engine.events.list({ kind: 'node.awaiting-approval' });
    expect(ev.map((e) => e.nodeId)).toEqual(['r-a']);
    expect(ev[0]!.message).toMatch(/requires approval: it waits Pending .*drover approve r-a/);
    expect((await api(f, 'GET', '/v1/join-tokens')).body.items).toEqual(
      expect.arrayContaining([expect.objectContaining({ id: c.body.id, requireApproval: true, used: 1 })]),
    );
    expect((await api(f, 'POST', '/v1/nodes/r-a/approve')).status).toBe(200);
    await waitFor('r-a Ready', () => state(f, 'r-a') === 'Ready');
    // its first registration set its cluster: no "moved from cluster default" event
    expect(f.coord.engine.events.list({ kind: 'node.cluster-changed' })).toEqual([]);
    expect(f.coord.engine.nodes.get('r-a')).toMatchObject({ cluster: 'rack' });
    expect(f.coord.engine.nodes.get('r-a')?.joinedOnly).toBeUndefined();
    // a plain token admits at once
    await f.agent((await f.token()).token, { nodeId: 'r-b', advertiseAddress: '127.0.0.2' });
    await waitFor('r-b Ready', () => state(f, 'r-b') === 'Ready');
    // bad input: requireApproval must be a boolean; nothing is created
    const before = (await api(f, 'GET', '/v1/join-tokens')).body.items!.length;
    const bad = await api(f, 'POST', '/v1/join-tokens', { requireApproval: 'yes' });
    expect(bad.status).toBe(400);
    expect(String(bad.body.message)).toContain('requireApproval');
    expect((await api(f, 'GET', '/v1/join-tokens')).body.items!.length).toBe(before);
  });

  it('a second host claiming a taken host name waits Pending with node.hostname-conflict', async () => {
    const f = await startJoinFleet({ name: 'jt-hostname' });
    await f.agent((await f.token()).token, { nodeId: 'n-a', advertiseAddress: '127.0.0.1' }, 'dup');
    await waitFor('n-a Ready', () => state(f, 'n-a') === 'Ready');
    await f.agent((await f.token()).token, { nodeId: 'n-b', advertiseAddress: '127.0.0.2' }, 'dup');
    await waitFor('n-b held', () => f.coord.engine.nodes.get('n-b')?.heldFor === 'n-a');
    expect(state(f, 'n-b')).toBe('Pending');
    const ev = f.coord.engine.events.list({ kind: 'node.hostname-conflict' });
    expect(ev).toHaveLength(1);
    expect(ev[0]).toMatchObject({ nodeId: 'n-b', data: { existing: 'n-a', hostname: 'dup' } });
    expect(ev[0]!.message).toMatch(/claims host name dup, which node n-a has in cluster default/);
    // another cluster may have the name
    await f.agent(
      (await f.token()).token,
      { nodeId: 'n-c', advertiseAddress: '127.0.0.3', labels: { 'drover.dev/cluster': 'other' } },
      'dup',
    );
    await waitFor('n-c Ready', () => state(f, 'n-c') === 'Ready');
  });

  it('over maxPendingNodes a join is refused with a clear error and an event', async () => {
    const f = await startJoinFleet({ name: 'jt-cap', config: { maxPendingNodes: 1 } });
    await f.agent((await f.token()).token, { nodeId: 'p-a', advertiseAddress: '127.0.0.1' }, 'same');
    await waitFor('p-a Ready', () => state(f, 'p-a') === 'Ready');
    await f.agent((await f.token()).token, { nodeId: 'p-b', advertiseAddress: '127.0.0.2' }, 'same');
    await waitFor('p-b Pending', () => f.coord.engine.nodes.get('p-b')?.heldFor === 'p-a');
    const t = await f.token();
    const opts = f.agentOptions(t.token, { nodeId: 'p-c', advertiseAddress: '127.0.0.3' });
    const err = await startTestAgent(opts, { factsSource: hostFacts('p-c') }).catch((e: Error) => e);
    expect((err as Error).message).toMatch(
      /refused the join \(DROVER_ERR_PENDING_CAP\): 1 node\(s\) wait for approval \(maxPendingNodes 1\)/,
    );
    expect(f.coord.engine.nodes.get('p-c')).toBeUndefined();
    expect(f.coord.joinTokens!.list().find((x) => x.id === t.id)).toMatchObject({ used: 0, state: 'active' });
    expect(f.coord.engine.events.list({ kind: 'node.pending-cap' })[0]?.message).toMatch(
      /join of p-c refused/,
    );
  });

  it('malformed Join bodies get a signed, clear error and change nothing; then the rate limit refuses', async () => {
    const f = await startJoinFleet({
      name: 'jt-malformed',
      config: { registrationRate: 0.01, registrationBurst: 5 },
    });
    const t = await f.token();
    const id = decodeJoinToken(t.token).id;
    const nc = await bootstrapConnection(f, t.token);
    const ask = async (body: Uint8Array) =>
      decodeMessage('JoinReply', (await nc.request(subjects.join(id), body, { timeout: 5000 })).data);
    const good = {
      v: PROTOCOL_VERSION,
      type: 'join',
      tokenId: id,
      nodeId: 'evil',
      hostname: 'evil',
      address: '10.0.0.9',
      fingerprint: { machineId: 'm', macs: [] },
      userKey: 'UCXPHN4X4SQUWJGNMOFMPU5BSAVQZN4RSC6LFGOHFRDLHKGJBHXKJ66B',
      nonce: 'nonce-0123456789ab',
      agentVersion: 't',
    };
    const cases: Array<[Uint8Array, RegExp, string]> = [
      [new TextEncoder().encode('not json'), /malformed/, 'DROVER_ERR_DECODE'],
      [
        encode({ ...good, address: '10.0.0.1\n  server evil 6.6.6.6:6443' }),
        /\/address/,
        'DROVER_ERR_DECODE',
      ],
      [encode({ ...good, userKey: 'not-a-key' }), /\/userKey/, 'DROVER_ERR_DECODE'],
      [
        encode({ ...good, tokenId: 'othertoken1' }),
        /came on the subject of token/,
        'DROVER_ERR_JOIN_REFUSED',
      ],
    ];
    for (const [body, re, code] of cases) {
      const r = await ask(body);
      expect(r.ok).toBe(false);
      expect(r.error?.code).toBe(code);
      expect(r.error?.message).toMatch(re);
      // signed by the coordinator key (the agent checks it against its pin)
      expect(r.keyFingerprint).toBe(f.fingerprint);
      expect(
        verify(
          null,
          joinReplySigningBytes(r),
          publicKeyFromB64(r.signingKey),
          Buffer.from(r.signature, 'base64'),
        ),
      ).toBe(true);
    }
    expect(f.coord.engine.nodes.all()).toHaveLength(0);
    expect(f.coord.joinTokens!.list()[0]).toMatchObject({ used: 0, state: 'active' });
    // the burst of 5 is spent with one more; the next is refused, retry later, and nothing changed
    await ask(encode({}));
    const limited = await ask(encode(good));
    expect(limited.error?.code).toBe('DROVER_ERR_JOIN_RATE_LIMITED');
    expect(limited.error?.message).toMatch(/retry in \d+s/);
    expect(f.coord.engine.nodes.all()).toHaveLength(0);
    expect(f.coord.joinTokens!.list()[0]).toMatchObject({ used: 0 });
    await nc.close();
  });
});
