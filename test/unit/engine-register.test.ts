// Node admission: join token, approval, the refused clone, and the held wiped host.
import { describe, expect, it } from 'vitest';
import { Engine } from '../../coordinator/engine.js';
import { MemoryStore } from '../../coordinator/store/index.js';
import { silentLogger } from '../../lib/logger.js';
import { generateSigningKey, PROTOCOL_VERSION, type Register } from '../../protocol/index.js';
import { RecordingBus, TEST_TIMINGS } from '../helpers/api.js';
import { sampleFacts } from '../helpers/fixtures.js';

async function engine() {
  const e = new Engine({
    store: new MemoryStore(),
    logger: silentLogger,
    signingKey: generateSigningKey(),
    timings: TEST_TIMINGS,
  });
  e.attachBus(new RecordingBus());
  await e.start();
  return e;
}

const reg = (nodeId: string, o: { machineId?: string; address?: string; token?: string } = {}): Register => ({
  v: PROTOCOL_VERSION,
  type: 'register',
  nodeId,
  hostname: 'same-hostname',
  address: o.address ?? '10.0.0.1',
  labels: {},
  facts: sampleFacts({ machineId: o.machineId ?? nodeId }),
  fingerprint: { machineId: o.machineId ?? nodeId, macs: [] },
  agentVersion: 't',
  ...(o.token === undefined ? { joinToken: 'join' } : o.token ? { joinToken: o.token } : {}),
});

describe('node admission', () => {
  it('admits with the join token, keeps Pending without it until approved', async () => {
    const e = await engine();
    expect((await e.handleRegister(reg('a'))).state).toBe('Ready');
    const p = await e.handleRegister(reg('b', { address: '10.0.0.2', token: '' }));
    expect(p).toMatchObject({ accepted: true, state: 'Pending' });
    expect((await e.handleRegister(reg('c', { address: '10.0.0.3', token: 'wrong' }))).state).toBe('Pending');
    await e.approve('b');
    expect((await e.handleRegister(reg('b', { address: '10.0.0.2', token: '' }))).state).toBe('Ready');
    // duplicate hostnames alone prove nothing: all of these share one
    expect(e.events.list({ kind: 'node.suspected-wipe' })).toHaveLength(0);
    await e.close();
  });

  it('refuses a known node id from a different machine, and changes nothing', async () => {
    const e = await engine();
    await e.handleRegister(reg('a', { machineId: 'm1' }));
    const before = structuredClone(e.nodes.get('a'));
    const r = await e.handleRegister(reg('a', { machineId: 'm2' }));
    expect(r).toMatchObject({ accepted: false });
    expect(r.reason).toMatch(/different machine/);
    expect(e.nodes.get('a')).toEqual(before);
    expect(e.events.list({ kind: 'node.refused' })).toHaveLength(1);
    await e.close();
  });

  it("holds a new id at a live node's address (wiped host) even with the token, until approved", async () => {
    const e = await engine();
    await e.handleRegister(reg('old', { address: '10.0.0.9' }));
    const r = await e.handleRegister(reg('new', { address: '10.0.0.9' }));
    expect(r.state).toBe('Pending');
    expect(e.events.list({ kind: 'node.suspected-wipe' })[0]?.message).toMatch(/old/);
    // re-registering with the token does not slip it through
    expect((await e.handleRegister(reg('new', { address: '10.0.0.9' }))).state).toBe('Pending');
    await e.remove('old');
    await e.approve('new');
    expect((await e.handleRegister(reg('new', { address: '10.0.0.9' }))).state).toBe('Ready');
    await e.close();
  });
});
