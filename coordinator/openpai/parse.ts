/**
 * OpenPAI cluster configuration (seed 004) → an `OpenPaiCluster` model, validated with errors that
 * name the file, the node and the field.
 *
 * Accepted input: OpenPAI's configuration directory as a map of file name → text
 * (`cluster-configuration.yaml` or `layout.yaml` holding `machine-list` and `machine-sku`, and
 * `kubernetes-configuration.yaml` holding `kubernetes.load-balance-ip` …; other files such as
 * `k8s-role-definition.yaml` and `services-configuration.yaml` are ignored), or one YAML text that
 * holds both sections.
 *
 * The HA solution is derived the way the seed describes it:
 *  - a node with `k8s-role: proxy` → solution 2: Drover's load-balancer (haproxy) on that node;
 *    `load-balance-ip`, when set, must be the proxy's `hostip`;
 *  - no proxy and several masters → solution 1: `load-balance-ip` is an external load balancer, so it
 *    is required and must not be one master's own address;
 *  - no proxy and one master → solution 3: direct to the master (`load-balance-ip` absent or the
 *    master's `hostip`); a different address means an external balancer in front of one master.
 */
import { isIP } from 'node:net';
import { parseDocument } from 'yaml';
import { etcdMemberCountWarning } from '../topology/warnings.js';
import { OpenPaiError, type OpenPaiProblem } from './errors.js';

export const K8S_ROLES = ['master', 'worker', 'proxy'] as const;
export type K8sRole = (typeof K8S_ROLES)[number];

export const CLUSTER_FILES = ['cluster-configuration.yaml', 'layout.yaml'] as const;
export const KUBERNETES_FILE = 'kubernetes-configuration.yaml';
const SINGLE_FILE = '(config)';
const MAX_PROBLEMS = 20;

export interface OpenPaiNode {
  /** position in `machine-list` */
  index: number;
  hostname: string;
  hostip: string;
  machineType?: string;
  etcdid?: string;
  k8sRole: K8sRole;
  dashboard: boolean;
  /** other string fields of the node (`pai-master`, `pai-worker`, `zkid`, …), kept for labels */
  extra: Record<string, string>;
}

export type HaSolution = 1 | 2 | 3;

export interface OpenPaiCluster {
  clusterId?: string;
  nodes: OpenPaiNode[];
  masters: OpenPaiNode[];
  workers: OpenPaiNode[];
  proxy?: OpenPaiNode;
  dashboardNode?: OpenPaiNode;
  loadBalanceIp?: string;
  clusterDns?: string;
  serviceClusterIpRange?: string;
  kubernetesVersion?: string;
  haSolution: HaSolution;
  apiEndpoint: { mode: 'external' | 'haproxy' | 'direct'; address?: string };
  machineSkus: Record<string, unknown>;
  /** things imported but worth telling the operator */
  warnings: string[];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);
const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/;

class Problems {
  readonly list: OpenPaiProblem[] = [];
  add(p: OpenPaiProblem): void {
    if (this.list.length < MAX_PROBLEMS) this.list.push(p);
  }
  throwIfAny(): void {
    if (this.list.length) throw new OpenPaiError(this.list);
  }
}

function parseYaml(file: string, text: string, problems: Problems): Obj | undefined {
  if (typeof text !== 'string') {
    problems.add({ file, field: '', message: 'must be YAML text' });
    return undefined;
  }
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    const line = e.linePos?.[0];
    problems.add({
      file,
      field: line ? `line ${line.line}:${line.col}` : '',
      message: `is not valid YAML: ${e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`,
    });
    return undefined;
  }
  const v = doc.toJS() as unknown;
  if (v === null || v === undefined) return {};
  if (!isObj(v)) {
    problems.add({ file, field: '', message: 'must be a YAML mapping' });
    return undefined;
  }
  return v;
}

function str(v: unknown): string | undefined {
  if (typeof v === 'string') return v.trim();
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

/** Reads the sections from a directory's files or from one text. */
function sections(input: string | Record<string, string>, problems: Problems) {
  let clusterFile = SINGLE_FILE;
  let k8sFile = SINGLE_FILE;
  let cluster: Obj | undefined;
  let k8s: Obj | undefined;
  if (typeof input === 'string') {
    cluster = parseYaml(SINGLE_FILE, input, problems);
    k8s = cluster;
  } else if (isObj(input)) {
    const name = CLUSTER_FILES.find((f) => typeof input[f] === 'string');
    if (!name) {
      problems.add({
        field: '',
        message: `no ${CLUSTER_FILES.join(' or ')} in the configuration directory (found: ${Object.keys(input).join(', ') || 'nothing'})`,
      });
    } else {
      clusterFile = name;
      cluster = parseYaml(name, input[name]!, problems);
    }
    k8sFile = KUBERNETES_FILE;
    k8s =
      typeof input[KUBERNETES_FILE] === 'string'
        ? parseYaml(KUBERNETES_FILE, input[KUBERNETES_FILE]!, problems)
        : {};
  } else {
    problems.add({ field: '', message: 'input must be YAML text or a map of file name to YAML text' });
  }
  return { clusterFile, k8sFile, cluster, k8s };
}

function cidrOk(s: string): boolean {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(s);
  return !!m && isIP(m[1]!) !== 0 && Number(m[2]) <= (isIP(m[1]!) === 4 ? 32 : 128);
}

export function parseOpenPai(input: string | Record<string, string>): OpenPaiCluster {
  const problems = new Problems();
  const { clusterFile, k8sFile, cluster, k8s } = sections(input, problems);
  problems.throwIfAny();
  const warnings: string[] = [];

  const skus = isObj(cluster!['machine-sku']) ? (cluster!['machine-sku'] as Obj) : {};
  const list = cluster!['machine-list'];
  if (!Array.isArray(list) || list.length === 0) {
    problems.add({ file: clusterFile, field: 'machine-list', message: 'must be a non-empty list of nodes' });
    problems.throwIfAny();
  }

  const nodes: OpenPaiNode[] = [];
  const byHost = new Map<string, OpenPaiNode>();
  const byIp = new Map<string, OpenPaiNode>();
  const byEtcd = new Map<string, OpenPaiNode>();
  (list as unknown[]).forEach((raw, i) => {
    const base = `machine-list[${i}]`;
    if (!isObj(raw)) {
      problems.add({
        file: clusterFile,
        field: base,
        message: 'must be a mapping with hostname, hostip, k8s-role …',
      });
      return;
    }
    const hostname = str(raw.hostname);
    const label = hostname ? `${base} (${hostname})` : base;
    const bad = (field: string, message: string) =>
      problems.add({ file: clusterFile, node: hostname, field: `${label}.${field}`, message });
    let ok = true;
    if (!hostname) {
      bad('hostname', 'is required');
      ok = false;
    } else if (!HOSTNAME.test(hostname)) {
      bad('hostname', `"${hostname}" is not a host name`);
      ok = false;
    }
    const hostip = str(raw.hostip);
    if (!hostip) {
      bad('hostip', 'is required');
      ok = false;
    } else if (isIP(hostip) === 0) {
      bad('hostip', `"${hostip}" is not an IP address`);
      ok = false;
    }
    const role = str(raw['k8s-role']);
    if (!role) {
      bad('k8s-role', `is required (${K8S_ROLES.join(', ')})`);
      ok = false;
    } else if (!(K8S_ROLES as readonly string[]).includes(role)) {
      bad('k8s-role', `unknown role "${role}"; expected ${K8S_ROLES.join(', ')}`);
      ok = false;
    }
    const machineType = str(raw['machine-type']);
    if (machineType && Object.keys(skus).length && !Object.hasOwn(skus, machineType))
      bad('machine-type', `"${machineType}" is not defined in machine-sku (${Object.keys(skus).join(', ')})`);
    const dashRaw = raw.dashboard;
    let dashboard = false;
    if (dashRaw !== undefined) {
      const d = str(dashRaw)?.toLowerCase();
      if (d === 'true') dashboard = true;
      else if (d !== 'false') bad('dashboard', `must be "true" or "false", got ${JSON.stringify(dashRaw)}`);
    }
    const etcdid = raw.etcdid === undefined ? undefined : str(raw.etcdid);
    if (raw.etcdid !== undefined && !etcdid) bad('etcdid', 'must be a non-empty string');
    if (role === 'master' && raw.etcdid === undefined)
      bad('etcdid', 'is required on a master: every master runs an etcd member');
    if (etcdid && role !== 'master' && role !== undefined)
      warnings.push(`${label}: etcdid ${etcdid} is ignored on a ${role}; etcd runs on masters only`);
    if (!ok) return;
    const node: OpenPaiNode = {
      index: i,
      hostname: hostname!,
      hostip: hostip!,
      machineType,
      etcdid: role === 'master' ? etcdid : undefined,
      k8sRole: role as K8sRole,
      dashboard,
      extra: Object.fromEntries(
        Object.entries(raw)
          .filter(
            ([k]) => !['hostname', 'hostip', 'machine-type', 'etcdid', 'k8s-role', 'dashboard'].includes(k),
          )
          .map(([k, v]) => [k, str(v)] as const)
          .filter(
            (e): e is [string, string] => e[1] !== undefined && !/^(password|username|sshport)$/.test(e[0]),
          ),
      ),
    };
    const dupHost = byHost.get(hostname!.toLowerCase());
    if (dupHost) bad('hostname', `duplicate hostname "${hostname}": also machine-list[${dupHost.index}]`);
    else byHost.set(hostname!.toLowerCase(), node);
    const dupIp = byIp.get(hostip!);
    if (dupIp)
      bad('hostip', `duplicate hostip ${hostip}: also machine-list[${dupIp.index}] (${dupIp.hostname})`);
    else byIp.set(hostip!, node);
    if (node.etcdid) {
      const dupE = byEtcd.get(node.etcdid);
      if (dupE)
        bad(
          'etcdid',
          `duplicate etcdid "${node.etcdid}": also machine-list[${dupE.index}] (${dupE.hostname})`,
        );
      else byEtcd.set(node.etcdid, node);
    }
    nodes.push(node);
  });
  problems.throwIfAny();

  const masters = nodes.filter((n) => n.k8sRole === 'master');
  const workers = nodes.filter((n) => n.k8sRole === 'worker');
  const proxies = nodes.filter((n) => n.k8sRole === 'proxy');
  const dashboards = nodes.filter((n) => n.dashboard);
  if (masters.length === 0)
    problems.add({
      file: clusterFile,
      field: 'machine-list',
      message: 'no node has k8s-role: master; etcd and the API server need at least one',
    });
  else {
    // Like a topology with an even etcd count: a warning, not a refusal (docs/seeds.md).
    const w = etcdMemberCountWarning(masters.length);
    if (w)
      warnings.push(
        `${clusterFile}: machine-list: ${masters.length} masters (${masters.map((m) => m.hostname).join(', ')}) run etcd: ${w}`,
      );
  }
  for (const extra of proxies.slice(1))
    problems.add({
      file: clusterFile,
      node: extra.hostname,
      field: `machine-list[${extra.index}] (${extra.hostname}).k8s-role`,
      message: `a second proxy node (first: ${proxies[0]!.hostname}); OpenPAI's solution 2 has exactly one proxy`,
    });
  for (const extra of dashboards.slice(1))
    problems.add({
      file: clusterFile,
      node: extra.hostname,
      field: `machine-list[${extra.index}] (${extra.hostname}).dashboard`,
      message: `only one node may run the dashboard (already ${dashboards[0]!.hostname})`,
    });

  const kube = isObj(k8s?.kubernetes) ? (k8s!.kubernetes as Obj) : {};
  const kfield = (f: string) => `kubernetes.${f}`;
  const lb = str(kube['load-balance-ip']);
  if (lb !== undefined && isIP(lb) === 0 && !HOSTNAME.test(lb))
    problems.add({
      file: k8sFile,
      field: kfield('load-balance-ip'),
      message: `"${lb}" is not an IP address or host name`,
    });
  const range = str(kube['service-cluster-ip-range']);
  if (range !== undefined && !cidrOk(range))
    problems.add({
      file: k8sFile,
      field: kfield('service-cluster-ip-range'),
      message: `"${range}" is not a CIDR such as 10.254.0.0/16`,
    });
  const dns = str(kube['cluster-dns']);
  if (dns !== undefined && isIP(dns) === 0)
    problems.add({ file: k8sFile, field: kfield('cluster-dns'), message: `"${dns}" is not an IP address` });

  let haSolution: HaSolution = 3;
  let apiEndpoint: OpenPaiCluster['apiEndpoint'] = { mode: 'direct' };
  const proxy = proxies[0];
  if (proxy) {
    haSolution = 2;
    if (lb !== undefined && lb !== proxy.hostip)
      problems.add({
        file: k8sFile,
        field: kfield('load-balance-ip'),
        message: `is ${lb} but the proxy node ${proxy.hostname} is ${proxy.hostip}; with a proxy node (solution 2) it must be the proxy's hostip`,
      });
    apiEndpoint = { mode: 'haproxy', address: proxy.hostip };
  } else if (masters.length > 1) {
    haSolution = 1;
    if (lb === undefined)
      problems.add({
        file: k8sFile,
        field: kfield('load-balance-ip'),
        message: `is required: ${masters.length} masters and no proxy node means an external load balancer (solution 1); set its address, or add a node with k8s-role: proxy (solution 2)`,
      });
    else {
      const own = masters.find((m) => m.hostip === lb);
      if (own)
        problems.add({
          file: k8sFile,
          field: kfield('load-balance-ip'),
          message: `is master ${own.hostname}'s own address; with ${masters.length} masters it must be a load balancer in front of them (solution 1) or a proxy node (solution 2)`,
        });
    }
    apiEndpoint = { mode: 'external', address: lb };
  } else if (masters.length === 1 && lb !== undefined && lb !== masters[0]!.hostip) {
    haSolution = 1;
    apiEndpoint = { mode: 'external', address: lb };
    warnings.push(
      `one master (${masters[0]!.hostname}) behind the external load balancer ${lb}: the API is not highly available`,
    );
  }
  problems.throwIfAny();

  const ver = str(kube['apiserver-version']) ?? str(kube['hyperkube-version']);
  const clusterId = isObj(cluster!.cluster) ? str((cluster!.cluster as Obj).clusterid) : undefined;
  return {
    clusterId,
    nodes,
    masters,
    workers,
    proxy,
    dashboardNode: dashboards[0],
    loadBalanceIp: lb,
    clusterDns: dns,
    serviceClusterIpRange: range,
    kubernetesVersion: ver && /^v?\d+\.\d+(\.\d+)?([-+].*)?$/.test(ver) ? ver : undefined,
    haSolution,
    apiEndpoint,
    machineSkus: skus,
    warnings,
  };
}
