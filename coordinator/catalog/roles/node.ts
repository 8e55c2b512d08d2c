import { atLeast, DEFAULT_RESTART, probe } from '../common.js';
import { clientKubeconfigs, KUBECONFIG_NAMES } from '../partitions.js';
import { arg, CERTS, certPath, hostPort } from '../paths.js';
import type { RoleDefinition } from '../types.js';
import { kubeconfigFlag } from './controllers.js';

export const KUBELET_PORT = 10250;
export const KUBELET_HEALTHZ_PORT = 10248;
export const KUBE_PROXY_HEALTHZ_PORT = 10256;
export const KUBE_PROXY_METRICS_PORT = 10249;
export const DEFAULT_CRI_ENDPOINT = 'unix:///run/containerd/containerd.sock';

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
    return { args, files: kubeconfigs };
  },
};
