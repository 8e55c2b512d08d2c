/**
 * What each built-in role runs as on its host, and how its systemd unit is confined. The
 * sandboxing is what every role can bear: no new privileges, the OS read-only, kernel tunables,
 * modules and control groups out of reach. A role that needs no capability at all (its ports are
 * above 1024) has an empty bounding set. docs/security.md ("What roles run as") renders this table.
 */
import type { BuiltinRole, Topology } from '../../topology/index.js';

export interface RoleHostPrivileges {
  /** the dedicated system user and group; absent: root (the component needs it) */
  runAs?: { user: string; group: string };
  /** [Service] options that confine the unit (NoNewPrivileges, ProtectSystem, CapabilityBoundingSet, …) */
  sandbox: Readonly<Record<string, string>>;
  /** why it runs as it does (docs/security.md lists it per role) */
  why: string;
}

/** For every role: no privilege escalation, no writes to /usr, /boot, /efi or /etc, no kernel knobs. */
const BASE_SANDBOX: Readonly<Record<string, string>> = Object.freeze({
  NoNewPrivileges: 'yes',
  ProtectSystem: 'full',
  ProtectKernelTunables: 'yes',
  ProtectKernelModules: 'yes',
  ProtectControlGroups: 'yes',
  RestrictSUIDSGID: 'yes',
  RestrictRealtime: 'yes',
  LockPersonality: 'yes',
});

/** A role that needs no capability: the bounding set is empty, so not even root inside keeps one. */
const NO_CAPABILITIES = { ...BASE_SANDBOX, CapabilityBoundingSet: '', AmbientCapabilities: '' };

export const ETCD_PRIVILEGES: RoleHostPrivileges = {
  runAs: { user: 'etcd', group: 'etcd' },
  sandbox: NO_CAPABILITIES,
  why: 'etcd needs no privilege: it listens above 1024 and writes only its data dir, which the agent gives to the etcd user',
};

export const LOAD_BALANCER_PRIVILEGES: RoleHostPrivileges = {
  runAs: { user: 'haproxy', group: 'haproxy' },
  sandbox: NO_CAPABILITIES,
  why: 'haproxy only proxies TCP on the API endpoint port (above 1024) and reads its config; it starts as haproxy, not as root dropping privileges later',
};

/** A bind below 1024 needs CAP_NET_BIND_SERVICE, and only that (the load balancer on port 443). */
export function withLowPort(p: RoleHostPrivileges, port: number): RoleHostPrivileges {
  if (port >= 1024) return p;
  return {
    ...p,
    sandbox: {
      ...p.sandbox,
      CapabilityBoundingSet: 'CAP_NET_BIND_SERVICE',
      AmbientCapabilities: 'CAP_NET_BIND_SERVICE',
    },
  };
}

export const CONTROL_PLANE_PRIVILEGES: RoleHostPrivileges = {
  sandbox: BASE_SANDBOX,
  why: 'root, confined: the API server, scheduler and controller managers read the shared cluster certificate dir; a rootless control plane (per-component users, as kubeadm’s RootlessControlPlane gate) is not built yet',
};

export const NODE_PRIVILEGES: RoleHostPrivileges = {
  sandbox: {},
  why: 'root, unconfined: the kubelet manages containers, mounts and cgroups, and kube-proxy programs iptables/nftables; both need full privileges, as on every Kubernetes distribution',
};

/** Every built-in role's host privileges. */
export const ROLE_PRIVILEGES: Readonly<Record<BuiltinRole, RoleHostPrivileges>> = Object.freeze({
  etcd: ETCD_PRIVILEGES,
  'load-balancer': LOAD_BALANCER_PRIVILEGES,
  'kube-apiserver': CONTROL_PLANE_PRIVILEGES,
  'kube-scheduler': CONTROL_PLANE_PRIVILEGES,
  'kube-controller-manager': CONTROL_PLANE_PRIVILEGES,
  'workload-controller-manager': CONTROL_PLANE_PRIVILEGES,
  dashboard: CONTROL_PLANE_PRIVILEGES,
  kubelet: NODE_PRIVILEGES,
  'kube-proxy': NODE_PRIVILEGES,
});

/** A role's privileges in a topology (the load balancer's depend on its port). */
export function rolePrivileges(role: BuiltinRole, t: Topology): RoleHostPrivileges {
  const p = ROLE_PRIVILEGES[role];
  return role === 'load-balancer' ? withLowPort(p, t.cluster.apiEndpoint.port) : p;
}
