import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { type Clock, systemClock } from '../../lib/clock.js';
import { coordinatorError } from '../errors.js';

export interface EtcdMemberInfo {
  /** uint64 member id, as a decimal string (JSON cannot carry it as a number) */
  id: string;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

export interface EtcdTls {
  ca?: string;
  cert?: string;
  key?: string;
}

/**
 * The etcd admin port the membership reconcile depends on: member list, health, remove and add,
 * each through the endpoints given (the surviving members). Tests and other transports (a gRPC
 * client, a fake) implement the same four calls.
 */
export interface EtcdAdmin {
  memberList(endpoints?: string[]): Promise<EtcdMemberInfo[]>;
  /** the client URLs (of those given) whose /health answers health=true */
  healthyEndpoints(clientUrls: string[]): Promise<string[]>;
  memberRemove(id: string, endpoints?: string[]): Promise<void>;
  /**
   * Adds a voting member. While etcd is not ready for it (`etcdReconfigNotReady`) the call is
   * retried for up to `waitMs` (default 15 s); `0` tries once and leaves the retry to the caller.
   */
  memberAdd(peerURLs: string[], endpoints?: string[], waitMs?: number): Promise<EtcdMemberInfo>;
}

/**
 * Builds an admin client on the given endpoints (wired at the composition root); `clock` paces
 * `memberAdd`'s own retries. The membership reconcile passes the injected clock but never waits
 * on it inside a run (it calls `memberAdd` with `waitMs` 0 and requeues instead): a run that
 * waited on a manual clock would hold the work queue, and so the test that advances that clock
 * only between idle queues, for ever.
 */
export type EtcdAdminFactory = (endpoints: string[], tls?: EtcdTls, clock?: Clock) => EtcdAdmin;

/**
 * Whether etcd refused a membership change only because it is not ready for one yet: its strict
 * reconfig check answers "unhealthy cluster" until the leader has been connected to a quorum for
 * its health interval (5 s), e.g. just after a removal or a start-up. Worth retrying shortly.
 */
export function etcdReconfigNotReady(err: unknown): boolean {
  return /unhealthy cluster/.test((err as Error | undefined)?.message ?? '');
}

/**
 * One request to etcd's v3 JSON gateway (http, or https with the client certificate in `tls`):
 * the status and the body as text, or, with `onData`, a successful body streamed to it chunk by
 * chunk (a snapshot). An error body is kept as text either way (its first 64 KiB).
 */
export function gatewayRequest(
  endpoint: string,
  path: string,
  tls: EtcdTls,
  o: { method?: 'GET' | 'POST'; body?: string; timeoutMs: number; onData?: (chunk: Buffer) => void },
): Promise<{ status: number; text: string }> {
  const url = new URL(path, endpoint);
  const req = url.protocol === 'https:' ? httpsRequest : httpRequest;
  const method = o.method ?? 'POST';
  const body = method === 'POST' ? (o.body ?? '{}') : undefined;
  return new Promise((resolve, reject) => {
    const r = req(
      url,
      {
        method,
        headers:
          body === undefined
            ? {}
            : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        timeout: o.timeoutMs,
        ca: tls.ca,
        cert: tls.cert,
        key: tls.key,
      },
      (res) => {
        const status = res.statusCode ?? 500;
        let text = '';
        res.on('data', (c: Buffer) => {
          if (o.onData && status < 400) o.onData(c);
          else if (text.length < 64 * 1024) text += c.toString('utf8');
        });
        res.on('end', () => resolve({ status, text }));
        res.on('error', reject);
      },
    );
    r.on('timeout', () => r.destroy(new Error(`${endpoint}${path}: timed out after ${o.timeoutMs} ms`)));
    r.on('error', reject);
    r.end(body);
  });
}

/**
 * Talks to etcd's v3 JSON gateway on the SURVIVING members' client URLs: a dead member cannot
 * cooperate, so every membership change goes through whoever still answers. One endpoint failing
 * falls through to the next.
 */
export class EtcdGatewayAdmin implements EtcdAdmin {
  constructor(
    private readonly endpoints: string[],
    private readonly tls: EtcdTls = {},
    private readonly timeoutMs = 3000,
    private readonly clock: Clock = systemClock,
  ) {}

  private async post<T>(endpoint: string, path: string, body: unknown): Promise<T> {
    const { status, text } = await gatewayRequest(endpoint, path, this.tls, {
      body: JSON.stringify(body),
      timeoutMs: this.timeoutMs,
    });
    let json: unknown;
    try {
      json = JSON.parse(text || '{}');
    } catch {
      throw new Error(`${endpoint}${path}: not JSON: ${text.slice(0, 200)}`);
    }
    if (status >= 400) {
      const j = json as { message?: string; error?: string };
      throw new Error(`${endpoint}${path}: HTTP ${status}: ${j.message ?? j.error ?? text}`);
    }
    return json as T;
  }

  private async any<T>(
    path: string,
    body: unknown,
    endpoints = this.endpoints,
  ): Promise<{ endpoint: string; value: T }> {
    const errors: string[] = [];
    for (const ep of endpoints) {
      try {
        return { endpoint: ep, value: await this.post<T>(ep, path, body) };
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
    throw coordinatorError(
      'DROVER_ERR_ETCD_UNAVAILABLE',
      `no etcd endpoint answered ${path}: ${errors.join('; ')}`,
    );
  }

  async memberList(endpoints?: string[]): Promise<EtcdMemberInfo[]> {
    const { value } = await this.any<{
      members?: Array<{
        ID?: string;
        name?: string;
        peerURLs?: string[];
        clientURLs?: string[];
        isLearner?: boolean;
      }>;
    }>('/v3/cluster/member/list', {}, endpoints);
    return (value.members ?? []).map((m) => ({
      id: String(m.ID ?? ''),
      name: m.name ?? '',
      peerURLs: m.peerURLs ?? [],
      clientURLs: m.clientURLs ?? [],
      isLearner: m.isLearner ?? false,
    }));
  }

  /** Members whose client URL answers /health with health=true. */
  async healthyEndpoints(clientUrls: string[]): Promise<string[]> {
    const ok = await Promise.all(
      clientUrls.map(async (u) => {
        try {
          const res = await this.get(u, '/health');
          return (
            (JSON.parse(res) as { health?: string | boolean }).health === 'true' ||
            (JSON.parse(res) as { health?: boolean }).health === true
          );
        } catch {
          return false;
        }
      }),
    );
    return clientUrls.filter((_, i) => ok[i]);
  }

  private async get(endpoint: string, path: string): Promise<string> {
    return (await gatewayRequest(endpoint, path, this.tls, { method: 'GET', timeoutMs: this.timeoutMs }))
      .text;
  }

  async memberRemove(id: string, endpoints?: string[]): Promise<void> {
    await this.any('/v3/cluster/member/remove', { ID: id }, endpoints);
  }

  /**
   * Adds a voting member. etcd's strict reconfig check answers "unhealthy cluster" until the
   * leader has been connected to a quorum for its health interval (5 s), e.g. just after a
   * removal or start-up (`etcdReconfigNotReady`); that is retried every 500 ms on this client's
   * clock for up to `waitMs` (0: not at all).
   */
  async memberAdd(peerURLs: string[], endpoints?: string[], waitMs = 15_000): Promise<EtcdMemberInfo> {
    const deadline = this.clock.now() + waitMs;
    let value: { member?: { ID?: string; name?: string; peerURLs?: string[] } };
    for (;;) {
      try {
        ({ value } = await this.any<{ member?: { ID?: string; name?: string; peerURLs?: string[] } }>(
          '/v3/cluster/member/add',
          { peerURLs },
          endpoints,
        ));
        break;
      } catch (err) {
        if (!etcdReconfigNotReady(err) || this.clock.now() >= deadline) throw err;
        await new Promise((r) => this.clock.setTimeout(() => r(undefined), 500));
      }
    }
    return {
      id: String(value.member?.ID ?? ''),
      name: value.member?.name ?? '',
      peerURLs: value.member?.peerURLs ?? peerURLs,
      clientURLs: [],
      isLearner: false,
    };
  }
}

/** The default factory: etcd's v3 JSON gateway over HTTP(S). */
export const gatewayEtcdAdmin: EtcdAdminFactory = (endpoints, tls, clock) =>
  new EtcdGatewayAdmin(endpoints, tls, undefined, clock);
