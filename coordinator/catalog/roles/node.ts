import { atLeast, DEFAULT_RESTART, probe } from '../common.js';
import { kubeconfigFile } from '../kubeconfig.js';
import { clientKubeconfigs, KUBECONFIG_NAMES } from '../partitions.js';
import { arg, CERTS, certPath, configDir, hostPort } from '../paths.js';
import type { RenderContext, RoleDefinition, RoleSimulator } from '../types.js';
import { kubeconfigFlag } from './controllers.js';
import { KWOK_STAGES } from './kwok-stages.js';

export const KUBELET_PORT = 10250;
export const KUBELET_HEALTHZ_PORT = 10248;
export const KUBE_PROXY_HEALTHZ_PORT = 10256;
export const KUBE_PROXY_METRICS_PORT = 10249;
export const DEFAULT_CRI_ENDPOINT = 'unix:///run/containerd/containerd.sock';

const KWOK_CERT = 'kwok-node';

/** The annotation kwok's own tooling puts on the nodes it fakes; Drover adds drover.dev/simulated. */
export const KWOK_NODE_ANNOTATION = 'kwok.x-k8s.io/node';

/** The Node object a kwok-managed worker registers (a real kubelet registers itself). */
export function kwokNodeManifest(ctx: RenderContext): string {
  const n = ctx.node;
  const cores = Math.max(1, n.facts.cpu.cores);
  const memKi = Math.max(1, Math.floor(n.facts.memory.totalBytes / 1024));
  const node = {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: n.hostname,
      labels: {
        'kubernetes.io/hostname': n.hostname,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': n.facts.os.arch === 'x64' ? 'amd64' : n.facts.os.arch,
        type: 'kwok',
      },
      annotations: { [KWOK_NODE_ANNOTATION]: 'fake', 'drover.dev/simulated': 'kwok' },
    },
    spec: {},
    status: {
      capacity: { cpu: String(cores), memory: `${memKi}Ki`, pods: '110' },
      allocatable: { cpu: String(cores), memory: `${memKi}Ki`, pods: '110' },
      addresses: [
        { type: 'InternalIP', address: n.address },
        { type: 'Hostname', address: n.hostname },
      ],
    },
  };
  return `${JSON.stringify(node, null, 2)}\n`;
}

/**
 * Registers the Node (kubectl apply, retried while the API server comes up: at most ~2 min,
 * then the instance fails and the agent's restart policy takes over), then execs kwok, which keeps
 * the Node Ready, renews its Lease and runs the pods bound to it: simulated, with no containers.
 */
const KWOK_WRAPPER =
  'k=$1; cfg=$2; node=$3; shift 3; i=0; ' +
  'until "$k" --kubeconfig="$cfg" --request-timeout=10s apply -f "$node" >&2; do ' +
  'i=$((i+1)); [ "$i" -lt 60 ] || exit 1; sleep 2; done; exec "$@"';

export const KWOK_SIMULATOR: RoleSimulator = {
  name: 'kwok',
  certificates: [['kwok-node', KWOK_CERT]],
  binaries: ['kwok', 'kubectl'],
  ports: () => [KUBELET_HEALTHZ_PORT],
  // kwok's own server: /healthz answers once its controllers run
  probe: (ctx) =>
    probe(
      { kind: 'http', host: ctx.node.address, port: KUBELET_HEALTHZ_PORT, path: '/healthz' },
      { failureThreshold: 5 },
    ),
  render: (ctx, paths) => {
    const c = ctx.topology.cluster;
    const kc = kubeconfigFile(ctx, { path: `${configDir(ctx.assignment)}/kwok.kubeconfig`, cert: KWOK_CERT });
    const kubeconfig = kc.path;
    const manifest = `${configDir(ctx.assignment)}/node.json`;
    const stages = `${configDir(ctx.assignment)}/kwok-stages.yaml`;
    return {
      command: 'sh',
      args: [
        '-ec',
        KWOK_WRAPPER,
        'drover-kwok-node',
        paths.kubectl!,
        arg(kubeconfig),
        arg(manifest),
        paths.kwok!,
        `--kubeconfig=${arg(kubeconfig)}`,
        `--config=${arg(stages)}`,
        '--node-lease-duration-seconds=40',
        `--manage-single-node=${ctx.node.hostname}`,
        `--server-address=${hostPort(ctx.node.address, KUBELET_HEALTHZ_PORT)}`,
        `--node-ip=${ctx.node.address}`,
        `--node-name=${ctx.node.hostname}`,
        // pod IPs: the cluster's pod CIDR, else a /24 per worker so two nodes never hand out one IP
        `--cidr=${c.podCIDR ?? `10.244.${ctx.assignment.ordinal % 256}.0/24`}`,
      ],
      files: [
        kc,
        { path: manifest, mode: 0o644, content: kwokNodeManifest(ctx) },
        { path: stages, mode: 0o644, content: KWOK_STAGES },
      ],
    };
  },
};

export const kubelet: RoleDefinition = {
  name: 'kubelet',
  description:
    "Kubernetes node agent with seed 003's runtime flags, cluster DNS and domain, kubeconfig on the API endpoint",
  binary: 'kubelet',
  kubernetes: true,
  stateful: false,
  defaultSpread: { perNode: true },
  restart: { ...DEFAULT_RESTART },
  needs: ['kube-apiserver'],
  ports: () => [KUBELET_PORT, KUBELET_HEALTHZ_PORT],
  reads: [],
  usesApiEndpoint: true,
  probe: (ctx) =>
    probe({ kind: 'http', host: ctx.node.address, port: KUBELET_HEALTHZ_PORT, path: '/healthz' }),
  render: (ctx) => {
    const c = ctx.topology.cluster;
    const addr = ctx.node.address;
    // dockershim went away in 1.24: from then on the kubelet talks to a CRI socket.
    const runtime = atLeast(c.kubernetesVersion, 1, 24)
      ? [`--container-runtime-endpoint=${c.containerRuntimeEndpoint ?? DEFAULT_CRI_ENDPOINT}`]
      : ['--container-runtime=docker'];
    const kubeconfigs = clientKubeconfigs(ctx, KUBECONFIG_NAMES.kubelet!);
    return {
      args: [
        `--v=${c.logLevel}`,
        kubeconfigFlag(kubeconfigs),
        `--client-ca-file=${arg(certPath(ctx.topology, ctx.assignment, CERTS.ca))}`,
        `--tls-cert-file=${arg(certPath(ctx.topology, ctx.assignment, CERTS.kubeletServing))}`,
        `--tls-private-key-file=${arg(certPath(ctx.topology, ctx.assignment, CERTS.kubeletServingKey))}`,
        `--hostname-override=${ctx.node.hostname}`,
        `--node-ip=${addr}`,
        `--address=${addr}`,
        `--port=${KUBELET_PORT}`,
        `--healthz-bind-address=${addr}`,
        `--healthz-port=${KUBELET_HEALTHZ_PORT}`,
        `--root-dir=${arg('/var/lib/kubelet')}`,
        `--pod-manifest-path=${arg('/var/run/kubernetes/static-pods')}`,
        `--cluster-dns=${c.clusterDNS}`,
        `--cluster-domain=${c.clusterDomain}`,
        ...runtime,
        '--runtime-request-timeout=2m',
        '--fail-swap-on=false',
        '--feature-gates=AllAlpha=false',
        '--cpu-cfs-quota=true',
        '--enable-controller-attach-detach=true',
        '--cgroups-per-qos=true',
        '--cgroup-driver=cgroupfs',
        '--authorization-mode=Webhook',
        '--authentication-token-webhook=true',
      ],
      files: kubeconfigs,
      dataPaths: ['/var/lib/kubelet'],
      // seed 003: KillMode=process, so containers outlive a kubelet restart
      unit: { extraService: { KillMode: 'process' } },
    };
  },
  simulator: KWOK_SIMULATOR,
};

export const kubeProxy: RoleDefinition = {
  name: 'kube-proxy',
  description: 'Kubernetes service proxy, kubeconfig on the API endpoint',
  binary: 'kube-proxy',
  kubernetes: true,
  stateful: false,
  defaultSpread: { perNode: true },
  restart: { ...DEFAULT_RESTART },
  needs: ['kube-apiserver'],
  ports: () => [KUBE_PROXY_HEALTHZ_PORT, KUBE_PROXY_METRICS_PORT],
  reads: [],
  usesApiEndpoint: true,
  probe: (ctx) =>
    probe({ kind: 'http', host: ctx.node.address, port: KUBE_PROXY_HEALTHZ_PORT, path: '/healthz' }),
  render: (ctx) => {
    const c = ctx.topology.cluster;
    const addr = ctx.node.address;
    const kubeconfigs = clientKubeconfigs(ctx, KUBECONFIG_NAMES['kube-proxy']!);
    const args = [
      `--v=${c.logLevel}`,
      kubeconfigFlag(kubeconfigs),
      `--hostname-override=${ctx.node.hostname}`,
      `--bind-address=${addr}`,
      `--healthz-bind-address=${hostPort(addr, KUBE_PROXY_HEALTHZ_PORT)}`,
      `--metrics-bind-address=${hostPort(addr, KUBE_PROXY_METRICS_PORT)}`,
    ];
    if (c.podCIDR) args.push(`--cluster-cidr=${c.podCIDR}`);
    // nftables is GA from 1.33 and needs only nft, not the iptables tools; a topology that wants
    // iptables says `extraArgs: [--proxy-mode=iptables]` (the last flag wins)
    if (atLeast(c.kubernetesVersion, 1, 33)) args.push('--proxy-mode=nftables');
    return { args, files: kubeconfigs };
  },
};
