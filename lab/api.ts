import { readFileSync } from 'node:fs';
import { labError } from './errors.js';

/**
 * The few coordinator API calls the lab makes, with the admin token the coordinator wrote on first
 * start. Shapes are the API's views (coordinator/api/schemas.ts); only the fields the lab reads
 * are typed here.
 */
export interface LabInstanceView {
  id: string;
  role: string;
  nodeId?: string;
  epoch: number;
  assigned: boolean;
  phase: string;
  health: string;
  restarts: number;
  simulated: boolean;
  lastError?: string;
}

export interface LabNodeView {
  id: string;
  address: string;
  state: string;
  labels: Record<string, string>;
  plan: { converged: boolean; generation: number };
  instances: LabInstanceView[];
}

export interface LabRoleView {
  name: string;
  cluster?: string;
  desired: number;
  placed: number;
  healthy: number;
  simulated: number;
  status: string;
  reasons: string[];
  instances: LabInstanceView[];
}

export interface LabStatusView {
  converged: boolean;
  epoch: number;
  nodes: Record<string, number>;
  clusters: Array<{ name: string; converged: boolean; plansApplied: boolean; reasons: string[] }>;
}

export interface LabAssignment {
  instanceId: string;
  role: string;
  nodeId: string;
  epoch: number;
  previousNodeId?: string;
  phase: string;
  health: string;
}

export interface LabEvent {
  seq?: number;
  kind: string;
  severity: string;
  message: string;
  nodeId?: string;
  instanceId?: string;
  time?: string;
  at?: string;
}

export class LabApi {
  constructor(
    readonly url: string,
    private readonly tokenFile: string,
    private readonly timeoutMs = 5000,
  ) {}

  private token(): string {
    try {
      return readFileSync(this.tokenFile, 'utf8').trim();
    } catch (err) {
      throw labError(
        'DROVER_ERR_LAB_API',
        `cannot read the admin token ${this.tokenFile}: ${(err as Error).message}`,
      );
    }
  }

  async request<T>(method: string, path: string, body?: { type: string; text: string }): Promise<T> {
    let r: Response;
    try {
      r = await fetch(`${this.url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.token()}`,
          ...(body ? { 'content-type': body.type } : {}),
        },
        body: body?.text,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw labError('DROVER_ERR_LAB_API', `${method} ${this.url}${path}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const text = await r.text();
    if (!r.ok) {
      let msg = text;
      try {
        const j = JSON.parse(text) as { code?: string; message?: string };
        msg = `${j.code ?? r.status}: ${j.message ?? text}`;
      } catch {
        // not JSON
      }
      throw labError('DROVER_ERR_LAB_API', `${method} ${path} answered ${r.status}: ${msg}`);
    }
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** true once /readyz answers 200 (engine started, NATS connected); no token needed */
  async ready(): Promise<boolean> {
    try {
      const r = await fetch(`${this.url}/readyz`, { signal: AbortSignal.timeout(2000) });
      return r.ok;
    } catch {
      return false;
    }
  }

  applyTopology(yamlText: string): Promise<unknown> {
    return this.request('PUT', '/v1/topology', { type: 'application/yaml', text: yamlText });
  }

  async nodes(): Promise<LabNodeView[]> {
    return (await this.request<{ items: LabNodeView[] }>('GET', '/v1/nodes')).items;
  }

  async roles(): Promise<LabRoleView[]> {
    return (await this.request<{ items: LabRoleView[] }>('GET', '/v1/roles')).items;
  }

  status(): Promise<LabStatusView> {
    return this.request('GET', '/v1/status');
  }

  async assignments(): Promise<LabAssignment[]> {
    return (await this.request<{ items: LabAssignment[] }>('GET', '/v1/assignments')).items;
  }

  async events(limit = 200): Promise<LabEvent[]> {
    return (await this.request<{ items: LabEvent[] }>('GET', `/v1/events?limit=${limit}`)).items;
  }
}
