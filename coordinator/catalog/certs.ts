/**
 * Certificates in plans. With a cluster PKI (`RenderOptions.pki`), each Kubernetes instance's
 * plan lists the certificates it needs (`InstanceSpec.certificates`): the profile, the exact
 * subject and subjectAltNames (`certSpecFor`, the same function the signer runs, so the two sides
 * cannot disagree), and where key, certificate and issuing CA go in the instance's cert dir. The
 * agent makes the key, sends a CSR and writes the files before it starts the instance; the role's
 * flags and kubeconfigs point at those paths.
 *
 * etcd runs with client and peer TLS from the etcd CA (`RenderContext.etcdTls`): each member gets
 * a serving, a peer and a client certificate (the last for its own etcdctl commands), and each API
 * server an `apiserver-etcd-client` certificate. A cluster whose etcd was bootstrapped over plain
 * HTTP before TLS existed stays plain (coordinator/etcd/transport.ts) and lists none of these.
 */
import type { PlanCertificate, PlanFile } from '../../protocol/index.js';
import type { Assignment, NodeRecord } from '../model.js';
// profiles.js, not the PKI's index: the signer (pki/csr-service.ts) imports the catalog
import { type CertProfile, certSpecFor, type PkiClusterContext, type PkiNode } from '../pki/profiles.js';
import type { Topology } from '../topology/index.js';
import { CERTS, CLIENT_CERT, certPath } from './paths.js';
import type { ApiEndpoint, CertRenewalExtras, PkiRenderOptions, RenderContext } from './types.js';

export type { PkiRenderOptions };

/** The certificates each role needs: profile and file name (without `.crt`/`.key`). */
export const ROLE_CERTIFICATES: Readonly<Record<string, ReadonlyArray<[CertProfile, string]>>> =
  Object.freeze({
    'kube-apiserver': [
      ['apiserver-serving', 'apiserver'],
      ['apiserver-kubelet-client', 'apiserver-kubelet-client'],
    ],
    'kube-scheduler': [
      ['scheduler', CLIENT_CERT['kube-scheduler']!],
      ['scheduler-serving', 'scheduler-serving'],
    ],
    'kube-controller-manager': [
      ['controller-manager', CLIENT_CERT['kube-controller-manager']!],
      ['controller-manager-serving', 'controller-manager-serving'],
    ],
    'workload-controller-manager': [['controller-manager', CLIENT_CERT['workload-controller-manager']!]],
    kubelet: [
      ['kubelet-client', CLIENT_CERT.kubelet!],
      ['kubelet-serving', 'kubelet'],
    ],
    'kube-proxy': [['kube-proxy', CLIENT_CERT['kube-proxy']!]],
  });

/** The etcd TLS certificates of a role, listed only when its cluster's etcd runs TLS. */
export const ETCD_TLS_CERTIFICATES: Readonly<Record<string, ReadonlyArray<[CertProfile, string]>>> =
  Object.freeze({
    etcd: [
      ['etcd-server', 'etcd-server'],
      ['etcd-peer', 'etcd-peer'],
      ['etcd-client', 'etcdctl-client'],
    ],
    'kube-apiserver': [['etcd-client', 'apiserver-etcd-client']],
  });

/** What an instance of `role` needs: its own certificates plus, when etcd runs TLS, its etcd ones. */
export function roleCertificates(
  role: string,
  etcdTls: boolean,
): ReadonlyArray<[CertProfile, string]> | undefined {
  const own = ROLE_CERTIFICATES[role];
  const etcd = etcdTls ? ETCD_TLS_CERTIFICATES[role] : undefined;
  if (!etcd) return own;
  return [...(own ?? []), ...etcd];
}

/** A node as certificates name it: its hostname and the address it advertises. */
export function pkiNodeFor(node: Pick<NodeRecord, 'id' | 'hostname' | 'address'>): PkiNode {
  return { id: node.id, hostname: node.hostname, addresses: [node.address] };
}

/** The cluster facts certificate names depend on; the signer computes the same from the same inputs. */
export function pkiContextFor(
  t: Topology,
  api: ApiEndpoint,
  extraApiserverSans?: string[],
): PkiClusterContext {
  return {
    clusterDomain: t.cluster.clusterDomain,
    serviceCidr: t.cluster.serviceCIDR,
    apiEndpointAddresses: api.via === 'unresolved' ? [] : [api.host],
    ...(extraApiserverSans?.length ? { extraApiserverSans } : {}),
  };
}

/** The `certificates` entries of one instance (empty for roles without certificates). */
export function planCertificates(
  ctx: RenderContext,
  pki: PkiRenderOptions,
  wanted: ReadonlyArray<[CertProfile, string]> | undefined = roleCertificates(ctx.role, ctx.etcdTls === true),
): PlanCertificate[] {
  if (!wanted) return [];
  const context = pkiContextFor(ctx.topology, ctx.api, pki.extraApiserverSans);
  const node = pkiNodeFor(ctx.node);
  const at = (f: string) => certPath(ctx.topology, ctx.assignment, f);
  const renew = (ctx.assignment as Assignment & CertRenewalExtras).certRenew ?? {};
  return wanted.map(([profile, name]) => {
    const spec = certSpecFor(profile, { node, role: ctx.role, context });
    return {
      ...(renew[profile] ? { renewSerial: renew[profile] } : {}),
      profile,
      commonName: spec.commonName,
      organizations: spec.organizations,
      dnsNames: spec.dnsNames,
      ipAddresses: spec.ipAddresses,
      certPath: at(`${name}.crt`),
      keyPath: at(`${name}.key`),
      // each certificate is stored with the CA that issued it: the etcd CA is not the cluster CA
      caPath: at(spec.issuer === 'etcd' ? CERTS.etcdCa : CERTS.ca),
    };
  });
}

/** The service-account key files of API servers (sa.key + sa.pub) and controller managers (sa.key). */
export function serviceAccountFiles(ctx: RenderContext, pki: PkiRenderOptions): PlanFile[] {
  const at = (f: string) => certPath(ctx.topology, ctx.assignment, f);
  const key = { path: at(CERTS.serviceAccountKey), mode: 0o600, content: pki.serviceAccount.privateKeyPem };
  if (ctx.role === 'kube-apiserver')
    return [
      key,
      { path: at(CERTS.serviceAccountPub), mode: 0o644, content: pki.serviceAccount.publicKeyPem },
    ];
  if (ctx.role === 'kube-controller-manager') return [key];
  return [];
}
