// Issue 15 point 8 over the real bus: a real coordinator on a real nats-server refuses a reported
// address with a newline (and a bad hostname or label) where it decodes it, answers with an error
// naming the field and the node, changes no record, and keeps serving.
import { describe, expect, it } from 'vitest';
import { compileCoordinatorOptions } from '../../coordinator/config.js';
import { startCoordinator } from '../../coordinator/daemon.js';
import { silentLogger } from '../../lib/logger.js';
import { encode, PROTOCOL_VERSION, type Register, subjects } from '../../protocol/index.js';
import { startTestAgent, testAgentOptions } from '../helpers/agent-harness.js';
import { sampleFacts } from '../helpers/fixtures.js';
import { autoCleanup, rmrf, tempDir } from '../helpers/proc.js';
import { startNats, waitFor } from '../helpers/servers.js';

const EVIL = '10.0.0.1\n  server evil 6.6.6.6:6443';

describe('node input over a real nats-server', () => {
  it('a newline in a reported address is refused at decode, naming field and node; nothing changes', async () => {
    const nats = await startNats();
    const dataDir = tempDir('coord-input');
    const h = await startCoordinator(
      compileCoordinatorOptions({
        flags: {
          'data-dir': dataDir,
          'nats-servers': nats.url,
          'bus-dir': nats.bus.auth.dir,
          'api-listen': '127.0.0.1:0',
        },
      }),
      silentLogger,
    );
    // each message goes out on the node's own identity: only n1 may publish n1's subjects
    const nc = await nats.connectAs({ nodeId: 'n1' });
    const nc2 = await nats.connectAs({ nodeId: 'n2' });
    autoCleanup(async () => {
      await h.close();
      rmrf(dataDir);
    });
    const reg = (o: Partial<Register> = {}): Register => ({
      v: PROTOCOL_VERSION,
      type: 'register',
      nodeId: 'n1',
      hostname: 'n1',
      address: '10.0.0.1',
      labels: {},
      facts: sampleFacts({ hostname: 'n1' }),
      fingerprint: { machineId: 'm1', macs: [] },
      agentVersion: 't',
      ...o,
    });
    const ask = async (subject: string, msg: unknown, from = nc) =>
      JSON.parse(
        new TextDecoder().decode((await from.request(subject, encode(msg), { timeout: 5000 })).data),
      );

    expect(await ask(subjects.register('n1'), reg())).toMatchObject({ accepted: true, state: 'Ready' });
    const before = structuredClone(h.engine.nodes.get('n1'));
    const malformed = h.bus.counters.malformed;

    const refused = await ask(subjects.register('n1'), reg({ address: EVIL }));
    expect(refused).toMatchObject({ code: 'DROVER_ERR_DECODE', details: { field: '/address' } });
    expect(refused.message).toMatch(/^node n1: \/address: must be an IP address/);
    expect(refused.message).toContain('\\n  server evil');
    expect((await ask(subjects.register('n1'), reg({ hostname: 'n1\nevil' }))).details).toEqual({
      field: '/hostname',
    });
    expect((await ask(subjects.register('n1'), reg({ labels: { zone: 'a b' } }))).details).toEqual({
      field: '/labels/zone',
    });
    // a node that is not known yet gets no record either
    expect((await ask(subjects.register('n2'), reg({ nodeId: 'n2', address: EVIL }), nc2)).message).toMatch(
      /^node n2: /,
    );
    // facts are published without a reply: dropped and counted
    nc.publish(
      subjects.facts('n1'),
      encode({
        v: PROTOCOL_VERSION,
        type: 'facts',
        nodeId: 'n1',
        facts: sampleFacts({ hostname: 'evil\nhost' }),
      }),
    );
    await nc.flush();
    await waitFor('the facts update counted as malformed', () => h.bus.counters.malformed === malformed + 5);

    expect(h.engine.nodes.get('n1')).toEqual(before);
    expect(h.engine.nodes.get('n2')).toBeUndefined();
    // and it keeps serving
    expect(await ask(subjects.register('n1'), reg())).toMatchObject({ accepted: true, state: 'Ready' });
  });

  it('an agent whose registration is refused for its input says so (refused), not "undecodable reply"', async () => {
    const nats = await startNats();
    const nc = await nats.connectAs({ coordinator: true });
    // stands in for the coordinator's answer to a bad address (the shape the test above gets)
    nc.subscribe(subjects.registerAll(), {
      callback: (_err, m) =>
        m.respond(
          encode({
            code: 'DROVER_ERR_DECODE',
            message: 'node x: /address: must be an IP address',
            details: { field: '/address' },
          }),
        ),
    });
    await nc.flush();
    const agent = await startTestAgent(testAgentOptions(nats.url));
    await waitFor('the agent refused', () => agent.session?.currentState === 'refused');
    expect((agent.counters().malformed as { registerReply: number }).registerReply).toBe(0);
  });
});
