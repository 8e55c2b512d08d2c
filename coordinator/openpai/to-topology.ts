/**
 * OpenPaiCluster → Drover topology with pins: OpenPAI's explicit layout becomes pinned roles.
 *
 * | OpenPAI                      | Drover                                                             |
 * |------------------------------|--------------------------------------------------------------------|
 * | k8s-role: master (+ etcdid)  | etcd, kube-apiserver, kube-controller-manager, kube-scheduler pins  |
 * | master and worker nodes      | kubelet and kube-proxy `everywhere` over those nodes (pins)         |
 * | k8s-role: proxy              | load-balancer pinned there, apiEndpoint.mode haproxy (solution 2)   |
 * | load-balance-ip, no proxy    | apiEndpoint.mode external, address = load-balance-ip (solution 1)   |
 * | one master, no balancer      | apiEndpoint.mode direct (solution 3)                                |
 * | dashboard: "true"            | dashboard pinned there                                              |
 * | service-cluster-ip-range     | cluster.serviceCIDR                                                 |
 * | cluster-dns                  | cluster.clusterDNS only when inside the service range (see below)   |
 * | apiserver-/hyperkube-version | cluster.kubernetesVersion                                           |
 *
 * Pins are hostnames in machine-list order, so `etcd#0` is the first master. The per-node roles
 * (kubelet, kube-proxy) are `everywhere` with the node list as pins: the engine numbers them as it
 * numbers any everywhere role and keeps the ordinals of instances already running, so importing
 * over a running cluster does not move `kubelet#0` from one host to another. OpenPAI's
 * `cluster-dns` is the hosts' resolver from /etc/resolv.conf, while Drover's `clusterDNS` is the
 * in-cluster DNS service IP and must sit inside the service range; when it does not, the import
 * uses the range's 10th address (the kubeadm convention) and says so in `warnings`.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { type Topology, validateTopology } from '../topology/index.js';
import { OpenPaiError } from './errors.js';
import {
  CLUSTER_FILES,
  KUBERNETES_FILE,
  type OpenPaiCluster,
  type OpenPaiNode,
  parseOpenPai,
} from './parse.js';

export interface OpenPaiImportOptions {
  /** topology and cluster name; default the config's `cluster.clusterid`, else `openpai` */
  name?: string;
}

export interface OpenPaiImport {
  topology: Topology;
  source: OpenPaiCluster;
  warnings: string[];
}

const NAME = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,62})$/;

function ipv4ToInt(ip: string): number {
  return ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
}
function intToIpv4(n: number): string {
  return [24, 16, 8, 0].map((s) => String(Math.floor(n / 2 ** s) % 256)).join('.');
}
function v4Cidr(cidr: string): { base: number; size: number } | undefined {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d{1,2})$/.exec(cidr);
  if (!m) return undefined;
  const size = 2 ** (32 - Number(m[2]));
  return { base: Math.floor(ipv4ToInt(m[1]!) / size) * size, size };
}

function clusterDnsFor(c: OpenPaiCluster, warnings: string[]): string | undefined {
  if (!c.serviceClusterIpRange) {
    if (c.clusterDns)
      warnings.push(
        `cluster-dns ${c.clusterDns} is not imported: without service-cluster-ip-range Drover keeps its default service range and DNS IP`,
      );
    return undefined;
  }
  const r = v4Cidr(c.serviceClusterIpRange);
  if (!r) return undefined; // IPv6 service range: leave clusterDNS to the operator
  if (c.clusterDns && /^\d+\.\d+\.\d+\.\d+$/.test(c.clusterDns)) {
    const n = ipv4ToInt(c.clusterDns);
    if (n > r.base && n < r.base + r.size - 1) return c.clusterDns;
  }
  const dns = intToIpv4(r.base + Math.min(10, r.size - 2));
  warnings.push(
    `cluster.clusterDNS set to ${dns} (10th address of ${c.serviceClusterIpRange})${c.clusterDns ? `; OpenPAI's cluster-dns ${c.clusterDns} is the hosts' resolver, not an in-cluster service IP` : ''}`,
  );
  return dns;
}

const pinned = (ns: OpenPaiNode[]) => ({ replicas: ns.length, pins: ns.map((n) => n.hostname) });
const perNode = (ns: OpenPaiNode[]) => ({ everywhere: true, pins: ns.map((n) => n.hostname) });

/** The topology document (input shape, as a user would write it) for an OpenPAI cluster. */
export function openPaiTopologyDocument(c: OpenPaiCluster, opts: OpenPaiImportOptions = {}) {
  const warnings = [...c.warnings];
  const name = opts.name ?? c.clusterId ?? 'openpai';
  if (!NAME.test(name))
    throw new OpenPaiError([
      {
        field: opts.name !== undefined ? 'name' : 'cluster.clusterid',
        message: `"${name}" cannot name a Drover cluster: use letters, digits and "._-", at most 63 characters`,
      },
    ]);
  const nodes = [...c.masters, ...c.workers].sort((a, b) => a.index - b.index);
  const roles: Record<string, { replicas?: number; everywhere?: boolean; pins: string[] }> = {
    etcd: pinned(c.masters),
    'kube-apiserver': pinned(c.masters),
    'kube-controller-manager': pinned(c.masters),
    'kube-scheduler': pinned(c.masters),
    // One per node: `everywhere` over the listed nodes, so ordinals are the engine's own (kept
    // when the topology is applied over a running cluster), not positions in the machine list.
    kubelet: perNode(nodes),
    'kube-proxy': perNode(nodes),
  };
  if (c.proxy) roles['load-balancer'] = pinned([c.proxy]);
  if (c.dashboardNode) roles.dashboard = pinned([c.dashboardNode]);
  const clusterDNS = clusterDnsFor(c, warnings);
  const doc = {
    apiVersion: 'drover.dev/v1',
    kind: 'Topology',
    metadata: {
      name,
      labels: {
        'drover.dev/imported-from': 'openpai',
        'drover.dev/openpai-ha-solution': String(c.haSolution),
      },
    },
    cluster: {
      name,
      ...(c.kubernetesVersion ? { kubernetesVersion: c.kubernetesVersion } : {}),
      ...(c.serviceClusterIpRange ? { serviceCIDR: c.serviceClusterIpRange } : {}),
      ...(clusterDNS ? { clusterDNS } : {}),
      apiEndpoint: {
        mode: c.apiEndpoint.mode,
        ...(c.apiEndpoint.address ? { address: c.apiEndpoint.address } : {}),
      },
    },
    roles,
  };
  return { doc, warnings };
}

/**
 * `drover import openpai FILE|DIR`: parses and validates an OpenPAI configuration and returns the
 * equivalent validated Drover topology. Throws OpenPaiError (DROVER_ERR_OPENPAI_CONFIG) naming the
 * node and field for configuration errors; TopologyError only if the result breaks a topology rule
 * the OpenPAI checks did not foresee.
 */
export function importOpenPai(
  input: string | Record<string, string>,
  opts: OpenPaiImportOptions = {},
): OpenPaiImport {
  const source = parseOpenPai(input);
  const { doc, warnings } = openPaiTopologyDocument(source, opts);
  return { topology: validateTopology(doc, 'openpai import'), source, warnings };
}

/** Reads an OpenPAI config FILE (one YAML text) or DIR (its known files) for `importOpenPai`. */
export async function readOpenPaiPath(path: string): Promise<string | Record<string, string>> {
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat(path);
  } catch (err) {
    throw new OpenPaiError([{ field: '', file: path, message: `cannot read: ${(err as Error).message}` }]);
  }
  if (!st.isDirectory()) return readFile(path, 'utf8');
  const wanted = new Set<string>([...CLUSTER_FILES, KUBERNETES_FILE]);
  const files: Record<string, string> = {};
  for (const f of await readdir(path))
    if (wanted.has(f)) files[basename(f)] = await readFile(join(path, f), 'utf8');
  return files;
}
