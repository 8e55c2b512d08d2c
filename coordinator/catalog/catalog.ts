import { BUILTIN_ROLES, type BuiltinRole, isBuiltinRole, type Topology } from '../topology/index.js';
import { endpointDependencies } from './endpoint.js';
import { isPartitioned, KUBECONFIG_NAMES } from './partitions.js';
import { kubeApiserver } from './roles/apiserver.js';
import {
  dashboard,
  kubeControllerManager,
  kubeScheduler,
  workloadControllerManager,
} from './roles/controllers.js';
import { customReads, customRenderDependencies } from './roles/custom.js';
import { etcd } from './roles/etcd.js';
import { loadBalancer } from './roles/lb.js';
import { kubelet, kubeProxy } from './roles/node.js';
import type { RoleDefinition } from './types.js';

/** The built-in roles: how each is run, probed, restarted and placed by default. */
export const ROLE_CATALOG: Readonly<Record<BuiltinRole, RoleDefinition>> = Object.freeze({
  etcd,
  'kube-apiserver': kubeApiserver,
  'kube-controller-manager': kubeControllerManager,
  'kube-scheduler': kubeScheduler,
  kubelet,
  'kube-proxy': kubeProxy,
  'load-balancer': loadBalancer,
  'workload-controller-manager': workloadControllerManager,
  dashboard,
});

// Keep the catalog and the topology's list of built-ins in step.
for (const r of BUILTIN_ROLES)
  if (!ROLE_CATALOG[r]) throw new Error(`catalog: no definition for built-in role ${r}`);

const PARTITION_CLIENTS = new Set(Object.keys(KUBECONFIG_NAMES));

/**
 * The roles whose assignments a role's rendered plan reads: when one of them moves or scales, this
 * role's plans re-render (the API servers read etcd's; the load balancer reads the API servers';
 * API clients read whatever the API endpoint resolves to in this topology). Custom roles depend
 * on the roles their placeholders name. Without a topology, built-ins report every role they
 * might read.
 */
export function roleDependencies(role: string, topology?: Topology): string[] {
  if (isBuiltinRole(role)) {
    const d = ROLE_CATALOG[role];
    return [
      ...new Set([
        ...roleReads(role, topology),
        ...(d.usesApiEndpoint ? endpointDependencies(topology) : []),
      ]),
    ].sort();
  }
  const custom = topology?.customRoles[role];
  return custom ? customRenderDependencies(custom, topology) : [];
}

/** Roles whose instances `role`'s rendering reads directly, not through the API endpoint. */
export function roleReads(role: string, topology?: Topology): string[] {
  if (isBuiltinRole(role)) {
    const d = ROLE_CATALOG[role];
    // Arktos: API clients hold one kubeconfig per partition, on that partition's API servers
    if (PARTITION_CLIENTS.has(role) && isPartitioned(topology) && !d.reads.includes('kube-apiserver'))
      return [...d.reads, 'kube-apiserver'];
    return [...d.reads];
  }
  if (!topology) return [];
  const custom = topology.customRoles[role];
  return custom ? customReads(custom).reads : [];
}

/** Ports an instance of `role` listens on (built-in or custom); placement keeps them apart. */
export function rolePorts(role: string, topology: Topology): number[] {
  if (isBuiltinRole(role)) return ROLE_CATALOG[role].ports(topology);
  return [...(topology.customRoles[role]?.ports ?? [])];
}
