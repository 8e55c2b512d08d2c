import { describe, expect, it } from 'vitest';
import { unavailableByRole } from '../../coordinator/drain.js';
import type { Assignment } from '../../coordinator/model.js';
import { RolloutGate } from '../../coordinator/rollout.js';
import { ManualClock } from '../../lib/clock.js';
import { sampleInstance, samplePlan } from '../helpers/fixtures.js';

const plan = (node: string, flag: string) =>
  samplePlan({
    nodeId: node,
    instances: [
      sampleInstance({
        id: `kube-apiserver#${node}`,
        role: 'kube-apiserver',
        run: { command: '/x', args: [flag], env: {} },
      }),
    ],
  });

describe('rollout gate and availability: restarts and moves share one budget', () => {
  it("a healthy instance's restart waits while another instance of its role is down (a drain's replacement still starting); a down instance restarts at once", () => {
    const gate = new RolloutGate(new ManualClock(0), () => false);
    for (const n of ['a', 'b', 'c']) gate.pushed(n, plan(n, 'v1'));
    const down = new Set(['kube-apiserver#a']); // a: moved here, still starting
    const unavailable = () => down;
    // b and c are healthy: restarting one now would leave 1 of 3
    expect(gate.acquire('b', plan('b', 'v2'), () => 3, unavailable)).toEqual(['kube-apiserver']);
    expect(gate.acquire('c', plan('c', 'v2'), () => 3, unavailable)).toEqual(['kube-apiserver']);
    // a is down anyway: its restart costs nothing and does not wait
    expect(gate.acquire('a', plan('a', 'v2'), () => 3, unavailable)).toEqual([]);
    gate.pushed('a', plan('a', 'v2'));
    // a healthy again (its slot freed by the healthy status): b may restart, c still waits for b
    down.clear();
    const a = plan('a', 'v2').instances[0]!;
    gate.release(a.role, a.id, a.checksum);
    expect(gate.acquire('b', plan('b', 'v2'), () => 3, unavailable)).toEqual([]);
    gate.pushed('b', plan('b', 'v2'));
    expect(gate.acquire('c', plan('c', 'v2'), () => 3, unavailable)).toEqual(['kube-apiserver']);
  });

  it('unavailableByRole: instances on live nodes not healthy at their epoch; silent nodes are left out', () => {
    const a = (id: string, nodeId: string, epoch = 1): Assignment => ({
      instanceId: id,
      role: id.split('#')[0]!,
      ordinal: Number(id.split('#')[1]),
      nodeId,
      epoch,
      cluster: 'c',
      since: 't',
    });
    const inst = (id: string, epoch: number, phase: string) => ({
      id,
      epoch,
      phase,
      health: phase === 'Healthy' ? 'healthy' : 'unknown',
    });
    const live = {
      n1: { state: 'Ready', status: { instances: [inst('web#0', 1, 'Healthy')] } },
      n2: { state: 'Ready', status: { instances: [inst('web#1', 1, 'Healthy')] } }, // web#1 moved on at epoch 2
      n3: { state: 'Ready', status: { instances: [inst('web#2', 1, 'Starting')] } },
      n4: { state: 'Unreachable', status: { instances: [] } },
    } as unknown as Record<string, never>;
    const out = unavailableByRole(
      [a('web#0', 'n1'), a('web#1', 'n2', 2), a('web#2', 'n3'), a('web#3', 'n4')],
      (n) => live[n],
    );
    expect([...(out.get('web') ?? [])].sort()).toEqual(['web#1', 'web#2']);
  });
});
