import type { Topology } from '../topology/index.js';
import { hostPort } from './paths.js';
import type { ApiEndpoint, Member } from './types.js';

export const APISERVER_PORT = 6443;

/**
 * Where clients reach the Kubernetes API, per the topology's mode (seed 004's three HA solutions):
 * - `haproxy`: `apiEndpoint.address` if given (a name or VIP in front of the load balancers), else
 *   the node of the lowest-ordinal load-balancer instance, on `apiEndpoint.port`;
 * - `external`: the given address and port;
 * - `direct`: the single API server's node on 6443.
 * When the instance it points at is not placed yet, it falls back to the first API server, then to
 * `127.0.0.1`, marked `via: 'unresolved'`, so plans still render; the next placement fixes them.
 */
export function resolveApiEndpoint(t: Topology, members: (role: string) => Member[]): ApiEndpoint {
  const ep = t.cluster.apiEndpoint;
  const make = (host: string, port: number, via: ApiEndpoint['via']): ApiEndpoint => ({
    host,
    port,
    url: `https://${hostPort(host, port)}`,
    via,
  });
  if (ep.mode === 'external' && ep.address) return make(ep.address, ep.port, 'external');
  if (ep.mode === 'haproxy') {
    if (ep.address) return make(ep.address, ep.port, 'load-balancer');
    const lb = members('load-balancer')[0];
    if (lb) return make(lb.node.address, ep.port, 'load-balancer');
  }
  const api = members('kube-apiserver')[0];
  if (api) return make(api.node.address, APISERVER_PORT, ep.mode === 'direct' ? 'direct' : 'unresolved');
  return make('127.0.0.1', ep.mode === 'direct' ? APISERVER_PORT : ep.port, 'unresolved');
}

/** Roles whose placement moves the API endpoint in this topology. */
export function endpointDependencies(t?: Topology): string[] {
  if (!t) return ['kube-apiserver', 'load-balancer'];
  const ep = t.cluster.apiEndpoint;
  if (ep.mode === 'external' && ep.address) return [];
  if (ep.mode === 'haproxy') return ep.address ? [] : ['kube-apiserver', 'load-balancer'];
  return ['kube-apiserver'];
}
