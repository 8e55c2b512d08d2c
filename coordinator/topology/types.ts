import type { Partition } from '../arktos/index.js';
import type { SelectorOp } from './schema.js';

/**
 * The normalized topology `validateTopology()` returns: defaults filled in, quantities in bytes,
 * durations in milliseconds. Feeding it back to `validateTopology()` returns an equal value, so it
 * can be stored and re-validated as is.
 */
export interface Topology {
  apiVersion: 'drover.dev/v1';
  kind: 'Topology';
  metadata: { name: string; labels?: Record<string, string> };
  cluster: ClusterSettings;
  /** role name (built-in or from `customRoles`) → how many and where */
  roles: Record<string, RoleSpec>;
  /** user-defined roles, used in `roles` like built-ins */
  customRoles: Record<string, CustomRoleSpec>;
}

export type ApiEndpointMode = 'haproxy' | 'external' | 'direct';

export interface ClusterSettings {
  name: string;
  /** default v1.28.15; selects version-dependent flags */
  kubernetesVersion: string;
  /** default 10.0.0.0/24 (seed 003) */
  serviceCIDR: string;
  /** kube-proxy `--cluster-cidr`; optional */
  podCIDR?: string;
  /** default 10.0.0.10 (seed 003) */
  clusterDNS: string;
  /** default cluster.local */
  clusterDomain: string;
  /** role name → absolute binary path; when absent, the path the agent found (facts) or the bare name */
  binaries: Record<string, string>;
  apiEndpoint: { mode: ApiEndpointMode; address?: string; port: number };
  /** where certificates live on nodes; default /etc/kubernetes/pki */
  certDir: string;
  /** kubelet `--container-runtime-endpoint` (Kubernetes >= 1.24); default unix:///run/containerd/containerd.sock */
  containerRuntimeEndpoint?: string;
  /** `--v` for Kubernetes components; default 2 */
  logLevel: number;
  /**
   * Arktos data partitions (seeds 000/001): kube-apiserver instances are split into these service
   * groups in order (the first `replicas` instances serve the first partition, and so on), and the
   * API clients get one kubeconfig per partition. Absent: one unpartitioned API.
   */
  partitions?: Partition[];
  /**
   * Scheduled etcd snapshots (coordinator/etcd/snapshot-book.ts): `every` in ms (default 6 h),
   * `keep` the newest scheduled ones (default 10), `enabled` default true. Absent: the defaults.
   */
  etcdSnapshots?: { every?: number; keep?: number; enabled?: boolean };
}

/** A label value (the `In` shorthand) or an explicit requirement. */
export type SelectorTerm = string | { op: SelectorOp; values?: string[] };

export interface RestartOverrides {
  policy?: 'always' | 'on-failure' | 'never';
  initialBackoff?: number;
  maxBackoff?: number;
  resetAfter?: number;
  crashLoopThreshold?: number;
}

/** Repair overrides for a role; durations in ms. Read by the repair policy; `restart` goes into plans. */
export interface RepairPolicy {
  reassignAfter?: number;
  maxReassignPerHour?: number;
  autoReassign?: boolean;
  restart?: RestartOverrides;
}

export interface RoleSpec {
  /** how many instances; absent when `everywhere` */
  replicas?: number;
  /** one instance on every eligible node */
  everywhere?: true;
  nodeSelector: Record<string, SelectorTerm>;
  resources: { cpuCores?: number; memoryBytes?: number };
  /** perNode: at most one instance per node (default true); acrossLabel: balance over that label's values */
  spread: { perNode: boolean; acrossLabel?: string };
  /**
   * instance `<role>#i` runs on node pins[i] (matched by node id, then hostname); with `everywhere`,
   * the nodes the role runs on, one instance each, numbered like any everywhere role
   */
  pins: string[];
  repair: RepairPolicy;
  /** appended to a built-in role's rendered flags */
  extraArgs: string[];
  env: Record<string, string>;
}

export interface ProbeSpec {
  kind: 'http' | 'https' | 'tcp' | 'exec';
  host?: string;
  port?: number;
  path?: string;
  insecure?: boolean;
  command?: string;
  args?: string[];
  period: number;
  timeout: number;
  initialDelay: number;
  failureThreshold: number;
  successThreshold: number;
}

export interface CustomRoleSpec {
  description?: string;
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string;
  files: Array<{ path: string; mode: number; content: string; encoding?: 'utf8' | 'base64' }>;
  health?: ProbeSpec;
  ports: number[];
  commands: Record<string, { command: string; args: string[]; timeout: number }>;
  dependsOn: string[];
  stopTimeout?: number;
  reloadSignal?: string;
}
