import { atLeast, DEFAULT_RESTART, probe } from '../common.js';
import { APISERVER_PORT } from '../endpoint.js';
import { apiserverPartition } from '../partitions.js';
import { arg, CERTS, certPath, instanceCertDir } from '../paths.js';
import type { RenderContext, RoleDefinition } from '../types.js';
import { etcdClientUrl } from './etcd.js';

/** Seed 003's admission plugins, in its order. */
export const ADMISSION_PLUGINS = [
  'NamespaceLifecycle',
  'LimitRanger',
  'ServiceAccount',
  'DefaultStorageClass',
  'DefaultTolerationSeconds',
  'Priority',
  'MutatingAdmissionWebhook',
  'ValidatingAdmissionWebhook',
  'ResourceQuota',
];

/**
 * How the `kubernetes` Service's endpoints are kept: `lease` (each API server renews its own
 * entry, so a dead one drops out; the default since 1.11), `master-count` with --apiserver-count
 * for older releases, and `none` on a loopback address, which the real API server refuses to
 * publish as an endpoint (the loopback lab; in-cluster clients then have no `kubernetes` endpoint).
 */
export function endpointReconciler(ctx: RenderContext): string[] {
  if (isLoopback(ctx.node.address)) return ['--endpoint-reconciler-type=none'];
  if (atLeast(ctx.topology.cluster.kubernetesVersion, 1, 11)) return ['--endpoint-reconciler-type=lease'];
  return [
    `--apiserver-count=${ctx.members('kube-apiserver').length}`,
    '--endpoint-reconciler-type=master-count',
  ];
}

function isLoopback(address: string): boolean {
  return /^127\./.test(address) || address === '::1';
}

export const kubeApiserver: RoleDefinition = {
  name: 'kube-apiserver',
  description:
    'Kubernetes API server; --etcd-servers from the etcd assignments (mutual TLS with apiserver-etcd-client), lease endpoint reconciler, probes verified against the cluster CA',
  binary: 'kube-apiserver',
  kubernetes: true,
  stateful: false,
  defaultSpread: { perNode: true },
  restart: { ...DEFAULT_RESTART },
  needs: ['etcd'],
  ports: () => [APISERVER_PORT],
  reads: ['etcd', 'kube-apiserver'],
  // --external-hostname names the API endpoint, so it follows the load balancer too
  usesApiEndpoint: true,
  probe: (ctx) =>
    probe(
      {
        kind: 'https',
        host: ctx.node.address,
        port: APISERVER_PORT,
        path: '/livez',
        caFile: arg(certPath(ctx.topology, ctx.assignment, CERTS.ca)),
      },
      { initialDelayMs: 10_000, timeoutMs: 2000, failureThreshold: 5 },
    ),
  render(ctx: RenderContext) {
    const t = ctx.topology;
    const c = t.cluster;
    const cert = (f: string) => arg(certPath(t, ctx.assignment, f));
    const addr = ctx.node.address;
    const tls = ctx.etcdTls === true;
    const etcdServers = ctx.members('etcd').map((m) => etcdClientUrl(m.node.address, tls));
    const args = [
      `--v=${c.logLevel}`,
      `--advertise-address=${addr}`,
      `--bind-address=${addr}`,
      `--secure-port=${APISERVER_PORT}`,
      `--etcd-servers=${etcdServers.join(',')}`,
      '--storage-backend=etcd3',
      // etcd over mutual TLS: the etcd CA, and the apiserver-etcd-client certificate it issued
      ...(tls
        ? [
            `--etcd-cafile=${cert(CERTS.etcdCa)}`,
            `--etcd-certfile=${cert(CERTS.apiserverEtcdClient)}`,
            `--etcd-keyfile=${cert(CERTS.apiserverEtcdClientKey)}`,
          ]
        : []),
      ...endpointReconciler(ctx),
      '--authorization-mode=Node,RBAC',
      `--enable-admission-plugins=${ADMISSION_PLUGINS.join(',')}`,
      '--feature-gates=AllAlpha=false',
      `--client-ca-file=${cert(CERTS.ca)}`,
      `--cert-dir=${arg(instanceCertDir(t, ctx.assignment))}`,
      `--tls-cert-file=${cert(CERTS.apiserver)}`,
      `--tls-private-key-file=${cert(CERTS.apiserverKey)}`,
      `--kubelet-client-certificate=${cert(CERTS.apiserverKubeletClient)}`,
      `--kubelet-client-key=${cert(CERTS.apiserverKubeletClientKey)}`,
      `--service-account-key-file=${cert(CERTS.serviceAccountPub)}`,
      '--service-account-lookup=true',
      `--service-cluster-ip-range=${c.serviceCIDR}`,
      `--external-hostname=${ctx.api.host}`,
    ];
    // Since 1.20 the API server refuses to start without a token issuer and signing key.
    if (atLeast(c.kubernetesVersion, 1, 20))
      args.push(
        `--service-account-issuer=https://kubernetes.default.svc.${c.clusterDomain}`,
        `--service-account-signing-key-file=${cert(CERTS.serviceAccountKey)}`,
      );
    // Arktos: this instance's service group (seeds 000/001)
    const part = apiserverPartition(ctx);
    return {
      args,
      unit: { type: 'notify', limitNOFILE: 65536 },
      ...(part ? { env: part.env, files: part.files } : {}),
    };
  },
};
