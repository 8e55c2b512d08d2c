/**
 * Where rendered roles keep their files on a node. File paths in a plan are absolute and the agent
 * writes them under its root dir; in arguments the literal `${DROVER_ROOT}` stands for that dir.
 * Kubeconfigs refer to certificates by paths relative to themselves, which client-go resolves
 * against the kubeconfig's directory, so they work under any root.
 */
import { posix } from 'node:path';
import { DecodeError, isHostname, isIpAddress } from '../../protocol/index.js';
import type { Assignment } from '../model.js';
import type { Topology } from '../topology/index.js';

/** The literal the agent replaces with its root dir (built up so linters do not take it for a template). */
export const ROOT = ['$', '{DROVER_ROOT}'].join('');

/** `kube-apiserver#2` → `kube-apiserver-2`: file and member names cannot hold `#`. */
export const instanceName = (a: Pick<Assignment, 'role' | 'ordinal'>): string => `${a.role}-${a.ordinal}`;

/** Per-instance config directory: `/etc/drover/<role>-<ordinal>`. */
export const configDir = (a: Pick<Assignment, 'role' | 'ordinal'>): string =>
  `/etc/drover/${instanceName(a)}`;

/** An absolute node path as an argument: prefixed with `${DROVER_ROOT}`. */
export const arg = (path: string): string => `${ROOT}${path}`;

/**
 * Certificate file names, kubeadm's names (seed 003). Each instance keeps its own set in
 * `cluster.certDir/<instance>/` (e.g. `/etc/kubernetes/pki/kube-apiserver-0/apiserver.crt`): its
 * key is generated on the node for that instance, and two instances on one node (a controller
 * manager and a workload controller manager share a profile) never write the same file.
 */
export const CERTS = {
  ca: 'ca.crt',
  /** the etcd CA (etcd's serving, peer and client certificates are issued by it, never by ca.crt) */
  etcdCa: 'etcd-ca.crt',
  etcdServer: 'etcd-server.crt',
  etcdServerKey: 'etcd-server.key',
  etcdPeer: 'etcd-peer.crt',
  etcdPeerKey: 'etcd-peer.key',
  /** etcd's own client certificate (its etcdctl commands) */
  etcdctlClient: 'etcdctl-client.crt',
  etcdctlClientKey: 'etcdctl-client.key',
  apiserverEtcdClient: 'apiserver-etcd-client.crt',
  apiserverEtcdClientKey: 'apiserver-etcd-client.key',
  serviceAccountKey: 'sa.key',
  serviceAccountPub: 'sa.pub',
  apiserver: 'apiserver.crt',
  apiserverKey: 'apiserver.key',
  apiserverKubeletClient: 'apiserver-kubelet-client.crt',
  apiserverKubeletClientKey: 'apiserver-kubelet-client.key',
  kubeletServing: 'kubelet.crt',
  kubeletServingKey: 'kubelet.key',
  schedulerServing: 'scheduler-serving.crt',
  schedulerServingKey: 'scheduler-serving.key',
  controllerManagerServing: 'controller-manager-serving.crt',
  controllerManagerServingKey: 'controller-manager-serving.key',
} as const;

/** The client certificate (`<name>.crt` / `<name>.key`) each API client role uses. */
export const CLIENT_CERT: Readonly<Record<string, string>> = Object.freeze({
  'kube-scheduler': 'scheduler',
  'kube-controller-manager': 'controller-manager',
  'workload-controller-manager': 'controller-manager',
  kubelet: 'kubelet-client',
  'kube-proxy': 'kube-proxy',
  dashboard: 'dashboard',
});

/** An instance's certificate dir: `cluster.certDir/<role>-<ordinal>`. */
export const instanceCertDir = (t: Topology, a: Pick<Assignment, 'role' | 'ordinal'>): string =>
  posix.join(t.cluster.certDir, instanceName(a));

export const certPath = (t: Topology, a: Pick<Assignment, 'role' | 'ordinal'>, file: string): string =>
  posix.join(instanceCertDir(t, a), file);

const relCache = new Map<string, string>();
/**
 * An instance's `certDir/<instance>/file` relative to `fromDir` (for kubeconfigs). Config dirs are
 * all `/etc/drover/<instance>`, so the way up to `certDir` depends only on the parent dir: cache
 * that part.
 */
export const certRelative = (
  t: Topology,
  fromDir: string,
  a: Pick<Assignment, 'role' | 'ordinal'>,
  file: string,
): string => {
  const key = `${posix.dirname(fromDir)}\u0000${t.cluster.certDir}`;
  let rel = relCache.get(key);
  if (rel === undefined) {
    rel = posix.relative(fromDir, t.cluster.certDir) || '.';
    if (relCache.size > 1000) relCache.clear();
    relCache.set(key, rel);
  }
  return `${rel}/${instanceName(a)}/${file}`;
};

/**
 * `host:port`, bracketing IPv6 literals. The host must be an IP address (bracketed or not) or an
 * RFC 1123 host name: anything else (a newline, a space, a zone) is refused, so no caller can
 * write another directive into haproxy.cfg, a URL or a flag through it.
 */
export function hostPort(host: string, port: number): string {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (!isIpAddress(bare) && !isHostname(host))
    throw new DecodeError(
      'DROVER_ERR_DECODE',
      '',
      `host ${JSON.stringify(host)} is neither an IP address nor an RFC 1123 host name`,
    );
  return bare.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
}
