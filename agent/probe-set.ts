/**
 * The agent's health probes: one Prober per instance of the applied plan that has a probe,
 * replaced when the instance's checksum changes, (re)started whenever the instance gets a new pid
 * and stopped (health back to unknown) while it does not run.
 */
import type { Logger } from 'pino';
import type { Clock } from '../lib/clock.js';
import { componentLogger } from '../lib/logger.js';
import type { InstanceSpec } from '../protocol/index.js';
import { Prober, probeUnderRoot } from './probes.js';
import type { RuntimeInstanceStatus } from './runtime/types.js';

interface ProbeSlot {
  prober: Prober;
  checksum: string;
  pid: number | undefined;
}

export class ProbeSet {
  private readonly slots = new Map<string, ProbeSlot>();

  constructor(
    private readonly o: {
      clock: Clock;
      /** the agent's logger of the moment (it gains the node id once the identity is known) */
      logger: () => Logger;
      /** a probe's health changed */
      onChange: (instanceId: string, health: string, err?: string) => void;
    },
  ) {}

  /** The prober of an instance, if it has one. */
  get(id: string): Prober | undefined {
    return this.slots.get(id)?.prober;
  }

  /**
   * Matches the probes to the applied plan's instances. `status` reads an instance's runtime
   * state, so a new probe starts at once for an instance that already runs.
   */
  sync(
    specs: ReadonlyMap<string, InstanceSpec>,
    expand: (s: string) => string,
    status: (id: string) => RuntimeInstanceStatus | undefined,
  ): void {
    for (const [id, slot] of this.slots) {
      const spec = specs.get(id);
      if (!spec?.health || spec.checksum !== slot.checksum) {
        slot.prober.stop();
        this.slots.delete(id);
      }
    }
    for (const spec of specs.values()) {
      if (!spec.health || this.slots.has(spec.id)) continue;
      const prober = new Prober(probeUnderRoot(spec.health, expand), {
        clock: this.o.clock,
        logger: componentLogger(this.o.logger(), 'probe', { instance: spec.id }),
        onChange: (health, err) => this.o.onChange(spec.id, health, err),
      });
      this.slots.set(spec.id, { prober, checksum: spec.checksum, pid: undefined });
      this.runtimeChanged(spec.id, status(spec.id));
    }
  }

  /** The instance's runtime state changed: a new pid restarts its probe, no process stops it. */
  runtimeChanged(id: string, rs: RuntimeInstanceStatus | undefined): void {
    const slot = this.slots.get(id);
    if (!slot) return;
    const live = rs && (rs.state === 'running' || rs.state === 'crashloop') && rs.pid !== undefined;
    if (live && rs.pid !== slot.pid) {
      slot.pid = rs.pid;
      slot.prober.start();
    } else if (!live && slot.pid !== undefined) {
      slot.pid = undefined;
      slot.prober.stop();
      slot.prober.health = 'unknown';
    }
  }

  stopAll(): void {
    for (const s of this.slots.values()) s.prober.stop();
  }
}
