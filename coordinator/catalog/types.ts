import type {
  HealthProbe,
  InstanceSpec,
  PlanFile,
  RestartPolicy,
  SystemdUnitOptions,
} from '../../protocol/index.js';
import type { Assignment, NodeRecord } from '../model.js';
import type { CertProfile } from '../pki/profiles.js';
import type { BuiltinRole, RoleSpec, Topology } from '../topology/index.js';

/** What certificate rendering needs beyond the render context (catalog/certs.ts). */
export interface PkiRenderOptions {
  /** the service-account key pair (PEM): sa.key to API servers and controller managers, sa.pub to API servers */
  serviceAccount: { publicKeyPem: string; privateKeyPem: string };
  /** extra subjectAltNames for API-server serving certificates (a DNS name in front of the endpoint) */
  extraApiserverSans?: string[];
}

export interface RenderOptions {
  /**
   * The lab's stand-in for Kubernetes binaries a node does not have: such an instance runs
   * `command args… <component> <flags…>` instead and is marked `simulated: true`. Real etcd and
   * haproxy are never replaced, and without this option a missing binary is rendered as is.
   */
  standin?: { command: string; args: string[] };
  /**
   * Keep one `RenderCache` across calls and pass it here: unchanged instances are not rendered again,
   * so a reconcile costs what changed, not the fleet size. Optional; output is identical without it.
   */
  cache?: RenderCacheLike;
  /**
   * The coordinator has a cluster PKI: Kubernetes instances list the certificates their agent must
   * obtain by CSR (`InstanceSpec.certificates`), and API servers and controller managers get the
   * service-account keys. Without it, plans only reference the certificate paths.
   */
  pki?: PkiRenderOptions;
  /**
   * `plain`: this cluster's etcd was bootstrapped over plain HTTP before Drover ran etcd with TLS,
   * and stays so until it is migrated (coordinator/etcd/transport.ts). Otherwise, with `pki`, etcd
   * runs with client and peer TLS.
   */
  etcdTransport?: 'tls' | 'plain';
}

/** The memo `renderPlans` uses (implemented by `RenderCache`). */
export interface RenderCacheLike {
  topologyId(t: Topology): number;
  get(instanceId: string, key: string): RenderedInstance | undefined;
  set(instanceId: string, key: string, out: RenderedInstance): void;
  retain(ids: ReadonlySet<string>): void;
}

export interface RenderInput {
  topology: Topology;
  assignments: Assignment[];
  nodes: Map<string, NodeRecord>;
  options?: RenderOptions;
}

export type RenderedInstance = Omit<InstanceSpec, 'checksum'>;

/**
 * Optional fields an assignment may carry for etcd (the model's Assignment plus these). Whoever
 * changes etcd membership (repair's member replacement) can set them:
 * - `existing`: start with `--initial-cluster-state=existing` (the member was added with `member add`);
 * - `initialCluster`: the exact `--initial-cluster` to use, frozen when the member joined, so later
 *   moves of other members do not change (and restart) this one;
 * - `seed`: the member's data comes from this etcd snapshot (`drover etcd restore`): its plan
 *   carries a PlanSeed, so the agent restores the snapshot into the data dir before the first start;
 * - `parked`: the member is out of the cluster while a restore rebuilds it (coordinator/etcd/restore.ts):
 *   it is rendered nowhere and is no one's peer or endpoint until the restore lets it rejoin.
 */
export interface EtcdAssignmentExtras {
  existing?: boolean;
  initialCluster?: string;
  seed?: { snapshotId: string; sha256: string; size: number };
  parked?: boolean;
}

/**
 * Certificates the coordinator renews (coordinator/pki/renewal-roll.ts): profile → the serial of the
 * certificate to replace. Rendered as PlanCertificate.renewSerial, so the instance's plan changes
 * and the rollout gate restarts a few instances of a role at a time.
 */
export interface CertRenewalExtras {
  certRenew?: Record<string, string>;
}

/** A member a restore holds out of the cluster until its turn to rejoin. */
export const isParked = (a: Assignment): boolean => (a as Assignment & EtcdAssignmentExtras).parked === true;

/** A placed instance of some role with its node. */
export interface Member {
  assignment: Assignment;
  node: NodeRecord;
}

export interface ApiEndpoint {
  host: string;
  port: number;
  /** `https://host:port` */
  url: string;
  /** where the endpoint came from */
  via: 'load-balancer' | 'external' | 'direct' | 'unresolved';
}

/** What a role renderer sees for one instance. */
export interface RenderContext {
  topology: Topology;
  role: string;
  spec: RoleSpec;
  assignment: Assignment;
  node: NodeRecord;
  /** placed instances of `role`, by ordinal (only those whose node is known) */
  members(role: string): Member[];
  api: ApiEndpoint;
  /**
   * etcd runs with client and peer TLS from the etcd CA (there is a cluster PKI and the cluster is
   * not a legacy plain-HTTP one): etcd's URLs are https and its clients present certificates.
   */
  etcdTls?: boolean;
}

/** What a built-in renderer returns; the catalog adds command, stand-in, restart policy and overrides. */
export interface RoleRender {
  args: string[];
  files?: PlanFile[];
  env?: Record<string, string>;
  unit?: SystemdUnitOptions;
  stopTimeoutMs?: number;
  reloadSignal?: string;
  commands?: InstanceSpec['commands'];
  /** directories the instance keeps data in (etcd's data dir, the kubelet's root dir): purge deletes them */
  dataPaths?: string[];
  /** the instance's data comes from a snapshot before its first start (etcd after a restore) */
  seed?: InstanceSpec['seed'];
}

/**
 * What runs in a role's place on a node that lacks the role's binary but has the simulator's:
 * the kubelet's is a kwok-managed node. Such an instance is `simulated: true` with `simulator`
 * naming it, everywhere it shows.
 */
export interface RoleSimulator {
  name: 'kwok';
  /** the certificates it needs instead of the role's: [profile, file name] */
  certificates: ReadonlyArray<[CertProfile, string]>;
  /** binaries the node must have (facts.binaries); `render` gets their paths */
  binaries: readonly string[];
  ports(topology: Topology): number[];
  probe(ctx: RenderContext): HealthProbe | undefined;
  render(ctx: RenderContext, paths: Readonly<Record<string, string>>): RoleRender & { command: string };
}

export interface RoleDefinition {
  name: BuiltinRole;
  description: string;
  /** executable name looked up in `facts.binaries` */
  binary: string;
  /** a Kubernetes component: the lab may run a stand-in for it */
  kubernetes: boolean;
  /** holds data (etcd): moving it is a membership change, not a restart elsewhere */
  stateful: boolean;
  defaultSpread: { perNode: boolean };
  restart: RestartPolicy;
  /** ports the instance listens on, on the node address */
  ports(topology: Topology): number[];
  /** roles whose placed instances this role's rendering reads directly (etcd peers, API servers …) */
  reads: readonly string[];
  /** renders the API endpoint (a kubeconfig, --external-hostname): follows whatever the endpoint resolves to */
  usesApiEndpoint: boolean;
  /** roles that must run for this one to work (start-up order, documentation) */
  needs: readonly string[];
  probe(ctx: RenderContext): HealthProbe | undefined;
  render(ctx: RenderContext): RoleRender;
  /** runs instead where the node has no `binary` but has the simulator's binaries */
  simulator?: RoleSimulator;
}

export interface RoleHostPrivileges {
  runAs?: { user: string; group: string };
  /** [Service] options that confine the unit (NoNewPrivileges, ProtectSystem, CapabilityBoundingSet, …) */
  sandbox: Record<string, string>;
  /** why it runs as it does (docs/security.md lists it per role) */
  why: string;
}
