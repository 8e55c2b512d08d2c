export { BaseStore, checkKey, DEFAULT_HISTORY_LIMIT, MAX_KEY_LENGTH } from './core.js';
export { STORE_ERRORS, StoreError, type StoreErrorCode } from './errors.js';
export {
  AtomicJsonFile,
  type CompiledLowdbStoreOptions,
  compileLowdbStoreOptions,
  DEFAULT_LOWDB_STORE_OPTIONS,
  LowdbStore,
  type LowdbStoreOptions,
  type LowdbStoreStats,
  openLowdbStore,
  STORE_SCHEMA_VERSION,
  type StoreFile,
  type StoreMigration,
} from './lowdb.js';
export { MemoryStore, type MemoryStoreOptions } from './memory.js';
export type { Entry, Store, WatchEvent, Watcher } from './types.js';
