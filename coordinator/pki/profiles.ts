/**
 * Certificate profiles: for each kind of certificate a role needs, which CA issues it, its subject,
 * its subjectAltNames and its key usages, computed from the node and the cluster context alone.
 *
 * The same function serves two callers: the plan renderer puts `certSpecFor(...)` into the plan so
 * the agent asks for exactly these names (see lib/csr.ts), and the signer recomputes it and refuses
 * any CSR that differs. Nothing the node asks for is trusted beyond its public key.
 */
import { isIP } from 'node:net';
import { isHostname, isIpAddress } from '../../protocol/index.js';
import { pkiError } from './errors.js';

export const CERT_PROFILES = [
  'apiserver-serving',
  'apiserver-kubelet-client',
  'front-proxy-client',
  'etcd-peer',
  'etcd-server',
  'etcd-client',
  'kubelet-client',
  'kubelet-serving',
  'scheduler',
  'scheduler-serving',
  'controller-manager',
  'controller-manager-serving',
  'kube-proxy',
  'kwok-node',
  'admin',
] as const;
export type CertProfile = (typeof CERT_PROFILES)[number];

/** The API server's identity towards kubelets (logs, exec, port-forward, metrics). */
export const APISERVER_KUBELET_CLIENT_USER = 'kube-apiserver-kubelet-client';

export function isCertProfile(p: string): p is CertProfile {
  return (CERT_PROFILES as readonly string[]).includes(p);
}

/** Which CA signs a profile. Separate CAs keep an etcd client cert from being a Kubernetes identity. */
export type CaName = 'cluster' | 'etcd' | 'front-proxy';

/**
 * Which instance roles may obtain each profile. `admin` is issued only by the coordinator to the
 * operator (`adminKubeconfig`), never through a node's CSR. Override with `ClusterPkiOptions.profileRoles`
 * when the catalog uses other role names.
 */
export const DEFAULT_PROFILE_ROLES: Readonly<Record<CertProfile, readonly string[]>> = Object.freeze({
  'apiserver-serving': ['kube-apiserver'],
  'apiserver-kubelet-client': ['kube-apiserver'],
  'front-proxy-client': ['kube-apiserver'],
  'etcd-peer': ['etcd'],
  'etcd-server': ['etcd'],
  // the API server talks to etcd; etcd's own health probe (etcdctl) uses a client cert too
  'etcd-client': ['kube-apiserver', 'etcd'],
  'kubelet-client': ['kubelet'],
  'kubelet-serving': ['kubelet'],
  scheduler: ['kube-scheduler'],
  'scheduler-serving': ['kube-scheduler'],
  'controller-manager-serving': ['kube-controller-manager'],
  // Arktos' workload-controller-manager runs with controller-manager credentials (seed 000/001)
  'controller-manager': ['kube-controller-manager', 'workload-controller-manager'],
  'kube-proxy': ['kube-proxy'],
  // the kubelet role simulated by kwok (lab workers without a container runtime)
  'kwok-node': ['kubelet'],
  admin: [],
});

export interface PkiNode {
  id: string;
  hostname: string;
  /** every address the node is reached on (NodeRecord.address plus fact addresses) */
  addresses: string[];
}

export interface PkiClusterContext {
  /** e.g. `cluster.local` */
  clusterDomain: string;
  /** e.g. `10.96.0.0/12`; its first address is the `kubernetes` service IP */
  serviceCidr: string;
  /** the API endpoint clients dial: load-balancer IP or DNS name (HA solutions 1 and 2) */
  apiEndpointAddresses?: string[];
  /** extra names for the API-server serving cert, set by the operator */
  extraApiserverSans?: string[];
}

export type KeyPurpose = 'serverAuth' | 'clientAuth';

export interface CertSpec {
  profile: CertProfile;
  issuer: CaName;
  commonName: string;
  organizations: string[];
  dnsNames: string[];
  ipAddresses: string[];
  usages: KeyPurpose[];
}

/** Canonical text of an IP (compressed IPv6, no zone), or undefined when `s` is not an IP. */
export function canonicalIp(s: string): string | undefined {
  const v = isIP(s);
  if (v === 4)
    return s
      .split('.')
      .map((o) => String(Number(o)))
      .join('.');
  if (v === 6) return new URL(`http://[${s}]`).hostname.slice(1, -1);
  return undefined;
}

/** The first usable address of a CIDR: the ClusterIP of the `kubernetes` service (e.g. 10.96.0.1). */
export function firstServiceIp(cidr: string): string {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(cidr.trim());
  const ip = m ? canonicalIp(m[1]!) : undefined;
  if (!m || !ip)
    throw pkiError('DROVER_ERR_CSR_CONTEXT', `serviceCidr "${cidr}" is not an address/prefix CIDR`);
  const prefix = Number(m[2]);
  const v6 = ip.includes(':');
  const bits = v6 ? 128 : 32;
  if (prefix > bits - 2)
    throw pkiError(
      'DROVER_ERR_CSR_CONTEXT',
      `serviceCidr "${cidr}": prefix /${prefix} leaves no service IPs`,
    );
  const n = v6 ? ipv6ToBigInt(ip) : ipv4ToBigInt(ip);
  const mask = ((1n << BigInt(bits)) - 1n) ^ ((1n << BigInt(bits - prefix)) - 1n);
  const first = (n & mask) + 1n;
  return v6 ? bigIntToIpv6(first) : bigIntToIpv4(first);
}

function ipv4ToBigInt(ip: string): bigint {
  return ip.split('.').reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n);
}
function bigIntToIpv4(n: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 255n)).join('.');
}
function ipv6ToBigInt(ip: string): bigint {
  const [head, tail] = ip.includes('::') ? ip.split('::') : [ip, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(Number.parseInt(g || '0', 16)), 0n);
}
function bigIntToIpv6(n: bigint): string {
  const groups: string[] = [];
  for (let i = 7; i >= 0; i--) groups.push(((n >> BigInt(i * 16)) & 0xffffn).toString(16));
  return canonicalIp(groups.join(':'))!;
}

/** Splits names into DNS names (lower-cased) and canonical IPs, deduplicated and sorted. */
export function splitNames(names: Iterable<string>): { dnsNames: string[]; ipAddresses: string[] } {
  const dns = new Set<string>();
  const ips = new Set<string>();
  for (const raw of names) {
    const n = raw.trim();
    if (!n) continue;
    const ip = canonicalIp(n);
    if (ip) ips.add(ip);
    else dns.add(n.toLowerCase());
  }
  return { dnsNames: [...dns].sort(), ipAddresses: [...ips].sort() };
}

/**
 * What `profile` issues to an instance of `role` on `node`. Pure; throws DROVER_ERR_CSR_CONTEXT
 * when the cluster context is malformed.
 */
export function certSpecFor(
  profile: CertProfile,
  input: { node: PkiNode; role: string; context: PkiClusterContext },
): CertSpec {
  const { node, role, context } = input;
  // what the node reported goes into a certificate other hosts trust: only a host name and IPs
  if (!isHostname(node.hostname))
    throw pkiError(
      'DROVER_ERR_CSR_CONTEXT',
      `node ${node.id}: hostname ${JSON.stringify(node.hostname)} is not an RFC 1123 host name; no certificate names it`,
    );
  const badIp = node.addresses.find((a) => !isIpAddress(a));
  if (badIp !== undefined)
    throw pkiError(
      'DROVER_ERR_CSR_CONTEXT',
      `node ${node.id}: address ${JSON.stringify(badIp)} is not an IP address; no certificate names it`,
    );
  const host = node.hostname;
  const spec = (
    issuer: CaName,
    commonName: string,
    organizations: string[],
    names: string[],
    usages: KeyPurpose[],
  ): CertSpec => ({ profile, issuer, commonName, organizations, ...splitNames(names), usages });
  switch (profile) {
    case 'apiserver-serving': {
      const domain = context.clusterDomain.replace(/\.$/, '');
      if (!domain) throw pkiError('DROVER_ERR_CSR_CONTEXT', 'clusterDomain is empty');
      return spec(
        'cluster',
        'kube-apiserver',
        [],
        [
          host,
          ...node.addresses,
          ...(context.apiEndpointAddresses ?? []),
          firstServiceIp(context.serviceCidr),
          'kubernetes',
          'kubernetes.default',
          'kubernetes.default.svc',
          `kubernetes.default.svc.${domain}`,
          ...(context.extraApiserverSans ?? []),
        ],
        ['serverAuth'],
      );
    }
    case 'apiserver-kubelet-client':
      // least privilege: no group, so not system:masters; the coordinator binds this user to
      // system:kubelet-api-admin (kube/bootstrap.ts), which is all the API server needs of kubelets
      return spec('cluster', APISERVER_KUBELET_CLIENT_USER, [], [], ['clientAuth']);
    case 'front-proxy-client':
      return spec('front-proxy', 'front-proxy-client', [], [], ['clientAuth']);
    case 'etcd-server':
      // loopback names too: etcd's local clients (health probe, etcdctl on the host) dial 127.0.0.1
      return spec(
        'etcd',
        host,
        [],
        [host, ...node.addresses, 'localhost', '127.0.0.1', '::1'],
        ['serverAuth', 'clientAuth'],
      );
    case 'etcd-peer':
      // With --peer-client-cert-auth, etcd matches a dialing peer's certificate against the
      // connection's source address. Members on one host (the lab's 127.0.0.x nodes) dial each
      // other from 127.0.0.1, so the loopback names are in the peer certificate too; a peer
      // certificate is only ever issued to an etcd member, by the etcd CA.
      return spec(
        'etcd',
        host,
        [],
        [host, ...node.addresses, 'localhost', '127.0.0.1', '::1'],
        ['serverAuth', 'clientAuth'],
      );
    case 'etcd-client':
      return spec('etcd', `${role}-etcd-client`, [], [], ['clientAuth']);
    case 'kubelet-client':
      return spec('cluster', `system:node:${host}`, ['system:nodes'], [], ['clientAuth']);
    case 'kubelet-serving':
      return spec(
        'cluster',
        `system:node:${host}`,
        ['system:nodes'],
        [host, ...node.addresses],
        ['serverAuth'],
      );
    case 'scheduler':
      return spec('cluster', 'system:kube-scheduler', [], [], ['clientAuth']);
    case 'scheduler-serving':
    case 'controller-manager-serving':
      // the secure port's serving cert (/healthz, /metrics), so probes verify it against the CA;
      // loopback names for a local `curl --cacert` on the host
      return spec(
        'cluster',
        profile === 'scheduler-serving' ? 'kube-scheduler' : 'kube-controller-manager',
        [],
        [host, ...node.addresses, 'localhost', '127.0.0.1'],
        ['serverAuth'],
      );
    case 'controller-manager':
      return spec('cluster', 'system:kube-controller-manager', [], [], ['clientAuth']);
    case 'kube-proxy':
      return spec('cluster', 'system:kube-proxy', ['system:node-proxier'], [], ['clientAuth']);
    case 'kwok-node':
      // not system:node:*: the Node authorizer lets a node read only its own Node, and kwok lists
      // them all. The coordinator binds this group to the drover:kwok-node ClusterRole.
      return spec('cluster', `drover:kwok:${host}`, ['drover:kwok-nodes'], [], ['clientAuth']);
    case 'admin':
      return spec('cluster', 'drover-admin', ['system:masters'], [], ['clientAuth']);
  }
}
