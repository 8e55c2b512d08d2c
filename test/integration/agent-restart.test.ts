import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import type { NodeStatus } from '../../protocol/index.js';
import { CoordinatorDriver } from '../helpers/agent-coordinator-driver.js';
import { httpFixtureSpec, sleeperSpec } from '../helpers/agent-harness.js';
import { alive, killGroups } from '../helpers/agent-instances.js';
import { autoCleanup, killAndWait, rmrf, type Spawned, spawnLogged } from '../helpers/proc.js';
import { freePort, natsByUrl, startNats, tempDir, waitFor } from '../helpers/servers.js';

const BUNDLE = new URL('../../dist/drover-agent.mjs', import.meta.url).pathname;
const pidsOf = (s: NodeStatus) => Object.fromEntries(s.instances.map((i) => [i.id, i.pid]));

/** The spawned agent's config, pre-joined: its node creds in `<dataDir>/bus.creds`, the bus CA. */
async function writeConfig(
  dir: string,
  natsUrl: string,
  over: Record<string, unknown> = {},
): Promise<string> {
  const path = join(dir, 'agent.yaml');
  const nodeId = `spawned-${Math.random().toString(36).slice(2, 8)}`;
  const bus = natsByUrl.get(natsUrl)!;
  mkdirSync(join(dir, 'data'), { recursive: true });
  copyFileSync(await bus.credsFor(nodeId), join(dir, 'data', 'bus.creds'));
  writeFileSync(
    path,
    YAML.stringify({
      nodeId,
      nats: { servers: [natsUrl], tls: { ca: bus.caFile } },
      // the driver's key is trusted on first use (its fingerprint is not known beforehand)
      insecureTrustFirstCoordinator: true,
      dataDir: join(dir, 'data'),
      rootDir: join(dir, 'root'),
      runtime: 'process',
      heartbeatInterval: '500ms',
      advertiseAddress: '127.0.0.1',
      labels: { rack: 'r1' },
      logLevel: 'info',
      ...over,
    }),
  );
  return path;
}

function spawnAgent(config: string, extra: string[] = []): Spawned {
  const p = spawnLogged(process.execPath, [BUNDLE, '--config', config, ...extra], {
    env: { ...process.env, DROVER_LOG_LEVEL: undefined },
  });
  autoCleanup(() => killAndWait(p, 'SIGKILL'));
  return p;
}

describe('drover-agent process (the bundled daemon)', () => {
  it('--version, --help and a bad config', async () => {
    const v = spawnLogged(process.execPath, [BUNDLE, '--version']);
    expect(await v.exited).toBe(0);
    expect(v.output()).toMatch(/^drover-agent \d+\.\d+\.\d+/);
    const h = spawnLogged(process.execPath, [BUNDLE, '--help']);
    expect(await h.exited).toBe(0);
    expect(h.output()).toContain('--nats-tls-ca');
    expect(h.output()).toContain('DROVER_HEARTBEAT_INTERVAL');
    const dir = tempDir('agent-bad');
    writeFileSync(join(dir, 'agent.yaml'), 'heartbeatInterval: 2s\nnatz: {}\n');
    const b = spawnLogged(process.execPath, [BUNDLE, '--config', join(dir, 'agent.yaml')]);
    expect(await b.exited).toBe(2);
    expect(b.output()).toMatch(/natz: (unknown option|unexpected property)/);
    rmrf(dir);
  });

  it('restarting the agent keeps healthy roles running with their pids; SIGHUP reloads labels', async () => {
    const nats = await startNats();
    const driver = await CoordinatorDriver.start(nats.url);
    const dir = tempDir('agent-proc');
    autoCleanup(async () => rmrf(dir));
    mkdirSync(join(dir, 'root'), { recursive: true });
    const config = await writeConfig(dir, nats.url);
    let agent = spawnAgent(config);
    // The first status follows the accepted registration (and the key pin).
    await waitFor('registered', () => driver.statuses.length > 0, { timeoutMs: 20_000 });
    const id = driver.registers[0]!.nodeId;
    const port = await freePort();
    const plan = driver.makePlan(id, [
      httpFixtureSpec('web#0', port),
      sleeperSpec('a#0'),
      sleeperSpec('b#0'),
    ]);
    const r = await driver.push(id, plan);
    expect(r).toMatchObject({ accepted: true });
    const s1 = await driver.waitStatus(
      id,
      'healthy',
      (s) =>
        s.instances.length === 3 && s.instances.every((i) => i.phase === 'Healthy' || i.phase === 'Running'),
    );
    const pids = pidsOf(s1);
    autoCleanup(async () => killGroups(Object.values(pids)));

    // SIGHUP: new labels are re-registered without a restart.
    writeFileSync(
      config,
      YAML.stringify({ ...YAML.parse(readFileSync(config, 'utf8')), labels: { rack: 'r2' } }),
    );
    agent.child.kill('SIGHUP');
    await waitFor('re-registered with new labels', () =>
      driver.registers.some((x) => x.labels.rack === 'r2'),
    );

    // SIGHUP with a broken config: refused, logged, the agent keeps its running config.
    const good = readFileSync(config, 'utf8');
    writeFileSync(config, `${good}bogusKey: 1\n`);
    agent.child.kill('SIGHUP');
    await waitFor('reload refusal logged', () => /reload refused: config is invalid/.test(agent.output()));
    expect(agent.child.exitCode).toBeNull();
    writeFileSync(config, good);
    // Logs are pino JSON lines bound to the node id.
    const lines = agent
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { nodeId?: string; msg: string });
    expect(lines.filter((l) => l.msg === 'plan applied').every((l) => l.nodeId === id)).toBe(true);
    expect(lines.some((l) => l.msg === 'plan applied')).toBe(true);

    // SIGTERM: the agent exits, the roles do not.
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
    for (const pid of Object.values(pids)) expect(alive(pid), `pid ${pid}`).toBe(true);

    const before = driver.registers.length;
    const seq0 = driver.statuses.length;
    agent = spawnAgent(config);
    await waitFor('registered again', () => driver.registers.length > before, { timeoutMs: 20_000 });
    const reg = driver.registers[driver.registers.length - 1]!;
    expect(reg.applied).toMatchObject({ generation: 1, checksum: plan.plan.checksum });
    const s2 = await driver.waitStatus(
      id,
      'status from the new agent',
      (s) =>
        driver.statuses.indexOf(s) >= seq0 && s.instances.find((i) => i.id === 'web#0')?.phase === 'Healthy',
    );
    expect(pidsOf(s2)).toEqual(pids);
    expect(s2.instances.every((i) => i.restarts === 0)).toBe(true);
    expect(s2.plan).toMatchObject({ generation: 1, state: 'applied' });
    // The re-adopted child is still supervised: kill it and the new agent restarts it.
    killGroups([pids['a#0']]);
    const s3 = await driver.waitStatus(id, 'a#0 restarted', (s) => {
      const a = s.instances.find((i) => i.id === 'a#0');
      return !!a?.pid && a.pid !== pids['a#0'] && a.phase === 'Running';
    });
    autoCleanup(async () => killGroups(Object.values(pidsOf(s3))));
    expect(s3.instances.find((i) => i.id === 'a#0')?.restarts).toBe(1);
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
    expect(driver.decodeErrors).toEqual([]);
  });

  it('with stopRolesOnExit the roles stop with the agent', async () => {
    const nats = await startNats();
    const driver = await CoordinatorDriver.start(nats.url);
    const dir = tempDir('agent-proc');
    autoCleanup(async () => rmrf(dir));
    const agent = spawnAgent(await writeConfig(dir, nats.url), ['--stop-roles-on-exit']);
    await waitFor('registered', () => driver.statuses.length > 0, { timeoutMs: 20_000 });
    const id = driver.registers[0]!.nodeId;
    await driver.push(id, driver.makePlan(id, [sleeperSpec('a#0')]));
    const s = await driver.waitStatus(id, 'running', (x) => x.instances[0]?.phase === 'Running');
    const pid = s.instances[0]!.pid;
    autoCleanup(async () => killGroups([pid]));
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
    expect(alive(pid)).toBe(false);
  });
});
