import { describe, expect, it } from 'vitest';
import { RolloutGate } from '../../coordinator/rollout.js';
import { ManualClock } from '../../lib/clock.js';
import { sampleInstance, samplePlan } from '../helpers/fixtures.js';

const plan = (node: string, flag: string, extra: { reloadSignal?: string } = {}, config = 'a') =>
  samplePlan({
    nodeId: node,
    instances: [
      sampleInstance({
        id: `kube-apiserver#${node.charCodeAt(node.length - 1) % 100}`,
        role: 'kube-apiserver',
        files: [{ path: '/etc/x.conf', mode: 0o644, content: config }],
        run: { command: '/x', args: [flag], env: {}, ...extra },
      }),
    ],
  });

describe('rollout gate', () => {
  it('restarts one of three API servers at a time, the next once it is healthy (or after a timeout)', () => {
    const clock = new ManualClock(0);
    const healthy = new Set<string>();
    const gate = new RolloutGate(clock, (n, _id, c) => healthy.has(`${n}:${c}`), 60_000);
    const count = () => 3;
    for (const n of ['a', 'b', 'c']) {
      expect(gate.acquire(n, plan(n, 'v1'), count)).toEqual([]); // first push: nothing to restart
      gate.pushed(n, plan(n, 'v1'));
    }
    const a2 = plan('a', 'v2');
    expect(gate.acquire('a', a2, count)).toEqual([]);
    gate.pushed('a', a2);
    expect(gate.acquire('b', plan('b', 'v2'), count)).toEqual(['kube-apiserver']);
    healthy.add(`a:${a2.instances[0]!.checksum}`);
    // the full re-check is throttled; a status that reports it healthy frees the slot at once
    expect(gate.acquire('b', plan('b', 'v2'), count)).toEqual(['kube-apiserver']);
    clock.advance(RolloutGate.PRUNE_EVERY_MS);
    expect(gate.acquire('b', plan('b', 'v2'), count)).toEqual([]);
    gate.pushed('b', plan('b', 'v2'));
    expect(gate.acquire('c', plan('c', 'v2'), count)).toEqual(['kube-apiserver']);
    clock.advance(60_000); // b never became healthy: the rollout moves on
    expect(gate.acquire('c', plan('c', 'v2'), count)).toEqual([]);
  });

  it('names the instances whose restart is in flight, until they settle (what a drain counts as down)', () => {
    const clock = new ManualClock(0);
    const healthy = new Set<string>();
    const gate = new RolloutGate(clock, (n, _id, c) => healthy.has(`${n}:${c}`), 60_000);
    const count = () => 3;
    for (const n of ['a', 'b']) gate.pushed(n, plan(n, 'v1'));
    expect(gate.restarting()).toEqual(new Set());
    const a2 = plan('a', 'v2');
    expect(gate.acquire('a', a2, count)).toEqual([]);
    gate.pushed('a', a2);
    expect(gate.restarting()).toEqual(new Set([a2.instances[0]!.id]));
    healthy.add(`a:${a2.instances[0]!.checksum}`);
    clock.advance(RolloutGate.PRUNE_EVERY_MS);
    expect(gate.restarting()).toEqual(new Set());
  });

  it('frees a slot on a healthy status and hands back the node that waited longest', () => {
    const clock = new ManualClock(0);
    const gate = new RolloutGate(clock, () => false);
    for (const n of ['a', 'b', 'c']) gate.pushed(n, plan(n, 'v1'));
    const a2 = plan('a', 'v2');
    expect(gate.acquire('a', a2, () => 3)).toEqual([]);
    gate.pushed('a', a2);
    expect(gate.acquire('b', plan('b', 'v2'), () => 3)).toEqual(['kube-apiserver']);
    expect(gate.acquire('c', plan('c', 'v2'), () => 3)).toEqual(['kube-apiserver']);
    const inst = a2.instances[0]!;
    expect(gate.release(inst.role, inst.id, 'some-older-checksum')).toEqual([]); // not its slot
    expect(gate.release(inst.role, inst.id, inst.checksum)).toEqual(['b']);
    expect(gate.release(inst.role, inst.id, inst.checksum)).toEqual([]); // already free
    expect(gate.acquire('b', plan('b', 'v2'), () => 3)).toEqual([]);
    gate.forget('c');
    const b2 = plan('b', 'v2').instances[0]!;
    expect(gate.release(b2.role, b2.id, b2.checksum)).toEqual([]); // c was forgotten: no one waits
  });

  it('never gates new instances, reloads, single-instance roles; large roles get a quarter at once', () => {
    const clock = new ManualClock(0);
    const gate = new RolloutGate(clock, () => false);
    const hup = { reloadSignal: 'SIGUSR2' };
    gate.pushed('a', plan('a', 'v1', hup));
    gate.pushed('b', plan('b', 'v1', hup));
    // only the files change: a reload, never held
    expect(gate.acquire('a', plan('a', 'v1', hup, 'b'), () => 3)).toEqual([]);
    expect(gate.acquire('b', plan('b', 'v1', hup, 'b'), () => 3)).toEqual([]);
    // the command line changes too: a restart despite the reload signal, held like any other
    expect(gate.acquire('a', plan('a', 'v2', hup), () => 3)).toEqual([]);
    expect(gate.acquire('b', plan('b', 'v2', hup), () => 3)).toEqual(['kube-apiserver']);
    expect(gate.acquire('new', plan('new', 'v2'), () => 3)).toEqual([]);
    gate.pushed('s', plan('s', 'v1'));
    gate.pushed('t', plan('t', 'v1'));
    expect(gate.acquire('s', plan('s', 'v2'), () => 1)).toEqual([]);
    expect(gate.acquire('t', plan('t', 'v2'), () => 1)).toEqual([]);
    expect(RolloutGate.budget(3)).toBe(1);
    expect(RolloutGate.budget(5000)).toBe(1250);
    const big = new RolloutGate(clock, () => false);
    for (let i = 0; i < 8; i++) big.pushed(`n${i}`, plan(`n${i}`, 'v1'));
    const allowed = Array.from({ length: 8 }, (_, i) =>
      big.acquire(`n${i}`, plan(`n${i}`, 'v2'), () => 8),
    ).filter((b) => b.length === 0);
    expect(allowed).toHaveLength(2);
  });
});
