// Issue 15 point 12, the bus: a real nats-server running the generated auth (operator, account,
// user JWTs, TLS), a real coordinator on its own credentials, and an attacker holding node A's
// credentials. Each attempt is refused — by the server's permissions, with the error it names —
// and changes nothing in the coordinator.
import { connect, type Msg, type NatsConnection } from 'nats';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CoordinatorHandle } from '../../coordinator/daemon.js';
import { encode, PROTOCOL_VERSION, type Register, subjects } from '../../protocol/index.js';
import { sampleFacts } from '../helpers/fixtures.js';
import { waitFor } from '../helpers/proc.js';
import { type NodeClient, type SecureBus, startSecureBus, startSecureCoordinator } from './bus-fixture.js';

const enc = (v: unknown) => encode(v);

function register(nodeId: string, over: Partial<Register> = {}): Register {
  return {
    v: PROTOCOL_VERSION,
    type: 'register',
    nodeId,
    hostname: nodeId,
    address: nodeId === 'node-a' ? '10.9.0.1' : '10.9.0.2',
    labels: {},
    facts: sampleFacts({ hostname: nodeId, machineId: `m-${nodeId}` }),
    fingerprint: { machineId: `m-${nodeId}`, macs: [] },
    agentVersion: 'security-test',
    ...over,
  } as Register;
}

/**
 * Waits until the server has refused `op` on `subject` for this client: nats-server logs the
 * violation naming the user's nkey and the subject, and the client gets the error.
 */
async function violation(
  b: SecureBus,
  nc: NodeClient,
  op: 'Publish' | 'Subscription',
  subject: string,
): Promise<void> {
  const line = `${op} Violation - Nkey "${nc.userKey}", Subject "${subject}"`;
  await waitFor(`nats-server to refuse: ${line}`, () => b.output().includes(line));
  if (op === 'Publish')
    await waitFor('the client to get the error', () => nc.errors.includes('PERMISSIONS_VIOLATION'));
}

/** A subscription whose callback sees the server's refusal as an error, never as a message. */
function trySubscribe(nc: NatsConnection, subject: string, onMsg: (m: Msg) => void = () => {}) {
  const refused: Error[] = [];
  const sub = nc.subscribe(subject, {
    callback: (err, m) => {
      if (err) refused.push(err);
      else onMsg(m);
    },
  });
  return { sub, refused };
}

/** What the coordinator holds about the fleet: must not change under any refused attempt. */
function snapshot(coord: CoordinatorHandle) {
  return JSON.stringify({
    nodes: coord.engine.nodes.all(),
    liveness: coord.engine.nodes.all().map((n) => coord.engine.nodes.liveness(n.id)?.lastSeenAt ?? null),
    counters: coord.bus.counters,
  });
}

describe('the bus refuses what an identity may not do', () => {
  let b: SecureBus;
  let coord: CoordinatorHandle;
  let a: Awaited<ReturnType<SecureBus['nodeClient']>>;
  let nodeB: Awaited<ReturnType<SecureBus['nodeClient']>>;

  beforeAll(async () => {
    b = await startSecureBus();
    coord = await startSecureCoordinator(b);
    a = await b.nodeClient('node-a');
    nodeB = await b.nodeClient('node-b');
    for (const [nc, id] of [
      [a, 'node-a'],
      [nodeB, 'node-b'],
    ] as const) {
      const r = await nc.request(subjects.register(id), enc(register(id)), {
        timeout: 5000,
      });
      expect(JSON.parse(new TextDecoder().decode(r.data))).toMatchObject({ accepted: true, nodeId: id });
    }
  });

  it('no credentials: the connection is refused', async () => {
    const before = snapshot(coord);
    await expect(
      connect({ servers: b.url, tls: { caFile: b.bus.tls!.caFile }, reconnect: false, timeout: 5000 }),
    ).rejects.toThrow(/Authorization Violation/);
    expect(snapshot(coord)).toBe(before);
  });

  it('a plain-text client (no TLS) is refused', async () => {
    await expect(
      connect({
        servers: b.url.replace('tls://', 'nats://'),
        tls: null,
        reconnect: false,
        timeout: 5000,
      } as never),
    ).rejects.toThrow();
  });

  it("A's credentials cannot fetch B's plan (which carries B's keys)", async () => {
    const before = snapshot(coord);
    await expect(
      a.request(
        subjects.planFetch('node-b'),
        enc({ v: PROTOCOL_VERSION, type: 'plan-fetch', nodeId: 'node-b' }),
        {
          timeout: 1500,
        },
      ),
    ).rejects.toThrow();
    await violation(b, a, 'Publish', subjects.planFetch('node-b'));
    expect(snapshot(coord)).toBe(before);
  });

  it("A's credentials cannot take the coordinators' leader lease, nor read or write the state bucket", async () => {
    const before = snapshot(coord);
    // the lease is a key of the HA bucket: a put is a publish on its $KV subject
    a.publish('$KV.drover-state-ha.leader', enc({ holder: 'node-a', term: 99, leaseMs: 2000 }));
    await violation(b, a, 'Publish', '$KV.drover-state-ha.leader');
    a.publish('$KV.drover-state.topology/x', enc({}));
    await violation(b, a, 'Publish', '$KV.drover-state.topology/x');
    // and no JetStream API: no stream info, no consumer on the state
    await expect(
      a.request('$JS.API.STREAM.INFO.KV_drover-state', enc({}), { timeout: 1500 }),
    ).rejects.toThrow();
    await violation(b, a, 'Publish', '$JS.API.STREAM.INFO.KV_drover-state');
    expect(snapshot(coord)).toBe(before);
  });

  it("A's credentials cannot ask for B's certificate", async () => {
    const before = snapshot(coord);
    await expect(
      a.request(subjects.csr('node-b'), enc({ nodeId: 'node-b' }), { timeout: 1500 }),
    ).rejects.toThrow();
    await violation(b, a, 'Publish', subjects.csr('node-b'));
    expect(snapshot(coord)).toBe(before);
  });

  it("A's credentials cannot publish B's heartbeat: a dead B is not kept alive", async () => {
    const seenBefore = coord.engine.nodes.liveness('node-b')?.lastSeenAt;
    expect(seenBefore).toBeTypeOf('number');
    const heartbeats = coord.bus.counters.heartbeats;
    a.publish(
      subjects.heartbeat('node-b'),
      enc({
        v: PROTOCOL_VERSION,
        type: 'heartbeat',
        nodeId: 'node-b',
        seq: 1,
        sentAt: new Date().toISOString(),
      }),
    );
    await violation(b, a, 'Publish', subjects.heartbeat('node-b'));
    await a.flush();
    expect(coord.bus.counters.heartbeats).toBe(heartbeats);
    expect(coord.engine.nodes.liveness('node-b')?.lastSeenAt).toBe(seenBefore);
  });

  it("A's credentials cannot send a task (or a plan) to any node", async () => {
    let got = 0;
    const sub = nodeB.subscribe(subjects.task('node-b'), { callback: () => got++ });
    await nodeB.flush();
    a.publish(
      subjects.task('node-b'),
      enc({ v: PROTOCOL_VERSION, type: 'task-push', task: { kind: 'stop' } }),
    );
    a.publish(subjects.plan('node-b'), enc({ type: 'plan-push' }));
    await violation(b, a, 'Publish', subjects.task('node-b'));
    await violation(b, a, 'Publish', subjects.plan('node-b'));
    await nodeB.flush();
    expect(got).toBe(0);
    sub.unsubscribe();
  });

  it("A's credentials cannot subscribe to '>' nor to another node's subjects", async () => {
    for (const subject of ['>', subjects.task('node-b'), subjects.plan('node-b'), subjects.heartbeatAll()]) {
      const t = trySubscribe(a, subject);
      await a.flush();
      await violation(b, a, 'Subscription', subject);
      await waitFor('the subscription to see the refusal', () => t.refused.length > 0);
      expect(t.refused[0]!.message).toMatch(/Permissions Violation for Subscription/);
      expect(t.sub.getReceived()).toBe(0);
    }
  });

  it("A's credentials cannot read B's replies (B's inbox prefix is B's alone)", async () => {
    const spy: Msg[] = [];
    trySubscribe(a, '_INBOX_node-b.>', (m) => spy.push(m));
    trySubscribe(a, '_INBOX.>', (m) => spy.push(m));
    await a.flush();
    await violation(b, a, 'Subscription', '_INBOX_node-b.>');
    await violation(b, a, 'Subscription', '_INBOX.>');
    // B asks the coordinator something; the reply goes to _INBOX_node-b.…, which A cannot see
    const r = await nodeB.request(subjects.register('node-b'), enc(register('node-b')), {
      timeout: 5000,
    });
    expect(r.subject.startsWith('_INBOX_node-b.')).toBe(true);
    expect(spy).toHaveLength(0);
  });

  it('a rogue responder cannot serve the registration or join subjects', async () => {
    for (const subject of [
      subjects.registerAll(),
      subjects.register('node-b'),
      subjects.joinAll(),
      'drover.v1.>',
    ]) {
      trySubscribe(a, subject, (m) => m.respond(enc({ accepted: true, plan: 'evil' })));
      await a.flush();
      await violation(b, a, 'Subscription', subject);
    }
    // B's registration is still answered by the coordinator (signing key, epoch), never by A
    const r = await nodeB.request(subjects.register('node-b'), enc(register('node-b')), {
      timeout: 5000,
    });
    expect(JSON.parse(new TextDecoder().decode(r.data))).toMatchObject({
      type: 'register-reply',
      keyFingerprint: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
  });

  it("A cannot register as B through its own subject (body's nodeId must match the sender's subject)", async () => {
    const before = snapshot(coord);
    const r = await a.request(subjects.register('node-a'), enc(register('node-b')), {
      timeout: 5000,
    });
    expect(JSON.parse(new TextDecoder().decode(r.data))).toMatchObject({
      code: 'DROVER_ERR_DECODE',
      message: expect.stringContaining('does not match subject'),
    });
    expect(JSON.stringify(coord.engine.nodes.get('node-b'))).toBe(
      JSON.stringify(JSON.parse(before).nodes.find((n: { id: string }) => n.id === 'node-b')),
    );
  });

  it('a reported address containing a newline is refused at decode and changes nothing', async () => {
    const before = JSON.stringify(coord.engine.nodes.get('node-a'));
    const r = await a.request(
      subjects.register('node-a'),
      enc(
        register('node-a', {
          address: '10.9.0.1\n  server evil 6.6.6.6:6443',
        }),
      ),
      { timeout: 5000 },
    );
    expect(JSON.parse(new TextDecoder().decode(r.data))).toMatchObject({
      code: 'DROVER_ERR_DECODE',
      details: { field: '/address' },
    });
    expect(JSON.stringify(coord.engine.nodes.get('node-a'))).toBe(before);
  });
});
