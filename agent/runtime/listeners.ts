import type { Logger } from 'pino';
import type { RuntimeListener } from './types.js';

/** The `onChange` subscribers of a runtime; a listener that throws is logged, never propagated. */
export class RuntimeListeners {
  private readonly fns = new Set<RuntimeListener>();

  constructor(private readonly log: Logger) {}

  add(fn: RuntimeListener): () => void {
    this.fns.add(fn);
    return () => this.fns.delete(fn);
  }

  emit(id: string): void {
    for (const fn of this.fns) {
      try {
        fn(id);
      } catch (err) {
        this.log.error({ err }, 'runtime listener threw');
      }
    }
  }

  clear(): void {
    this.fns.clear();
  }
}
