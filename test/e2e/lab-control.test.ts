import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { spawnDetached } from '../../lab/procs.js';
import {
  type CliResult,
  LAB_HOOK_TIMEOUT_MS,
  lab,
  labApi,
  labLeftovers,
  labOk,
  readState,
} from '../helpers/lab-e2e.js';
import { FAST_LIVENESS, labDrover, labSession, labUp } from '../helpers/lab-session.js';
import { tempDir, waitFor } from '../helpers/proc.js';

/**
 * The lab's control services as a new user tried them, on real processes: `lab status` tells the
 * truth about nats-server, the coordinator and every agent (from /proc and their health
 * endpoints, not lab.json) and about convergence (from the live API only); `lab stop|start
 * coordinator|nats` inject the fault and repair it; `lab up --pending 1` gives a host to
 * `drover approve`; every host carries its cluster as the `drover.dev/cluster` label.
 */

interface StatusJson {
  ok: boolean;
  nats: string;
  natsPid?: number;
  coordinator: string;
  coordinatorPid?: number;
  converged: boolean | null;
  problems: string[];
  notes: string[];
}

interface NodeJson {
  id: string;
  state: string;
  labels: Record<string, string>;
  lastHeartbeat?: string;
  fingerprint?: { machineId: string; macs: string[] };
}

describe('lab control services, status and pending hosts (real nats-server, coordinator, agents)', () => {
  const dir = tempDir('lab-control');
  const lock = labSession(dir);

  const status = async (): Promise<{ r: CliResult; j: StatusJson }> => {
    const r = await lab(dir, ['status']);
    const j = JSON.parse((await lab(dir, ['status', '-o', 'json'])).stdout) as StatusJson;
    return { r, j };
  };
  /** like a script polling `kubectl wait`: until `lab status` exits 0 */
  const waitStatusOk = (what: string, timeoutMs = 60_000) =>
    waitFor(
      what,
      async () => {
        const r = await lab(dir, ['status']);
        return r.code === 0 ? r : undefined;
      },
      { timeoutMs, intervalMs: 1000 },
    );
  const drover = (args: string[]): Promise<CliResult> => labDrover(dir, args);
  const nodes = async () =>
    (await labApi(readState(dir)).request<{ items: NodeJson[] }>('GET', '/v1/nodes')).items;
  /** every agent heartbeats the (new) coordinator after `since` */
  const agentsBack = (since: number, what: string) =>
    waitFor(
      what,
      async () => {
        const list = await nodes().catch(() => []);
        const tokened = list.filter((n) => n.id !== 'pending-1');
        return tokened.length === 4 &&
          tokened.every((n) => n.state === 'Ready' && Date.parse(n.lastHeartbeat ?? '') > since)
          ? list
          : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );

  beforeAll(async () => {
    await lock.take();
    const r = await labUp(dir, ['--nodes', '4', '--pending', '1', '--subnet', '127.0.86', ...FAST_LIVENESS]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('pending-1 joined with a token that requires approval');
  }, LAB_HOOK_TIMEOUT_MS);

  it('up and converged: status exits 0 with the real pids; every host has drover.dev/cluster=ha', async () => {
    const s = readState(dir);
    const { r, j } = await status();
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toContain('OK: every lab process runs and the fleet is converged');
    expect(j).toMatchObject({ ok: true, nats: 'running', coordinator: 'running', converged: true });
    expect(j.natsPid).toBe(s.nats.proc?.pid);
    expect(j.coordinatorPid).toBe(s.coordinator.proc?.pid);
    const list = await nodes();
    expect(list.map((n) => `${n.id}:${n.labels['drover.dev/cluster']}`).sort()).toEqual([
      'cp-1:ha',
      'cp-2:ha',
      'cp-3:ha',
      'lb-1:ha',
      'pending-1:ha',
    ]);
  });

  it('the coordinator killed and restarted by hand: status says down (never converged), then finds the new pid', async () => {
    const s = readState(dir);
    process.kill(s.coordinator.proc!.pid, 'SIGKILL');
    await waitFor(
      'the coordinator gone',
      async () => ((await status()).j.coordinator === 'down' ? 1 : undefined),
      {
        timeoutMs: 10_000,
      },
    );
    const down = await status();
    expect(down.r.code).toBe(1);
    expect(down.r.stdout).toMatch(/coordinator down, convergence unknown/);
    expect(down.r.stdout.split('\n')[0]).not.toMatch(/, converged$/);
    expect(down.r.stdout).not.toContain('OK:');
    expect(down.j.converged).toBeNull();
    expect(down.j.problems.join('\n')).toContain('the coordinator is down');
    // restarted by hand with the lab's command line: not the pid lab.json recorded
    const manual = await spawnDetached({
      command: s.nodeBinary,
      args: [join(s.distDir, 'drover-coordinator.mjs'), '--config', s.coordinator.config],
      log: s.coordinator.log,
      cwd: join(dir, 'coordinator'),
    });
    await waitStatusOk('status OK with the hand-started coordinator');
    const back = await status();
    expect(back.j.coordinatorPid).toBe(manual.pid);
    expect(back.j.notes.join('\n')).toContain(`pid ${manual.pid}, which lab.json did not record`);
    // `lab start` adopts it, so lab.json (and `lab down`) know it
    const adopt = await labOk(dir, ['start', 'coordinator']);
    expect(adopt.stdout).toContain('adopted');
    expect(readState(dir).coordinator.proc?.pid).toBe(manual.pid);
  }, 90_000);

  it('lab stop coordinator: status non-zero, coordinator down; lab start: up and converged again, agents reconnect', async () => {
    const before = readState(dir).coordinator.proc!.pid;
    const stop = await labOk(dir, ['stop', 'coordinator']);
    expect(stop.stdout).toContain(`the coordinator stopped (pid ${before}, SIGTERM)`);
    expect(readState(dir).coordinator.proc).toBeUndefined();
    const down = await status();
    expect(down.r.code).toBe(1);
    expect(down.r.stdout).toContain('coordinator down');
    expect(down.j.converged).toBeNull();
    // the agents keep running meanwhile
    expect(readState(dir).nodes.every((n) => n.proc && down.r.stdout.includes(`running ${n.proc.pid}`))).toBe(
      true,
    );
    const t0 = Date.now();
    const start = await labOk(dir, ['start', 'coordinator']);
    const pid = readState(dir).coordinator.proc!.pid;
    expect(pid).not.toBe(before);
    expect(start.stdout).toContain(`the coordinator started (pid ${pid})`);
    // same port, same store: the API URL did not change and the nodes are remembered
    await agentsBack(t0, 'every agent heartbeating the restarted coordinator');
    await waitStatusOk('status OK after lab start coordinator');
    const again = (await status()).j;
    expect(again).toMatchObject({ ok: true, coordinator: 'running', coordinatorPid: pid, converged: true });
    expect((await lab(dir, ['start', 'coordinator'])).code).toBe(2);
  }, 90_000);

  it('lab stop nats --kill: status non-zero, nats-server down; lab start nats: agents reconnect, converged', async () => {
    const before = readState(dir).nats.proc!.pid;
    await labOk(dir, ['stop', 'nats', '--kill']);
    const down = await status();
    expect(down.r.code).toBe(1);
    expect(down.r.stdout).toContain('nats-server down');
    // the coordinator lives but has no bus: its view is stale, so no convergence is claimed
    expect(down.j.coordinator).toBe('unhealthy');
    expect(down.j.converged).toBeNull();
    // no coordinator start without its bus
    const refused = await lab(dir, ['stop', 'coordinator']).then(() => lab(dir, ['start', 'coordinator']));
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('nats-server is down');
    const t0 = Date.now();
    await labOk(dir, ['start', 'nats']);
    const natsPid = readState(dir).nats.proc!.pid;
    expect(natsPid).not.toBe(before);
    await labOk(dir, ['start', 'coordinator']);
    await agentsBack(t0, 'every agent back through the restarted nats-server');
    await waitStatusOk('status OK after lab start nats');
    expect((await status()).j).toMatchObject({ ok: true, nats: 'running', natsPid, converged: true });
  }, 120_000);

  it('--pending: the host waits Pending with its fingerprint; drover approve makes it Ready and it gets its roles', async () => {
    const api = labApi(readState(dir));
    const p = await api.request<NodeJson>('GET', '/v1/nodes/pending-1');
    expect(p.state).toBe('Pending');
    expect(p.fingerprint?.machineId).toBeTruthy();
    const listed = await drover(['get', 'nodes']);
    expect(listed.stdout).toMatch(/pending-1\s+Pending/);
    const ok = await drover(['approve', 'pending-1']);
    expect(ok.code, ok.stderr).toBe(0);
    await waitFor(
      'pending-1 Ready with a healthy kubelet',
      async () => {
        const n = await api.request<NodeJson & { instances: Array<{ role: string; health: string }> }>(
          'GET',
          '/v1/nodes/pending-1',
        );
        return n.state === 'Ready' && n.instances.some((i) => i.role === 'kubelet' && i.health === 'healthy')
          ? n
          : undefined;
      },
      { timeoutMs: 45_000, intervalMs: 500 },
    );
    await waitStatusOk('status OK with the approved host');
  }, 90_000);

  it('lab down afterwards leaves no process behind', async () => {
    const s = readState(dir);
    const r = await labOk(dir, ['down']);
    expect(r.stdout).toMatch(/is down: \d+ processes stopped/);
    expect(await labLeftovers(s)).toEqual([]);
  }, 60_000);
});
