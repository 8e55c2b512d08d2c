/**
 * Applies each cluster's bootstrap objects (kube/bootstrap.ts) once its API endpoint answers, and
 * again whenever the endpoint or the set of objects changes (or the coordinator restarts: applying
 * is idempotent). Until the API servers are up, a failed attempt is retried on the next tick.
 */
import type { Logger } from 'pino';
import { type Clock, systemClock, type Ticker } from '../../lib/clock.js';
import { apiEndpointFor } from '../catalog/render.js';
import type { EventLog } from '../events.js';
import type { Assignment, NodeRecord } from '../model.js';
import type { Topology } from '../topology/index.js';
import { applyObjects, decideBootstrap, type KubeCredentials } from './bootstrap.js';

export interface BootstrapPorts {
  topologies(): Topology[];
  assignments(cluster: string): Assignment[];
  nodes(cluster: string): NodeRecord[];
  credentials(): Promise<Omit<KubeCredentials, 'server'>>;
  events: Pick<EventLog, 'emit'>;
}

export class ClusterBootstrap {
  private readonly applied = new Map<string, string>();
  private readonly lastError = new Map<string, string>();
  private timer: Ticker | undefined;
  private running: Promise<void> | undefined;
  private creds: { value: Omit<KubeCredentials, 'server'>; at: number } | undefined;

  constructor(
    private readonly ports: BootstrapPorts,
    /** `clock` paces the passes and the admin certificate's renewal; default the system clock */
    private readonly opts: { intervalMs?: number; logger?: Logger; clock?: Clock } = {},
  ) {}

  private get clock(): Clock {
    return this.opts.clock ?? systemClock;
  }

  start(): void {
    if (this.timer) return;
    this.timer = this.clock.every(this.opts.intervalMs ?? 5000, () => void this.tick());
  }

  async stop(): Promise<void> {
    this.timer?.stop();
    this.timer = undefined;
    await this.running;
  }

  /** One pass over the clusters (serialised: a slow API server never stacks passes). */
  tick(): Promise<void> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async credentials(): Promise<Omit<KubeCredentials, 'server'>> {
    const now = this.clock.now();
    // a fresh admin certificate an hour at most; the key only ever lives in this process
    if (!this.creds || now - this.creds.at > 3600_000)
      this.creds = { value: await this.ports.credentials(), at: now };
    return this.creds.value;
  }

  private async pass(): Promise<void> {
    for (const t of this.ports.topologies()) {
      const cluster = t.metadata.name;
      const assignments = this.ports.assignments(cluster);
      const nodes = new Map(this.ports.nodes(cluster).map((n) => [n.id, n]));
      const objects = decideBootstrap(t, assignments, nodes);
      if (objects.length === 0) continue;
      const ep = apiEndpointFor(t, assignments, nodes);
      if (ep.via === 'unresolved') continue;
      const signature = `${ep.url}|${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(',')}`;
      if (this.applied.get(cluster) === signature) continue;
      try {
        const r = await applyObjects({ server: ep.url, ...(await this.credentials()) }, objects);
        this.applied.set(cluster, signature);
        this.lastError.delete(cluster);
        if (r.created.length || r.updated.length)
          this.ports.events.emit({
            kind: 'cluster.bootstrapped',
            severity: 'info',
            cluster,
            message: `applied ${[...r.created.map((n) => `${n} (created)`), ...r.updated.map((n) => `${n} (updated)`)].join(', ')} through ${ep.url}`,
          });
        this.opts.logger?.info({ cluster, server: ep.url, ...r }, 'cluster bootstrap objects applied');
      } catch (err) {
        const msg = (err as Error).message;
        // the API servers are still starting: say it once per distinct error, retry next tick
        if (this.lastError.get(cluster) !== msg)
          this.opts.logger?.info({ cluster, server: ep.url, err: msg }, 'cluster bootstrap not applied yet');
        this.lastError.set(cluster, msg);
      }
    }
  }
}
