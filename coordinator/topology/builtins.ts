/**
 * The facts about built-in roles that validation and placement need. The catalog
 * (`coordinator/catalog/`) holds how they are rendered; it imports these names from here so the two
 * never disagree.
 */
export const BUILTIN_ROLES = [
  'etcd',
  'kube-apiserver',
  'kube-controller-manager',
  'kube-scheduler',
  'kubelet',
  'kube-proxy',
  'load-balancer',
  'workload-controller-manager',
  'dashboard',
] as const;
export type BuiltinRole = (typeof BUILTIN_ROLES)[number];

export interface BuiltinRoleInfo {
  /** the executable looked up in a node's facts (`facts.binaries[binary]`) */
  binary: string;
  /** a Kubernetes component: the lab may run a stand-in when the binary is missing */
  kubernetes: boolean;
  /** roles that must also be in the topology */
  needs: readonly string[];
  /** talks to the API endpoint through a kubeconfig */
  usesApiEndpoint: boolean;
  /** holds data that must be migrated when it moves (etcd membership) */
  stateful: boolean;
}

export const BUILTIN_ROLE_INFO: Readonly<Record<BuiltinRole, BuiltinRoleInfo>> = Object.freeze({
  etcd: { binary: 'etcd', kubernetes: false, needs: [], usesApiEndpoint: false, stateful: true },
  'kube-apiserver': {
    binary: 'kube-apiserver',
    kubernetes: true,
    needs: ['etcd'],
    usesApiEndpoint: false,
    stateful: false,
  },
  'kube-controller-manager': {
    binary: 'kube-controller-manager',
    kubernetes: true,
    needs: [],
    usesApiEndpoint: true,
    stateful: false,
  },
  'kube-scheduler': {
    binary: 'kube-scheduler',
    kubernetes: true,
    needs: [],
    usesApiEndpoint: true,
    stateful: false,
  },
  kubelet: { binary: 'kubelet', kubernetes: true, needs: [], usesApiEndpoint: true, stateful: false },
  'kube-proxy': { binary: 'kube-proxy', kubernetes: true, needs: [], usesApiEndpoint: true, stateful: false },
  'load-balancer': {
    binary: 'haproxy',
    kubernetes: false,
    needs: ['kube-apiserver'],
    usesApiEndpoint: false,
    stateful: false,
  },
  'workload-controller-manager': {
    binary: 'workload-controller-manager',
    kubernetes: true,
    needs: [],
    usesApiEndpoint: true,
    stateful: false,
  },
  dashboard: { binary: 'dashboard', kubernetes: true, needs: [], usesApiEndpoint: true, stateful: false },
});

export function isBuiltinRole(name: string): name is BuiltinRole {
  return Object.hasOwn(BUILTIN_ROLE_INFO, name);
}
