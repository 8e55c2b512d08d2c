// Issue 15 point 12, intake: join tokens that expired or were used up, a flood of registrations,
// and a report over its size cap, against a real nats-server running the generated auth and a
// real coordinator. Each attempt is refused with an error that names the problem, and changes
// nothing: no credentials are written, no node record appears, the use is not counted.
// (Replayed, expired and unsigned tasks against a real agent: test/security/tasks.test.ts.)
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { busCredsPath } from '../../agent/bus-join.js';
import { encode, PROTOCOL_VERSION, type Register, subjects } from '../../protocol/index.js';
import { startTestAgent } from '../helpers/agent-harness.js';
import { sampleFacts } from '../helpers/fixtures.js';
import { hostFacts, startJoinFleet } from '../helpers/join-fleet.js';
import { waitFor } from '../helpers/proc.js';
import { startSecureBus, startSecureCoordinator } from './bus-fixture.js';

function register(nodeId: string, i: number): Register {
  return {
    v: PROTOCOL_VERSION,
    type: 'register',
    nodeId,
    hostname: nodeId,
    address: `10.7.0.${i + 1}`,
    labels: {},
    facts: sampleFacts({ hostname: nodeId, machineId: `m-${nodeId}` }),
    fingerprint: { machineId: `m-${nodeId}`, macs: [] },
    agentVersion: 'security-test',
  } as Register;
}

const decode = (d: Uint8Array) => JSON.parse(new TextDecoder().decode(d)) as Record<string, unknown>;

describe('intake refuses what it must', () => {
  it('an expired join token joins nobody: no credentials, no record', async () => {
    const f = await startJoinFleet({ name: 'sec-expired' });
    const t = await f.token({ ttlMs: 1000 });
    await new Promise((r) => setTimeout(r, 2000));
    const opts = f.agentOptions(t.token, { nodeId: 'late-host', advertiseAddress: '127.0.0.5' });
    const err = await startTestAgent(opts, { factsSource: hostFacts('late-host') }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    // the token says it expired before anything is sent (its bootstrap JWT expired with it, so
    // the bus would refuse the connection too)
    expect((err as Error).message).toMatch(/expired/i);
    expect(existsSync(busCredsPath(opts.dataDir))).toBe(false);
    expect(f.coord.engine.nodes.get('late-host')).toBeUndefined();
    expect(f.coord.joinTokens.list().find((x) => x.id === t.id)).toMatchObject({ used: 0, state: 'expired' });
  });

  it('a used-up join token joins nobody more: the second host is refused and gets nothing', async () => {
    const f = await startJoinFleet({ name: 'sec-used' });
    const t = await f.token({ uses: 1 });
    await f.agent(t.token, { nodeId: 'first-host', advertiseAddress: '127.0.0.6' });
    await waitFor('first-host Ready', () => f.coord.engine.nodes.get('first-host')?.state === 'Ready');
    await waitFor(
      'the used-up token revoked on the bus',
      () => f.coord.joinTokens.list().find((x) => x.id === t.id)?.state === 'used',
    );
    const opts = f.agentOptions(t.token, { nodeId: 'second-host', advertiseAddress: '127.0.0.7' });
    const err = await startTestAgent(opts, { factsSource: hostFacts('second-host') }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    // refused either by the coordinator (DROVER_ERR_JOIN_TOKEN_USED) or, once its bootstrap user
    // is revoked, by the bus itself: both say so
    expect((err as Error).message).toMatch(/used up|DROVER_ERR_JOIN_TOKEN_USED|authorization violation/i);
    expect(existsSync(busCredsPath(opts.dataDir))).toBe(false);
    expect(f.coord.engine.nodes.get('second-host')).toBeUndefined();
    expect(f.coord.joinTokens.list().find((x) => x.id === t.id)).toMatchObject({
      used: 1,
      nodes: ['first-host'],
    });
  });

  it('a flood of registrations is cut by the rate limit; the refused ones change nothing', async () => {
    const b = await startSecureBus();
    const coord = await startSecureCoordinator(b, { registrationRate: 2, registrationBurst: 3 });
    const ids = Array.from({ length: 12 }, (_, i) => `flood-${i}`);
    const clients = await Promise.all(ids.map((id) => b.nodeClient(id)));
    const replies = await Promise.all(
      ids.map(async (id, i) =>
        decode(
          (await clients[i]!.request(subjects.register(id), encode(register(id, i)), { timeout: 5000 })).data,
        ),
      ),
    );
    const accepted = replies.filter((r) => r.accepted === true).map((r) => r.nodeId);
    const limited = replies.filter((r) => r.code === 'DROVER_ERR_JOIN_RATE_LIMITED');
    // the burst (3), and perhaps one more refilled meanwhile; never the flood
    expect(accepted.length).toBeGreaterThanOrEqual(3);
    expect(accepted.length).toBeLessThanOrEqual(4);
    expect(limited.length).toBe(ids.length - accepted.length);
    expect(String(limited[0]!.message)).toMatch(/too many joins and registrations per second; retry in \d+s/);
    // only the admitted ones have a record
    expect(
      coord.engine.nodes
        .all()
        .map((n) => n.id)
        .sort(),
    ).toEqual([...accepted].sort());
  });

  it('a facts report over its size cap is dropped before it is parsed, naming the cap', async () => {
    const b = await startSecureBus();
    const coord = await startSecureCoordinator(b);
    const nc = await b.nodeClient('big-facts');
    const r = decode(
      (await nc.request(subjects.register('big-facts'), encode(register('big-facts', 0)), { timeout: 5000 }))
        .data,
    );
    expect(r).toMatchObject({ accepted: true });
    const before = JSON.stringify(coord.engine.nodes.get('big-facts'));
    const malformed = coord.bus.counters.malformed;
    const facts = sampleFacts({ hostname: 'big-facts', machineId: 'm-big-facts' });
    facts.binaries.x = { path: '/usr/bin/x', version: 'y'.repeat(80 * 1024) };
    nc.publish(
      subjects.facts('big-facts'),
      encode({ v: PROTOCOL_VERSION, type: 'facts', nodeId: 'big-facts', facts }),
    );
    await nc.flush();
    await waitFor(
      'the oversized facts counted as malformed',
      () => coord.bus.counters.malformed === malformed + 1,
    );
    expect(JSON.stringify(coord.engine.nodes.get('big-facts'))).toBe(before);
    // a registration over its cap is answered with the reason
    const fat = register('big-facts', 0);
    fat.facts.binaries.x = { path: '/usr/bin/x', version: 'y'.repeat(80 * 1024) };
    const refused = decode(
      (await nc.request(subjects.register('big-facts'), encode(fat), { timeout: 5000 })).data,
    );
    expect(refused).toMatchObject({ code: 'DROVER_ERR_DECODE' });
    expect(String(refused.message)).toMatch(
      /^node big-facts: .*a Register of \d+ bytes is over the 64 KiB a node may send/,
    );
    expect(JSON.stringify(coord.engine.nodes.get('big-facts'))).toBe(before);
  });
});
