import type { Logger } from '../../lib/logger.js';
import { BaseStore } from './core.js';

export interface MemoryStoreOptions {
  /** default silent */
  logger?: Logger;
  /** watch replay history, in changes; default 1000 */
  historyLimit?: number;
}

/** The store without a file: same semantics as the lowdb store, for unit tests of other parts. */
export class MemoryStore extends BaseStore {
  private closing: Promise<void> | undefined;

  constructor(opts: MemoryStoreOptions = {}) {
    super(opts);
  }

  protected async afterCommit(): Promise<void> {}

  async flush(): Promise<void> {
    this.checkOpen();
  }

  close(): Promise<void> {
    this.closing ??= Promise.resolve().then(() => this.shutdown());
    return this.closing;
  }
}
