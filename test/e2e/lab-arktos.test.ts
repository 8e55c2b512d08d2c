import { describe, expect, it } from 'vitest';
import { isHealthy, labApi, labLeftovers, labOk, logTails, readState } from '../helpers/lab-e2e.js';
import { labDroverSync, labSession, labUp } from '../helpers/lab-session.js';
import { tempDir, waitFor } from '../helpers/proc.js';

/**
 * examples/arktos.yaml in the lab, as docs/seeds.md says to run it: real nats-server, etcd and
 * haproxy, the Kubernetes components and Arktos' workload controller manager as stand-ins. Every
 * role becomes Healthy (two workload controller managers on one machine included: the real one has
 * no health endpoint, so the stand-in must not claim a fixed port), and `drover tenants resolve`
 * answers from the running cluster.
 */
/** Healthy, or Running with no probe at all (the workload controller manager has none) — as `get roles` counts. */
const up = (a: Parameters<typeof isHealthy>[0]) =>
  isHealthy(a) || (a.phase === 'Running' && a.health === 'unknown');

describe('lab: the Arktos partitions example', () => {
  const dir = tempDir('lab-arktos');
  const lock = labSession(dir);

  it('comes up Healthy, resolves tenants to partitions, and goes down clean', async () => {
    await lock.take();
    const started = await labUp(dir, ['--topology', 'examples/arktos.yaml', '--subnet', '127.0.83']);
    expect(started.code).toBe(0);
    const state = readState(dir);
    const api = labApi(state);
    let last: Awaited<ReturnType<typeof api.assignments>> = [];
    const roles = await waitFor(
      'every instance Healthy',
      async () => {
        last = await api.assignments();
        return last.length > 0 && last.every(up) ? last : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    ).catch((err) => {
      const bad = last
        .filter((a) => !isHealthy(a))
        .map((a) => `${a.instanceId}@${a.nodeId} ${a.phase}/${a.health}`);
      throw new Error(`${(err as Error).message}; not Healthy: ${bad.join(', ')}\n${logTails(dir)}`);
    });
    expect(roles.filter((a) => a.role === 'workload-controller-manager')).toHaveLength(2);
    // and they stay up (a stand-in that cannot listen crash-loops: Running for a moment, then backoff)
    for (let i = 0; i < 8; i++) {
      await new Promise((r) => setTimeout(r, 500));
      const wcm = (await api.assignments()).filter((a) => a.role === 'workload-controller-manager');
      expect(wcm.map((a) => a.phase)).toEqual(['Running', 'Running']);
    }
    expect(roles.filter((a) => a.role === 'kube-apiserver')).toHaveLength(3);
    const resolve = (tenant: string) => labDroverSync(dir, 'tenants', 'resolve', tenant);
    expect(resolve('zeta')).toMatch(/served by partition-2 \(service group 2/);
    expect(resolve('alpha')).toMatch(/served by partition-1 \(service group 1/);
    await labOk(dir, ['down']);
    expect(await labLeftovers(state)).toEqual([]);
  }, 240_000);
});
