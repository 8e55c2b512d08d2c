// Time through the injected clock: event timestamps (coordinator/events.ts, the engine's events),
// task results (agent/tasks.ts) and the agent's reconnect backoff (lib/backoff.ts OutageBackoff,
// which agent/session.ts paces nats.js with) all read the Clock they are given, not Date.now();
// so do the timers that repeat (Clock.every): VirtualCluster's resync, SSE keepalives.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { KeyPin } from '../../agent/keys.js';
import { reconnectDelay } from '../../agent/session.js';
import { runTask, type TaskContext } from '../../agent/tasks.js';
import { Engine } from '../../coordinator/engine.js';
import { EventLog } from '../../coordinator/events.js';
import { ClusterBootstrap } from '../../coordinator/kube/bootstrap-service.js';
import { MemoryStore } from '../../coordinator/store/index.js';
import { VcService } from '../../coordinator/vc/index.js';
import { OutageBackoff } from '../../lib/backoff.js';
import { isoNow, ManualClock } from '../../lib/clock.js';
import { silentLogger } from '../../lib/logger.js';
import { generateSigningKey, PROTOCOL_VERSION } from '../../protocol/index.js';
import { TEST_TIMINGS } from '../helpers/api.js';
import { tempDir } from '../helpers/proc.js';
import { repairFleet } from '../helpers/repair-fleet.js';

const T0 = Date.parse('2031-05-04T03:02:01.000Z');

describe('the injected clock', () => {
  it('stamps events', () => {
    const clock = new ManualClock(T0);
    const log = new EventLog(new MemoryStore(), silentLogger, 100, clock);
    expect(log.emit({ kind: 'node.joined', severity: 'info', message: 'a' }).time).toBe(
      '2031-05-04T03:02:01.000Z',
    );
    clock.advance(1500);
    expect(log.emit({ kind: 'node.joined', severity: 'info', message: 'b' }).time).toBe(
      '2031-05-04T03:02:02.500Z',
    );
    // an explicit time still wins
    expect(
      log.emit({ kind: 'node.joined', severity: 'info', message: 'c', time: '2020-01-01T00:00:00.000Z' })
        .time,
    ).toBe('2020-01-01T00:00:00.000Z');
  });

  it("stamps the engine's events with the engine's clock", async () => {
    const clock = new ManualClock(T0);
    const engine = new Engine({
      store: new MemoryStore(),
      logger: silentLogger,
      signingKey: generateSigningKey(),
      timings: TEST_TIMINGS,
      clock,
    });
    await engine.start();
    try {
      const started = engine.events.list({ kind: 'coordinator.started' });
      expect(started).toHaveLength(1);
      expect(started[0]!.time).toBe(isoNow(clock));
    } finally {
      await engine.close();
    }
  });

  it("stamps a task's finishedAt", async () => {
    const clock = new ManualClock(T0);
    const ctx = {
      nodeId: 'n1',
      logger: silentLogger,
      clock,
    } as unknown as TaskContext;
    const r = await runTask(
      {
        v: PROTOCOL_VERSION,
        type: 'task',
        id: 't1',
        nodeId: 'n1',
        kind: 'restart',
        timeoutMs: 1000,
      } as never,
      ctx,
    );
    expect(r.ok).toBe(false);
    expect(r.finishedAt).toBe('2031-05-04T03:02:01.000Z');
  });

  it('paces reconnects by the outage age on the clock, and starts over after reconnecting', () => {
    const clock = new ManualClock(T0);
    const mid = () => 0.5;
    const b = new OutageBackoff(clock, (age) => reconnectDelay(age, mid));
    expect(b.ageMs).toBeUndefined();
    b.down();
    expect(b.next()).toBe(250);
    // asked again at the same moment: the same wait (nats.js asks more than once per attempt)
    expect(b.next()).toBe(250);
    clock.advance(2000);
    expect(b.ageMs).toBe(2000);
    expect(b.next()).toBe(1000);
    b.down(); // a second disconnect notice does not restart the outage
    clock.advance(58_000);
    expect(b.next()).toBe(10_000);
    b.up();
    expect(b.ageMs).toBeUndefined();
    clock.advance(1000);
    expect(b.next()).toBe(250);
  });

  it("stamps VirtualCluster placements with the service's clock", async () => {
    const f = await repairFleet({
      nodes: 2,
      address: (i) => `10.0.0.${i + 1}`,
      topology: `apiVersion: drover.dev/v1
kind: Topology
metadata: { name: r1 }
cluster:
  name: r1
  apiEndpoint: { mode: external, address: 10.9.9.9 }
roles:
  kubelet: { everywhere: true }
`,
    });
    await f.advance(2000);
    const vc = new VcService(f.engine, { clock: f.clock, resyncMs: 0 });
    const r = await vc.setTenant('t1', { slices: 1, slice: { cpu: '100m', memory: '64Mi' } });
    expect(r.placement.at).toBe(isoNow(f.clock));
    expect(new Date(r.placement.at).getFullYear()).toBe(1970);
    vc.stop();
  });

  it("paces VirtualCluster's resync and its fleet-event debounce on the service's clock", async () => {
    const f = await repairFleet({
      nodes: 2,
      address: (i) => `10.0.0.${i + 1}`,
      topology: `apiVersion: drover.dev/v1
kind: Topology
metadata: { name: r1 }
cluster:
  name: r1
  apiEndpoint: { mode: external, address: 10.9.9.9 }
roles:
  kubelet: { everywhere: true }
`,
    });
    await f.advance(2000);
    const vc = new VcService(f.engine, { clock: f.clock, resyncMs: 10_000, debounceMs: 200 });
    await vc.start();
    const replace = vi.spyOn(vc, 'replace');
    const calls = (why: string) => replace.mock.calls.filter((c) => c[0] === why).length;
    f.engine.events.emit({ kind: 'node.joined', severity: 'info', message: 'a fleet event' });
    f.clock.advance(199);
    expect(calls('fleet')).toBe(0);
    f.clock.advance(1);
    expect(calls('fleet')).toBe(1);
    f.clock.advance(10_000 - 200 - 1);
    expect(calls('resync')).toBe(0);
    f.clock.advance(1);
    expect(calls('resync')).toBe(1);
    f.clock.advance(10_000);
    expect(calls('resync')).toBe(2);
    vc.stop();
    f.clock.advance(30_000);
    expect(calls('resync')).toBe(2);
    await f.engine.close();
  });

  it("paces the cluster bootstrap's passes on its clock, and stops with it", async () => {
    const clock = new ManualClock(T0);
    let passes = 0;
    const b = new ClusterBootstrap(
      {
        topologies: () => {
          passes++;
          return [];
        },
        assignments: () => [],
        nodes: () => [],
        credentials: async () => {
          throw new Error('unused: no cluster to bootstrap');
        },
        events: { emit: (e) => ({ ...e, seq: 0, time: '' }) as never },
      },
      { clock, intervalMs: 5000 },
    );
    b.start();
    clock.advance(4999);
    expect(passes).toBe(0);
    clock.advance(1);
    await b.tick(); // the pass the timer started (serialised: the same one)
    expect(passes).toBe(1);
    for (let i = 0; i < 2; i++) {
      clock.advance(5000);
      await b.tick();
    }
    expect(passes).toBe(3);
    await b.stop();
    clock.advance(60_000);
    expect(passes).toBe(3);
    expect(clock.pending()).toBe(0);
  });

  it("stamps the agent's key pin", async () => {
    const clock = new ManualClock(T0);
    const dir = tempDir('pin-clock');
    await new KeyPin(dir, undefined, clock, true).accept(generateSigningKey().publicKeyB64);
    const pf = JSON.parse(readFileSync(join(dir, 'coordinator-key.json'), 'utf8')) as { pinnedAt: string };
    expect(pf.pinnedAt).toBe('2031-05-04T03:02:01.000Z');
  });
});
