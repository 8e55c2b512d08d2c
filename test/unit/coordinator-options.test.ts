// coordinator/options.ts: one default per tunable, and the one compile step from the operator's
// configuration to the engine's timings and the repair policy's options (what the daemon runs).
import { describe, expect, it } from 'vitest';
import { compileCoordinatorOptions, DEFAULT_COORDINATOR_OPTIONS } from '../../coordinator/config.js';
import {
  compileEngineOptions,
  DEFAULT_ENGINE_TIMINGS,
  DEFAULT_REPAIR_OPTIONS,
  DEFAULT_TUNING,
  TUNING_KEYS,
} from '../../coordinator/options.js';

describe('coordinator options', () => {
  it('every engine timing has exactly one configuration key', () => {
    expect(Object.values(TUNING_KEYS).sort()).toEqual(Object.keys(DEFAULT_ENGINE_TIMINGS).sort());
    expect(new Set(Object.values(TUNING_KEYS)).size).toBe(Object.keys(TUNING_KEYS).length);
  });

  it('the configuration defaults, the engine defaults and the repair defaults are the same values', () => {
    for (const [key, field] of Object.entries(TUNING_KEYS)) {
      expect(DEFAULT_COORDINATOR_OPTIONS[key as keyof typeof TUNING_KEYS], key).toBe(
        DEFAULT_ENGINE_TIMINGS[field],
      );
      expect(DEFAULT_TUNING[key as keyof typeof TUNING_KEYS], key).toBe(DEFAULT_ENGINE_TIMINGS[field]);
    }
    expect(DEFAULT_REPAIR_OPTIONS.reassignAfterMs).toBe(DEFAULT_ENGINE_TIMINGS.reassignAfterMs);
    expect(DEFAULT_REPAIR_OPTIONS.etcdReassignAfterMs).toBe(DEFAULT_ENGINE_TIMINGS.etcdReassignAfterMs);
    expect(DEFAULT_REPAIR_OPTIONS.stormThreshold).toBe(DEFAULT_ENGINE_TIMINGS.stormThreshold);
  });

  it('an empty configuration compiles to the defaults', () => {
    const c = compileEngineOptions(compileCoordinatorOptions({ env: {} }));
    expect(c.timings).toEqual(DEFAULT_ENGINE_TIMINGS);
    expect(c.repair).toEqual(DEFAULT_REPAIR_OPTIONS);
  });

  it('configured durations reach the engine in ms, and the shared ones the repair policy too', () => {
    const opts = compileCoordinatorOptions({
      file: { path: 'c.yaml', text: 'heartbeatInterval: 500ms\nreassignAfter: 7s\nstormThreshold: 0.25\n' },
      flags: { 'etcd-reassign-after': '90s', 'push-timeout': '3s' },
      env: { DROVER_UNREACHABLE_AFTER: '4s' },
    });
    const c = compileEngineOptions(opts);
    expect(c.timings).toEqual({
      heartbeatIntervalMs: 500,
      suspectAfterMissed: 3,
      unreachableAfterMs: 4000,
      reassignAfterMs: 7000,
      etcdReassignAfterMs: 90_000,
      stormThreshold: 0.25,
      pushTimeoutMs: 3000,
    });
    expect(c.repair).toEqual({
      ...DEFAULT_REPAIR_OPTIONS,
      reassignAfterMs: 7000,
      etcdReassignAfterMs: 90_000,
      stormThreshold: 0.25,
    });
  });

  it('repair-only options are set beside the tunables, and the result is a fresh object', () => {
    const a = compileEngineOptions({ reassignAfter: 1000 }, { maxReassignPerRolePerMinute: 9 });
    expect(a.repair.maxReassignPerRolePerMinute).toBe(9);
    expect(a.repair.reassignAfterMs).toBe(1000);
    a.timings.heartbeatIntervalMs = 1;
    a.repair.reprovisionAfterMs = 1;
    expect(compileEngineOptions().timings.heartbeatIntervalMs).toBe(
      DEFAULT_ENGINE_TIMINGS.heartbeatIntervalMs,
    );
    expect(DEFAULT_REPAIR_OPTIONS.reprovisionAfterMs).toBe(30_000);
  });

  it('coordinator HA: needs the JetStream store, a sane lease and a fixed API address; errors name the field', () => {
    expect(() => compileCoordinatorOptions({ flags: { 'ha-enabled': 'true' } })).toThrow(
      /ha\.enabled.*needs the replicated store: set store\.backend: jetstream/,
    );
    expect(() =>
      compileCoordinatorOptions({
        flags: { 'ha-enabled': 'true', 'store-backend': 'jetstream', 'ha-lease': '100ms' },
      }),
    ).toThrow(/ha\.lease.*500ms–60s, got 100 ms/);
    expect(() => compileCoordinatorOptions({ flags: { 'ha-id': 'bad id!' } })).toThrow(/ha\.id|--ha-id/);
    const o = compileCoordinatorOptions({
      flags: { 'ha-enabled': 'true', 'store-backend': 'jetstream', 'ha-id': 'c1', 'ha-lease': '3s' },
    });
    expect(o.ha).toMatchObject({ enabled: true, id: 'c1', lease: 3000 });
    expect(compileCoordinatorOptions({}).ha).toMatchObject({ enabled: false, lease: 2000 });
  });
});
