/**
 * The coordinator's persistent store: desired state only (topology, nodes and approvals,
 * assignments with epochs, a bounded event history, tasks). Heartbeats and liveness never come
 * here. Every write is compare-and-set on revisions, like NATS KV, so a JetStream KV store can
 * replace the default lowdb file without changing callers.
 */
export interface Entry<T = unknown> {
  key: string;
  value: T;
  /** revision of the last write to this key; store revisions only ever grow */
  revision: number;
}

export interface WatchEvent<T = unknown> {
  type: 'put' | 'delete';
  key: string;
  value?: T;
  revision: number;
}

export interface Watcher {
  stop(): void;
}

export interface Store {
  /** current store-wide revision (the revision of the newest write) */
  revision(): number;
  get<T>(key: string): Promise<Entry<T> | undefined>;
  /** entries whose key starts with `prefix`, ordered by key */
  list<T>(prefix: string): Promise<Array<Entry<T>>>;
  /** fails with StoreError DROVER_ERR_STORE_EXISTS if the key exists */
  create<T>(key: string, value: T): Promise<number>;
  /** fails with StoreError DROVER_ERR_STORE_CONFLICT unless the key is at `expectedRevision` (missing key: DROVER_ERR_STORE_NOT_FOUND) */
  update<T>(key: string, value: T, expectedRevision: number): Promise<number>;
  /** unconditional write; returns the new revision */
  put<T>(key: string, value: T): Promise<number>;
  /** deletes; with `expectedRevision`, only if the key is at it. Deleting a missing key is a no-op without it */
  delete(key: string, expectedRevision?: number): Promise<void>;
  /**
   * Calls `fn` for every change under `prefix` with a revision greater than `fromRevision`, first
   * replaying retained history, then live. Changes older than the retained history are reported
   * as DROVER_ERR_STORE_COMPACTED through `onError`.
   */
  watch<T>(
    prefix: string,
    fromRevision: number,
    fn: (e: WatchEvent<T>) => void,
    onError?: (err: Error) => void,
  ): Watcher;
  /** resolves once every accepted write is durable */
  flush(): Promise<void>;
  close(): Promise<void>;
}
