import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateSigningKey, type NodeStatus, subjects } from '../../protocol/index.js';
import { CoordinatorDriver } from '../helpers/agent-coordinator-driver.js';
import {
  etcdSpec,
  httpFixtureSpec,
  sleeperSpec,
  startTestAgent,
  testAgentOptions,
} from '../helpers/agent-harness.js';
import { alive } from '../helpers/agent-instances.js';
import { freePort, startNats, waitFor } from '../helpers/servers.js';

const pidsOf = (s: NodeStatus) => Object.fromEntries(s.instances.map((i) => [i.id, i.pid]));
const phase = (s: NodeStatus, id: string) => s.instances.find((i) => i.id === id)?.phase;

describe('agent: applying plans of real processes (real nats-server, etcd, HTTP fixture)', () => {
  it('applies a plan; a changed instance alone restarts; a removed one stops; old and tampered plans change nothing', async () => {
    const nats = await startNats();
    const driver = await CoordinatorDriver.start(nats.url);
    const opts = testAgentOptions(nats.url);
    const agent = await startTestAgent(opts);
    const id = agent.nodeId;
    await waitFor('registered', () => driver.registers.length > 0);
    const reg = driver.registers[0]!;
    expect(reg).toMatchObject({
      nodeId: id,
      address: '127.0.0.1',
      labels: { pool: 'test' },
    });
    // a registration carries no secret: the node's identity is its bus credentials
    expect(reg).not.toHaveProperty('joinToken');
    expect(reg.facts.cpu.cores).toBeGreaterThan(0);
    // The key is pinned on first join (once the agent has processed the reply).
    const keyFile = join(opts.dataDir, 'coordinator-key.json');
    await waitFor('key pinned', () => existsSync(keyFile));
    const pin = JSON.parse(readFileSync(keyFile, 'utf8'));
    expect(pin.fingerprint).toBe(driver.key.fingerprint);
    // No plan yet: the agent asked for one and got "none".
    await waitFor('plan fetched', () => driver.planFetches.length > 0);

    const [webPort, etcdClient, etcdPeer] = [await freePort(), await freePort(), await freePort()];
    const web = httpFixtureSpec('web#0', webPort);
    const etcd = etcdSpec('etcd#0', etcdClient, etcdPeer);
    const idle = sleeperSpec('idle#0');
    const r1 = await driver.push(id, driver.makePlan(id, [web, etcd, idle]));
    expect(r1).toMatchObject({
      accepted: true,
      generation: 1,
      changes: { started: ['etcd#0', 'idle#0', 'web#0'], restarted: [], stopped: [], unchanged: [] },
    });
    const s1 = await driver.waitStatus(
      id,
      'all healthy',
      (s) =>
        phase(s, 'web#0') === 'Healthy' &&
        phase(s, 'etcd#0') === 'Healthy' &&
        phase(s, 'idle#0') === 'Running',
      30_000,
    );
    expect(s1.plan).toMatchObject({ generation: 1, state: 'applied', checksum: r1.checksum });
    expect(s1.digest).toMatchObject({ generation: 1, instances: 3, unhealthy: 0 });
    const p1 = pidsOf(s1);
    // Files were written under the root dir, and ${DROVER_ROOT} expanded in args.
    expect(readFileSync(join(opts.rootDir, 'etc/web/config.txt'), 'utf8')).toBe('greeting=hello\n');
    expect(existsSync(join(opts.rootDir, 'var/lib/etcd/etcd-0'))).toBe(true);
    const v1 = (await (await fetch(`http://127.0.0.1:${webPort}/version`)).json()) as { config: string };
    expect(v1.config).toBe('greeting=hello');
    // Heartbeats carry the same digest.
    await waitFor('heartbeat with digest', () =>
      driver.heartbeats.some((h) => h.digest.health === s1.digest.health),
    );

    // Change only web#0: only it restarts.
    const web2 = httpFixtureSpec('web#0', webPort, {
      files: [{ path: '/etc/web/config.txt', mode: 0o644, content: 'greeting=bonjour\n' }],
    });
    const r2 = await driver.push(id, driver.makePlan(id, [web2, etcd, idle]));
    expect(r2.changes).toEqual({
      started: [],
      restarted: ['web#0'],
      stopped: [],
      unchanged: ['etcd#0', 'idle#0'],
    });
    const s2 = await driver.waitStatus(
      id,
      'web restarted and healthy',
      (s) => s.plan.generation === 2 && phase(s, 'web#0') === 'Healthy' && pidsOf(s)['web#0'] !== p1['web#0'],
    );
    const p2 = pidsOf(s2);
    expect(p2['etcd#0']).toBe(p1['etcd#0']);
    expect(p2['idle#0']).toBe(p1['idle#0']);
    expect(alive(p1['web#0'])).toBe(false);
    const v2 = (await (await fetch(`http://127.0.0.1:${webPort}/version`)).json()) as { config: string };
    expect(v2.config).toBe('greeting=bonjour');

    // Refused plans: each leaves everything as it was and shows as a refused plan in status.
    const current = driver.plans.get(id)!;
    const tampered = structuredClone(current);
    tampered.plan.instances[0]!.run.args.push('--evil');
    const unsigned = { ...structuredClone(current), signature: undefined };
    const otherKey = driver.makePlan(id, [idle], { generation: 9, key: generateSigningKey(), record: false });
    const older = driver.makePlan(id, [idle], { generation: 1, record: false });
    const sameGenOther = driver.makePlan(id, [idle], { generation: 2, record: false });
    const wrongNode = driver.makePlan('someone-else', [idle], { generation: 10, record: false });
    const cases: Array<[unknown, string]> = [
      [tampered, 'DROVER_ERR_PLAN_CHECKSUM'],
      [unsigned, 'DROVER_ERR_PLAN_UNSIGNED'],
      [otherKey, 'DROVER_ERR_PLAN_SIGNATURE'],
      [older, 'DROVER_ERR_PLAN_STALE'],
      [sameGenOther, 'DROVER_ERR_PLAN_STALE'],
      [wrongNode, 'DROVER_ERR_PLAN_WRONG_NODE'],
    ];
    for (const [plan, code] of cases) {
      const r = (await driver.requestRaw(subjects.plan(id), JSON.stringify(plan))) as {
        accepted: boolean;
        error?: { code: string };
      };
      expect(r.accepted, code).toBe(false);
      expect(r.error?.code).toBe(code);
    }
    const refused = await driver.waitStatus(id, 'plan refused', (s) => s.plan.state === 'refused');
    expect(refused.plan).toMatchObject({ generation: 2, checksum: r2.checksum });
    expect(refused.plan.error).toMatch(/DROVER_ERR_PLAN_WRONG_NODE/);
    expect(pidsOf(refused)).toEqual(p2);
    expect(agent.counters()).toMatchObject({ plansRefused: cases.length });
    // A plan from an older coordinator epoch is refused once a newer epoch was applied.
    driver.coordinatorEpoch = 2;
    const r3 = await driver.push(id, driver.makePlan(id, [web2, etcd, idle]));
    expect(r3.changes?.unchanged).toEqual(['etcd#0', 'idle#0', 'web#0']);
    const stale = await driver.push(
      id,
      driver.makePlan(id, [idle], { generation: 100, coordinatorEpoch: 1, record: false }),
    );
    expect(stale).toMatchObject({ accepted: false, error: { code: 'DROVER_ERR_PLAN_STALE' } });
    expect(stale.error?.message).toMatch(/epoch 1, older than the applied epoch 2/);
    // Re-sending the applied plan is a no-op that clears the refusal.
    const again = await driver.push(id, driver.plans.get(id)!);
    expect(again).toMatchObject({ accepted: true, changes: { unchanged: ['etcd#0', 'idle#0', 'web#0'] } });
    await driver.waitStatus(
      id,
      'applied again',
      (s) => s.plan.state === 'applied' && s.plan.coordinatorEpoch === 2,
    );

    // Remove web#0: it stops; the others keep their pids.
    const r4 = await driver.push(id, driver.makePlan(id, [etcd, idle]));
    expect(r4.changes).toEqual({
      started: [],
      restarted: [],
      stopped: ['web#0'],
      unchanged: ['etcd#0', 'idle#0'],
    });
    const s4 = await driver.waitStatus(id, 'web gone', (s) => !s.instances.some((i) => i.id === 'web#0'));
    expect(alive(p2['web#0'])).toBe(false);
    expect(pidsOf(s4)).toEqual({ 'etcd#0': p1['etcd#0'], 'idle#0': p1['idle#0'] });
    expect(driver.decodeErrors).toEqual([]);
  });

  it('serves tasks: restart, stop, start, reprovision, diagnostics, declared commands only', async () => {
    const nats = await startNats();
    const driver = await CoordinatorDriver.start(nats.url);
    const opts = testAgentOptions(nats.url);
    const agent = await startTestAgent(opts);
    const id = agent.nodeId;
    await waitFor('registered', () => agent.session?.currentState === 'ready');
    const [webPort, etcdClient, etcdPeer] = [await freePort(), await freePort(), await freePort()];
    await driver.push(
      id,
      driver.makePlan(id, [httpFixtureSpec('web#0', webPort), etcdSpec('etcd#0', etcdClient, etcdPeer)]),
    );
    const s0 = await driver.waitStatus(
      id,
      'healthy',
      (s) => s.instances.every((i) => i.phase === 'Healthy'),
      30_000,
    );
    const pid0 = pidsOf(s0)['web#0'];

    const restart = await driver.task(id, { kind: 'restart', instanceId: 'web#0' });
    expect(restart).toMatchObject({ ok: true, output: 'restarted web#0' });
    expect(restart.data?.pid).not.toBe(pid0);

    const stop = await driver.task(id, { kind: 'stop', instanceId: 'web#0' });
    expect(stop.ok).toBe(true);
    await driver.waitStatus(id, 'web stopped', (s) => phase(s, 'web#0') === 'Stopped');
    // Re-pushing the same plan does not bring a stopped instance back.
    await driver.push(id, driver.makePlan(id, driver.plans.get(id)!.plan.instances));
    expect(agent.runtime.status('web#0')?.state).toBe('stopped');
    const start = await driver.task(id, { kind: 'start', instanceId: 'web#0' });
    expect(start.ok).toBe(true);
    await driver.waitStatus(id, 'web healthy again', (s) => phase(s, 'web#0') === 'Healthy');

    // reprovision rewrites the files from the plan and restarts.
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(opts.rootDir, 'etc/web/config.txt'), 'drifted\n');
    const rep = await driver.task(id, { kind: 'reprovision', instanceId: 'web#0' });
    expect(rep).toMatchObject({ ok: true, data: { files: ['/etc/web/config.txt'] } });
    expect(readFileSync(join(opts.rootDir, 'etc/web/config.txt'), 'utf8')).toBe('greeting=hello\n');

    const diag = await driver.task(id, { kind: 'diagnostics', instanceId: 'web#0', tailLines: 5 });
    expect(diag.ok).toBe(true);
    expect(diag.output).toMatch(/fixture listening on 127\.0\.0\.1/);
    expect(diag.data).toMatchObject({ runtime: 'process', facts: { hostname: expect.any(String) } });

    const cfg = await driver.task(id, { kind: 'run-command', instanceId: 'web#0', command: 'show-config' });
    expect(cfg).toMatchObject({ ok: true, output: 'greeting=hello' });
    const health = await driver.task(id, {
      kind: 'run-command',
      instanceId: 'etcd#0',
      command: 'endpoint-health',
    });
    expect(health.ok).toBe(true);
    expect(health.output).toMatch(/is healthy/);
    const undeclared = await driver.task(id, { kind: 'run-command', instanceId: 'web#0', command: 'rm-rf' });
    expect(undeclared).toMatchObject({ ok: false, error: { code: 'DROVER_ERR_COMMAND_NOT_DECLARED' } });
    const unknown = await driver.task(id, { kind: 'restart', instanceId: 'nope#0' });
    expect(unknown).toMatchObject({ ok: false, error: { code: 'DROVER_ERR_INSTANCE_NOT_FOUND' } });
    const missing = await driver.task(id, { kind: 'stop' });
    expect(missing).toMatchObject({ ok: false, error: { code: 'DROVER_ERR_TASK_BAD_REQUEST' } });
  });

  it('malformed messages on its subjects are logged and counted, and the agent keeps working', async () => {
    const nats = await startNats();
    const driver = await CoordinatorDriver.start(nats.url);
    const agent = await startTestAgent(testAgentOptions(nats.url));
    const id = agent.nodeId;
    await waitFor('ready', () => agent.session?.currentState === 'ready');
    const garbage = [
      'not json',
      '{"v":99,"type":"plan-push"}',
      '{"v":1,"type":"plan-push","plan":{}}',
      '\u00ff\u00fe',
      '[]',
    ];
    for (const g of garbage) {
      const r = (await driver.requestRaw(subjects.plan(id), g)) as {
        accepted: boolean;
        error: { code: string };
      };
      expect(r.accepted).toBe(false);
      expect(r.error.code).toMatch(/^DROVER_ERR_(BAD_JSON|DECODE|PROTOCOL_VERSION)$/);
    }
    const t = (await driver.requestRaw(
      subjects.task(id),
      '{"v":1,"type":"task","id":"t-bad","kind":"format-disk"}',
    )) as {
      ok: boolean;
      id: string;
      error: { code: string; message: string };
    };
    expect(t).toMatchObject({ ok: false, id: 't-bad', error: { code: 'DROVER_ERR_DECODE' } });
    // Fire-and-forget garbage (no reply subject) too.
    driver.nc.publish(subjects.task(id), new TextEncoder().encode('{{{'));
    await driver.nc.flush();
    await waitFor('counted', () => (agent.counters().malformed as { task: number }).task === 2);
    expect(agent.counters()).toMatchObject({
      malformed: { plan: garbage.length, task: 2 },
      malformedTotal: garbage.length + 2,
    });
    // Still works.
    const r = await driver.push(id, driver.makePlan(id, [sleeperSpec('idle#0')]));
    expect(r.accepted).toBe(true);
    await driver.waitStatus(id, 'running', (s) => phase(s, 'idle#0') === 'Running');
    const diag = await driver.task(id, { kind: 'diagnostics' });
    expect(diag.data?.counters).toMatchObject({ malformedTotal: garbage.length + 2 });
    expect(agent.state).toBe('running');
  });
});
