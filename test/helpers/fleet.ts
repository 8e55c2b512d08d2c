import { Fleet as Core, type FleetOptions } from './fleet-core.js';
import { autoCleanup } from './proc.js';

export * from './fleet-core.js';

/** The fleet for tests: everything it started is cleaned up after the test (or file, from `beforeAll`). */
export const Fleet = { start: (opts: FleetOptions): Promise<Core> => Core.start(opts, autoCleanup) };
export type Fleet = Core;
