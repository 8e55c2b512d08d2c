import type { EtcdTls } from './etcd/admin.js';

/**
 * The coordinator's tunables in one place: the engine's timings and the repair policy's options,
 * each default once, and the one step that compiles the operator's configuration (config keys
 * such as `heartbeatInterval`, durations already in ms) into them. The daemon, the test helpers
 * and the benchmarks all go through `compileEngineOptions`; nobody re-spells a default or maps
 * `reassignAfter` to `reassignAfterMs` by hand.
 */

/** The engine's liveness and push timings (ms unless named otherwise). */
export interface EngineTimings {
  heartbeatIntervalMs: number;
  suspectAfterMissed: number;
  unreachableAfterMs: number;
  reassignAfterMs: number;
  etcdReassignAfterMs: number;
  stormThreshold: number;
  pushTimeoutMs: number;
}

/**
 * Repair timings. Defaults and why (docs/operations.md has the long form):
 * - reassignAfterMs 5 s of Unreachable (itself 10 s of silence), 15 s of silence in all: rides out
 *   network blips and a NATS reconnect (an agent reconnects within seconds), yet a stateless role
 *   is back in well under 20 s, inside Kubernetes' 40–50 s node grace. A wrong move is cheap: the
 *   returning host is fenced by the epoch bump.
 * - etcdReassignAfterMs 60 s: a member replacement is expensive and risky; a rebooting host
 *   usually comes back within a minute.
 * - stormThreshold 0.4: more than 40 % of nodes silent at once is more likely a partition on the
 *   coordinator's side than that many hosts dying together.
 * - maxReassignPerRolePerMinute 3: bounds the damage of a wrong decision.
 * - reprovisionAfterMs 30 s in CrashLoop/Failed, then instanceReassignAfterMs 120 s more.
 */
export interface RepairOptions {
  reassignAfterMs: number;
  etcdReassignAfterMs: number;
  stormThreshold: number;
  maxReassignPerRolePerMinute: number;
  reprovisionAfterMs: number;
  instanceReassignAfterMs: number;
  etcdTls?: EtcdTls;
  etcdClientPort?: number;
  etcdPeerPort?: number;
}

/** The engine's defaults: heartbeat 2 s, Suspect after 3 missed, Unreachable after 10 s of silence. */
export const DEFAULT_ENGINE_TIMINGS: Readonly<EngineTimings> = Object.freeze({
  heartbeatIntervalMs: 2000,
  suspectAfterMissed: 3,
  unreachableAfterMs: 10_000,
  reassignAfterMs: 5_000,
  etcdReassignAfterMs: 60_000,
  stormThreshold: 0.4,
  pushTimeoutMs: 10_000,
});

/** The fields the repair policy shares with the engine's timings: one value for both. */
const SHARED = ['reassignAfterMs', 'etcdReassignAfterMs', 'stormThreshold'] as const satisfies ReadonlyArray<
  keyof EngineTimings & keyof RepairOptions
>;

function shared(t: Readonly<EngineTimings>): Pick<RepairOptions, (typeof SHARED)[number]> {
  return Object.fromEntries(SHARED.map((k) => [k, t[k]])) as Pick<RepairOptions, (typeof SHARED)[number]>;
}

export const DEFAULT_REPAIR_OPTIONS: RepairOptions = {
  ...shared(DEFAULT_ENGINE_TIMINGS),
  maxReassignPerRolePerMinute: 3,
  reprovisionAfterMs: 30_000,
  instanceReassignAfterMs: 120_000,
  etcdClientPort: 2379,
  etcdPeerPort: 2380,
};

/**
 * The configuration key (file, `--flag`, `DROVER_…` env) of each engine timing. Durations are
 * configured without the `Ms` suffix (`reassignAfter: 5s`) and compiled to ms by lib/config.
 */
export const TUNING_KEYS = {
  heartbeatInterval: 'heartbeatIntervalMs',
  suspectAfterMissed: 'suspectAfterMissed',
  unreachableAfter: 'unreachableAfterMs',
  reassignAfter: 'reassignAfterMs',
  etcdReassignAfter: 'etcdReassignAfterMs',
  stormThreshold: 'stormThreshold',
  pushTimeout: 'pushTimeoutMs',
} as const satisfies Record<string, keyof EngineTimings>;

export type TuningKey = keyof typeof TUNING_KEYS;

/** The engine timings as the configuration names them (numbers; durations in ms). */
export type Tuning = { [K in TuningKey]: EngineTimings[(typeof TUNING_KEYS)[K]] };

/** The defaults under their configuration keys: `DEFAULT_COORDINATOR_OPTIONS` spreads these. */
export const DEFAULT_TUNING: Readonly<Tuning> = Object.freeze(
  Object.fromEntries(
    Object.entries(TUNING_KEYS).map(([key, field]) => [key, DEFAULT_ENGINE_TIMINGS[field]]),
  ) as Tuning,
);

export interface CompiledEngineOptions {
  timings: EngineTimings;
  repair: RepairOptions;
}

/**
 * Compiles configured tunables (a compiled `CoordinatorOptions` will do, or just the keys a test
 * overrides) into the engine's timings and the repair policy's options. Unset keys take their
 * defaults; `repair` overrides the repair-only options (its shared fields follow the timings).
 */
export function compileEngineOptions(
  tuning: Partial<Tuning> = {},
  repair: Partial<Omit<RepairOptions, (typeof SHARED)[number]>> = {},
): CompiledEngineOptions {
  const timings: EngineTimings = { ...DEFAULT_ENGINE_TIMINGS };
  for (const [key, field] of Object.entries(TUNING_KEYS) as Array<[TuningKey, keyof EngineTimings]>) {
    const v = tuning[key];
    if (v !== undefined) timings[field] = v;
  }
  return { timings, repair: { ...DEFAULT_REPAIR_OPTIONS, ...repair, ...shared(timings) } };
}
