/**
 * Liveness re-basing after a stall of the coordinator itself.
 *
 * Silence is measured on the coordinator's clock between heartbeats it *processed*. When the
 * coordinator's own event loop stops (a VM pause, SIGSTOP, a long GC or swap storm) or its clock
 * jumps forward, every node looks silent for the whole gap although nobody but the coordinator
 * was away: the first sweep after the resume would mark the whole fleet Unreachable (and, past the
 * storm guard, start moving things).
 *
 * The liveness sweep runs every `sweepIntervalMs` (a quarter heartbeat). A gap between two sweeps
 * far larger than that (`stallAfterMs`, by default 2 heartbeat intervals and at least 8 sweep
 * intervals) can only be the coordinator's own stall, so the re-base treats every node that was
 * not already Unreachable as heard from *now*: silence counts from the resume. A node that really
 * stays silent becomes Suspect and Unreachable the usual time after the resume; a node that was
 * Unreachable before the stall stays Unreachable.
 *
 * The cost of a false positive (a busy coordinator whose sweep ran late) is a detection delayed
 * by at most the gap; a stall shorter than `stallAfterMs` is not re-based and cannot make a node
 * Suspect on its own (2 heartbeats of stall + at most 1 since the last beat < 3 missed).
 */
import type { Clock } from '../lib/clock.js';
import { sweepIntervalMs } from './engine/liveness-sweep.js';

export interface StallDecision {
  /** how long the sweeps were apart */
  gapMs: number;
}

/** Pure: is this gap between two liveness sweeps a stall of the coordinator? */
export function detectStall(
  previousSweepAt: number | undefined,
  now: number,
  stallAfterMs: number,
): StallDecision | undefined {
  if (previousSweepAt === undefined) return undefined;
  const gapMs = now - previousSweepAt;
  return gapMs >= stallAfterMs ? { gapMs } : undefined;
}

/** The gap that counts as a stall for these liveness timings. */
export function stallThresholdMs(t: { heartbeatIntervalMs: number }): number {
  const sweep = sweepIntervalMs(t);
  return Math.max(2 * t.heartbeatIntervalMs, 8 * sweep);
}

/** What the re-base needs: move the last-heard time of every not-Unreachable node to `now`. */
export interface RebasePort {
  rebaseLiveness(now: number): number;
}

export interface LivenessRebaseOptions {
  stallAfterMs: number;
  /** told after each re-base (an event, a log line) */
  onStall?: (info: { gapMs: number; nodes: number; at: number }) => void;
}

/**
 * Call `beforeSweep()` at the start of every liveness sweep: after a stall it re-bases liveness
 * (before the sweep can judge anyone by the gap) and returns what it saw.
 */
export class LivenessRebase {
  private lastSweepAt?: number;

  constructor(
    private readonly clock: Clock,
    private readonly port: RebasePort,
    private readonly opts: LivenessRebaseOptions,
  ) {}

  beforeSweep(): (StallDecision & { nodes: number }) | undefined {
    const now = this.clock.now();
    const stall = detectStall(this.lastSweepAt, now, this.opts.stallAfterMs);
    this.lastSweepAt = now;
    if (!stall) return undefined;
    const nodes = this.port.rebaseLiveness(now);
    this.opts.onStall?.({ gapMs: stall.gapMs, nodes, at: now });
    return { ...stall, nodes };
  }
}
