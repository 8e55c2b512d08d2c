import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { CleanService } from './clean.js';
import { PurgeLists } from './engine/purge-lists.js';
import type { Engine } from './engine.js';
import type { Store } from './store/types.js';
import type { TaskArchive } from './task-archive.js';
import { TaskTracker } from './tasks.js';
import { VcService } from './vc/index.js';

/**
 * The domain services the REST API serves beside the engine: one-off tasks, `drover clean`, and
 * VirtualCluster tenants. They are built and started here, not in the HTTP layer
 * (coordinator/api/ only routes requests to them).
 */
export interface Services {
  tasks: TaskTracker;
  /** `drover clean`: clean records and the purge lists they add to plans */
  clean: CleanService;
  /** VirtualCluster tenants and their slices across super clusters */
  vc: VcService;
  /** loads task and clean records, then starts VirtualCluster placement (only with a store) */
  start(): Promise<void>;
  stop(): void;
}

export interface ServicesDeps {
  engine: Engine;
  logger: Logger;
  /** persists tasks, clean records and tenants; memory-only (and VirtualCluster idle) without */
  store?: Store;
  clock: Clock;
  /** VirtualCluster slice placement: backstop re-placement period (default 10 s) */
  vcResyncMs?: number;
  /** VirtualCluster slice placement: the storm guard (RepairPolicy.stormActive) it honours */
  vcStormGuard?: (cluster: string) => boolean;
  /**
   * The clean records whose purge lists the engine's plans carry, built and loaded by the
   * composition root; without it a set of its own (not wired to the engine) is loaded here.
   */
  purge?: PurgeLists;
  /** a follower coordinator: load for reads, place nothing (VirtualCluster placement is the leader's) */
  readOnly?: boolean;
  /** where task records are kept: with the JetStream store, their own stream */
  taskArchive?: TaskArchive;
}

export function createServices(deps: ServicesDeps): Services {
  const tasks = new TaskTracker({
    engine: deps.engine,
    logger: deps.logger,
    store: deps.store,
    clock: deps.clock,
    ...(deps.taskArchive ? { archive: deps.taskArchive } : {}),
    ...(deps.readOnly ? { readOnly: true } : {}),
  });
  const clean = new CleanService(
    deps.engine,
    deps.purge ?? new PurgeLists(deps.engine.state, deps.store),
    deps.logger,
  );
  const vc = new VcService(deps.engine, {
    store: deps.store,
    logger: deps.logger,
    resyncMs: deps.vcResyncMs,
    clock: deps.clock,
    stormGuard: deps.vcStormGuard,
  });
  return {
    tasks,
    clean,
    vc,
    async start() {
      await tasks.load();
      // the composition root loads the purge lists it wired into the engine
      if (!deps.purge) await clean.load();
      // tenants and placements live in the store: without one (the docs generator) VC stays idle
      if (deps.store && !deps.readOnly) await vc.start();
    },
    stop() {
      vc.stop();
      tasks.stop();
    },
  };
}
