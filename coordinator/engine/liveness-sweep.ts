/**
 * The liveness sweep: every quarter heartbeat (at least 100 ms) nodes that fell silent turn
 * Suspect, then Unreachable; an Unreachable node queues its cluster's reconcile (repair).
 */
import type { Clock } from '../../lib/clock.js';
import type { EventLog } from '../events.js';
import type { ClusterState } from '../state/cluster-state.js';
import type { Enqueue } from './ports.js';

/** The sweep period: a quarter heartbeat, at least 100 ms (the stall re-base measures against it). */
export function sweepIntervalMs(t: { heartbeatIntervalMs: number }): number {
  return Math.max(100, Math.floor(t.heartbeatIntervalMs / 4));
}

export interface LivenessSweepPorts {
  state: ClusterState;
  events: EventLog;
  clock: Clock;
  enqueue: Enqueue;
  heartbeatIntervalMs: number;
  /** runs before each sweep (the composition root wires the stall re-base here) */
  beforeSweep?: () => void;
}

export class LivenessSweep {
  private timer: unknown;

  constructor(private readonly p: LivenessSweepPorts) {}

  start(): void {
    const tick = () => {
      this.sweep();
      this.timer = this.p.clock.setTimeout(tick, sweepIntervalMs(this.p));
    };
    tick();
  }

  stop(): void {
    this.p.clock.clearTimeout(this.timer);
  }

  sweep(): void {
    const { state, events } = this.p;
    this.p.beforeSweep?.();
    const changes = state.nodes.sweep();
    const clusters = new Set<string>();
    for (const c of changes) {
      const rec = state.nodes.get(c.id);
      if (!rec?.approved) continue;
      events.emit({
        kind: c.to === 'Suspect' ? 'node.suspect' : 'node.unreachable',
        severity: 'warning',
        nodeId: c.id,
        message: `node ${c.id} is ${c.to}: no heartbeat for ${(c.silentMs / 1000).toFixed(1)}s`,
      });
      if (c.to === 'Unreachable') clusters.add(state.clusterOf(rec));
    }
    for (const c of clusters) this.p.enqueue(`cluster:${c}`);
  }
}
