import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { systeminformationSource } from '../../agent/facts.js';
import { generateSigningKey, type NodeStatus } from '../../protocol/index.js';
import { CoordinatorDriver } from '../helpers/agent-coordinator-driver.js';
import { installFakeSystemd } from '../helpers/agent-fake-systemd.js';
import { httpFixtureSpec, sleeperSpec, startTestAgent, testAgentOptions } from '../helpers/agent-harness.js';
import { alive, killGroups } from '../helpers/agent-instances.js';
import { autoCleanup } from '../helpers/proc.js';
import { freePort, startNats, tempDir, waitFor } from '../helpers/servers.js';

const inst = (s: NodeStatus | undefined, id: string) => s?.instances.find((i) => i.id === id);

describe('agent session with a real nats-server', () => {
  it('static stability: with NATS gone roles keep running and a killed role is restarted; status resyncs on return', async () => {
    const nats = await startNats();
    const driver = await CoordinatorDriver.start(nats.url);
    const agent = await startTestAgent(testAgentOptions(nats.url));
    const id = agent.nodeId;
    await waitFor('ready', () => agent.session?.currentState === 'ready');
    const port = await freePort();
    await driver.push(id, driver.makePlan(id, [httpFixtureSpec('web#0', port), sleeperSpec('idle#0')]));
    const s1 = await driver.waitStatus(
      id,
      'healthy',
      (s) => inst(s, 'web#0')?.phase === 'Healthy' && inst(s, 'idle#0')?.phase === 'Running',
    );
    const idlePid = inst(s1, 'idle#0')!.pid!;
    const webPid = inst(s1, 'web#0')!.pid!;
    const registers = driver.registers.length;
    const fetches = driver.planFetches.length;

    await nats.stop();
    await waitFor('agent saw the disconnect', () => agent.session?.isConnected === false);
    killGroups([idlePid]);
    // Restarted locally, with NATS down (at the latest after the 10 s stale-plan hold).
    const restarted = await waitFor(
      'idle restarted locally',
      () => {
        const rs = agent.runtime.status('idle#0');
        return rs?.pid && rs.pid !== idlePid && rs.state === 'running' ? rs : undefined;
      },
      { timeoutMs: 20_000 },
    );
    expect(restarted.restarts).toBe(1);
    expect(alive(webPid)).toBe(true);
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    const statusesWhileDown = driver.statuses.length;
    await nats.start();
    // The agent reconnects, registers again, fetches its plan, and the status reaches the coordinator side.
    const s2 = await driver.waitStatus(
      id,
      'resynced status',
      (s) => driver.statuses.indexOf(s) >= statusesWhileDown && inst(s, 'idle#0')?.pid === restarted.pid,
      30_000,
    );
    expect(inst(s2, 'idle#0')).toMatchObject({ restarts: 1, phase: 'Running' });
    expect(inst(s2, 'web#0')).toMatchObject({ pid: webPid, phase: 'Healthy' });
    expect(driver.registers.length).toBeGreaterThan(registers);
    await waitFor('plan fetched after reconnect', () => driver.planFetches.length > fetches);
    expect(agent.counters()).toMatchObject({ reconnects: 1 });
    // Heartbeats flow again.
    const hb = driver.heartbeats.length;
    await waitFor('heartbeats again', () => driver.heartbeats.length > hb);
    expect(driver.decodeErrors).toEqual([]);
  });

  it('after a long disconnect a crashed role waits for a fresh plan before it restarts (fencing), then restarts if the plan still has it', async () => {
    const nats = await startNats();
    const driver = await CoordinatorDriver.start(nats.url);
    // The hold's bound is far beyond this test's waits, so only the fresh plan can release the restart.
    const agent = await startTestAgent(testAgentOptions(nats.url), { restartHoldMaxMs: 120_000 });
    const id = agent.nodeId;
    await waitFor('ready', () => agent.session?.currentState === 'ready');
    await driver.push(id, driver.makePlan(id, [sleeperSpec('idle#0')]));
    const s1 = await driver.waitStatus(id, 'running', (s) => inst(s, 'idle#0')?.phase === 'Running');
    const idlePid = inst(s1, 'idle#0')!.pid!;
    await nats.stop();
    await waitFor('agent saw the disconnect', () => agent.session?.isConnected === false);
    await sleep(2000); // > 3 heartbeats (1.5 s): the coordinator may have moved this node's roles
    expect(agent.session?.planMayBeStale()).toBe(true);
    killGroups([idlePid]);
    await sleep(3000); // backoff (1 s) long over
    expect(agent.runtime.status('idle#0')?.pid, 'restart held while the plan may be stale').toBeUndefined();
    const fetchesBeforeReturn = driver.planFetches.length;
    await nats.start();
    // reconnect → register → the plan (still holding idle#0) is applied → the restart goes ahead
    const back = await waitFor(
      'idle restarted after the fresh plan',
      () => {
        const rs = agent.runtime.status('idle#0');
        return rs?.pid && rs.pid !== idlePid && rs.state === 'running' ? rs : undefined;
      },
      { timeoutMs: 20_000 },
    );
    expect(back.restarts).toBe(1);
    // released by the fresh plan (the bound is 120 s away): the agent fetched it after NATS returned
    expect(driver.planFetches.length).toBeGreaterThan(fetchesBeforeReturn);
    expect(agent.session?.planMayBeStale()).toBe(false);
  });

  it('a Pending node heartbeats and re-registers until approved, then fetches its plan', async () => {
    const nats = await startNats();
    const driver = await CoordinatorDriver.start(nats.url, { nodeState: 'Pending' });
    const opts = testAgentOptions(nats.url, { joinToken: undefined });
    driver.makePlan(opts.nodeId!, [sleeperSpec('idle#0')]);
    const agent = await startTestAgent(opts);
    await waitFor('pending', () => agent.session?.currentState === 'pending');
    await waitFor('re-registered while pending', () => driver.registers.length >= 2);
    expect((driver.registers[0] as Record<string, unknown>).joinToken).toBeUndefined();
    await waitFor('heartbeats while pending', () => driver.heartbeats.length > 0);
    expect(driver.planFetches).toHaveLength(0);
    expect(agent.runtime.list()).toEqual([]);
    driver.nodeState = 'Ready';
    await driver.waitStatus(
      opts.nodeId!,
      'plan applied',
      (s) => inst(s, 'idle#0')?.phase === 'Running',
      20_000,
    );
    expect(agent.session?.currentState).toBe('ready');
  });

  it('a plan in the register reply is applied without a fetch', async () => {
    const nats = await startNats();
    const driver = await CoordinatorDriver.start(nats.url, { planInRegisterReply: true });
    const opts = testAgentOptions(nats.url);
    driver.makePlan(opts.nodeId!, [sleeperSpec('idle#0')]);
    await startTestAgent(opts);
    await driver.waitStatus(
      opts.nodeId!,
      'applied',
      (s) => s.plan.state === 'applied' && inst(s, 'idle#0')?.phase === 'Running',
    );
    expect(driver.planFetches).toHaveLength(0);
  });

  it('a plan pushed right after registering, before the reply is processed, is applied (not refused)', async () => {
    const nats = await startNats();
    const driver = await CoordinatorDriver.start(nats.url);
    const opts = testAgentOptions(nats.url);
    const plan = driver.makePlan(opts.nodeId!, [sleeperSpec('idle#0')]);
    let pushed: Promise<unknown> | undefined;
    driver.beforeRegisterReply = async () => {
      driver.beforeRegisterReply = undefined;
      pushed = driver.push(opts.nodeId!, plan);
      await new Promise((r) => setTimeout(r, 300)); // the push reaches the agent first
    };
    await startTestAgent(opts);
    await waitFor('pushed', () => pushed);
    expect(await pushed).toMatchObject({ accepted: true, changes: { started: ['idle#0'] } });
  });

  it('a push that changes nothing is answered with the full status again (how a lost status is asked for)', async () => {
    const nats = await startNats();
    const driver = await CoordinatorDriver.start(nats.url, { planInRegisterReply: true });
    const opts = testAgentOptions(nats.url);
    const plan = driver.makePlan(opts.nodeId!, [sleeperSpec('idle#0')]);
    await startTestAgent(opts);
    await driver.waitStatus(opts.nodeId!, 'running', (s) => inst(s, 'idle#0')?.phase === 'Running');
    await sleep(500); // the debounced statuses are out
    const before = driver.statuses.filter((s) => s.nodeId === opts.nodeId).length;
    expect(await driver.push(opts.nodeId!, plan)).toMatchObject({
      accepted: true,
      changes: { started: [], restarted: [], stopped: [], unchanged: ['idle#0'] },
    });
    await waitFor(
      'a status after the no-op push',
      () => driver.statuses.filter((s) => s.nodeId === opts.nodeId).length > before || undefined,
      { timeoutMs: 5000 },
    );
    expect(inst(driver.latestStatus(opts.nodeId!), 'idle#0')?.phase).toBe('Running');
  });

  it('a refused registration is retried slowly without crashing', async () => {
    const nats = await startNats();
    const driver = await CoordinatorDriver.start(nats.url);
    driver.refuseWith = 'DROVER_ERR_NODE_FINGERPRINT: node id registered from another machine';
    const agent = await startTestAgent(testAgentOptions(nats.url));
    await waitFor('refused', () => agent.session?.currentState === 'refused');
    expect(agent.state).toBe('running');
    expect(driver.statuses).toHaveLength(0);
  });

  it('pins the key on first join and refuses a coordinator with another key, and its plans', async () => {
    const nats = await startNats();
    const first = await CoordinatorDriver.start(nats.url);
    const opts = testAgentOptions(nats.url);
    const agent = await startTestAgent(opts);
    const id = agent.nodeId;
    await waitFor('ready', () => agent.session?.currentState === 'ready');
    await first.push(id, first.makePlan(id, [sleeperSpec('idle#0')]));
    await first.close();
    // An impostor (or a coordinator whose key was replaced) answers the next registration.
    const impostor = await CoordinatorDriver.start(nats.url, { key: generateSigningKey() });
    agent.session?.reregister();
    await waitFor('refused the new key', () => agent.session?.currentState === 'refused');
    const pin = JSON.parse(readFileSync(join(opts.dataDir, 'coordinator-key.json'), 'utf8'));
    expect(pin.fingerprint).toBe(first.key.fingerprint);
    const r = await impostor.push(id, impostor.makePlan(id, [], { generation: 99 }));
    expect(r).toMatchObject({ accepted: false, error: { code: 'DROVER_ERR_PLAN_SIGNATURE' } });
    expect(agent.runtime.status('idle#0')?.state).toBe('running');
  });

  it('a configured key fingerprint refuses any other key, even on first join', async () => {
    const nats = await startNats();
    const driver = await CoordinatorDriver.start(nats.url);
    const agent = await startTestAgent(
      testAgentOptions(nats.url, { coordinatorKeyFingerprint: generateSigningKey().fingerprint }),
    );
    await waitFor('refused', () => agent.session?.currentState === 'refused');
    const r = await driver.push(agent.nodeId, driver.makePlan(agent.nodeId, [sleeperSpec('idle#0')]));
    expect(r).toMatchObject({ accepted: false, error: { code: 'DROVER_ERR_NO_PINNED_KEY' } });
  });

  it('a host that comes back after its instances moved never starts them from its saved plan', async () => {
    const nats = await startNats();
    const driver = await CoordinatorDriver.start(nats.url);
    const opts = testAgentOptions(nats.url);
    const a1 = await startTestAgent(opts);
    await waitFor('ready', () => a1.session?.currentState === 'ready');
    // moved#0 leaves a marker each time it starts
    const marker = join(opts.rootDir, 'moved-started');
    const moved = sleeperSpec('moved#0', {
      run: { command: '/bin/sh', args: ['-c', `echo x >> ${marker}; exec sleep 1000`], env: {} },
    });
    await driver.push(a1.nodeId, driver.makePlan(a1.nodeId, [sleeperSpec('stay#0'), moved]));
    await waitFor('running', () => existsSync(marker));
    await a1.runtime.stopAll(); // the host dies: its roles are gone
    await a1.close();
    rmSync(marker);
    // meanwhile the coordinator moved moved#0 elsewhere: the node's plan (served on fetch) lacks it
    driver.makePlan(a1.nodeId, [sleeperSpec('stay#0')]);
    const a2 = await startTestAgent(opts, { startupGraceMs: 20_000 });
    await waitFor('fresh plan applied', () => a2.runtime.status('stay#0')?.state === 'running');
    expect(a2.runtime.status('moved#0')).toBeUndefined();
    // and the saved plan's instance never ran on the revived host, not even briefly
    await new Promise((r) => setTimeout(r, 500));
    expect(existsSync(marker)).toBe(false);
    expect(a2.instanceStatuses().map((i) => i.id)).toEqual(['stay#0']);
  });

  it('starts with NATS down, applies its persisted plan, and joins when NATS comes up', async () => {
    const nats = await startNats();
    const driver = await CoordinatorDriver.start(nats.url);
    const opts = testAgentOptions(nats.url);
    const a1 = await startTestAgent(opts);
    await waitFor('ready', () => a1.session?.currentState === 'ready');
    await driver.push(a1.nodeId, driver.makePlan(a1.nodeId, [sleeperSpec('idle#0')]));
    await waitFor('running', () => a1.runtime.status('idle#0')?.state === 'running');
    await a1.runtime.stopAll(); // a host reboot: the roles are gone
    await a1.close();
    await nats.stop();
    const a2 = await startTestAgent(opts);
    await waitFor(
      'persisted plan re-applied without NATS',
      () => a2.runtime.status('idle#0')?.state === 'running',
    );
    expect(a2.session?.isConnected).toBe(false);
    await nats.start();
    await driver.waitStatus(
      a2.nodeId,
      'status after NATS came up',
      (s) => inst(s, 'idle#0')?.phase === 'Running',
      30_000,
    );
  });
});

describe('agent wiring', () => {
  it('publishes facts only when they change', async () => {
    const nats = await startNats();
    const driver = await CoordinatorDriver.start(nats.url);
    let memory = 8 * 2 ** 30;
    const agent = await startTestAgent(testAgentOptions(nats.url), {
      factsSource: {
        ...systeminformationSource,
        mem: async () => ({ total: memory }),
      },
    });
    await waitFor('ready', () => agent.session?.currentState === 'ready');
    expect(driver.registers[0]!.facts.memory.totalBytes).toBe(memory);
    await agent.refreshFacts();
    memory *= 2;
    await agent.refreshFacts();
    await waitFor('facts update', () => driver.facts.length === 1);
    expect(driver.facts[0]!.facts.memory.totalBytes).toBe(16 * 2 ** 30);
    await agent.refreshFacts();
    await new Promise((r) => setTimeout(r, 200));
    expect(driver.facts).toHaveLength(1);
  });

  it('runs a plan through the systemd runtime (recording fake systemctl)', async () => {
    const nats = await startNats();
    const driver = await CoordinatorDriver.start(nats.url);
    const fake = installFakeSystemd(tempDir('fake-sd'));
    const agent = await startTestAgent(
      testAgentOptions(nats.url, { runtime: 'systemd', unitDir: fake.unitDir }),
      {
        systemd: { env: fake.env, pollIntervalMs: 200 },
      },
    );
    autoCleanup(async () => killGroups([fake.pidOf('drover-idle-0.service')]));
    await waitFor('ready', () => agent.session?.currentState === 'ready');
    const r = await driver.push(agent.nodeId, driver.makePlan(agent.nodeId, [sleeperSpec('idle#0')]));
    expect(r.changes?.started).toEqual(['idle#0']);
    const s = await driver.waitStatus(
      agent.nodeId,
      'running under systemd',
      (x) => inst(x, 'idle#0')?.phase === 'Running',
    );
    expect(inst(s, 'idle#0')?.pid).toBe(fake.pidOf('drover-idle-0.service'));
    expect(fake.calls()).toContainEqual(['enable', '--now', 'drover-idle-0.service']);
    const diag = await driver.task(agent.nodeId, { kind: 'diagnostics', instanceId: 'idle#0' });
    expect(diag.data).toMatchObject({ runtime: 'systemd' });
    expect(fake.calls().some((c) => c[0] === 'journalctl')).toBe(true);
  });
});
