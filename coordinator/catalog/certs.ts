/**
 * Certificates in plans. With a cluster PKI (`RenderOptions.pki`), each Kubernetes instance's
 * plan lists the certificates it needs (`InstanceSpec.certificates`): the profile, the exact
 * subject and subjectAltNames (`certSpecFor`, the same function the signer runs, so the two sides
 * cannot disagree), and where key, certificate and issuing CA go in the instance's cert dir. The
 * agent makes the key, sends a CSR and writes the files before it starts the instance; the role's
 * flags and kubeconfigs point at those paths.
 *
 * etcd keeps plain HTTP here (the coordinator's etcd membership client and the probes speak HTTP);
 * its TLS profiles are issued and tested by the PKI library (test/integration/pki-etcd-tls).
 */
import type { PlanCertificate, PlanFile } from '../../protocol/index.js';
import type { NodeRecord } from '../model.js';
// profiles.js, not the PKI's index: the signer (pki/csr-service.ts) imports the catalog
import { type CertProfile, certSpecFor, type PkiClusterContext, type PkiNode } from '../pki/profiles.js';
import type { Topology } from '../topology/index.js';
import { CERTS, CLIENT_CERT, certPath } from './paths.js';
import type { ApiEndpoint, PkiRenderOptions, RenderContext } from './types.js';

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
  wanted: ReadonlyArray<[CertProfile, string]> | undefined = ROLE_CERTIFICATES[ctx.role],
): PlanCertificate[] {
  if (!wanted) return [];
  const context = pkiContextFor(ctx.topology, ctx.api, pki.extraApiserverSans);
  const node = pkiNodeFor(ctx.node);
  const at = (f: string) => certPath(ctx.topology, ctx.assignment, f);
  return wanted.map(([profile, name]) => {
    const spec = certSpecFor(profile, { node, role: ctx.role, context });
    return {
      profile,
      commonName: spec.commonName,
      organizations: spec.organizations,
      dnsNames: spec.dnsNames,
      ipAddresses: spec.ipAddresses,
      certPath: at(`${name}.crt`),
      keyPath: at(`${name}.key`),
      caPath: at(CERTS.ca),
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
