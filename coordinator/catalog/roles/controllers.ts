import type { PlanFile } from '../../../protocol/index.js';
import { DEFAULT_RESTART, probe } from '../common.js';
import { kubeconfigFile, kubeconfigPath } from '../kubeconfig.js';
import { clientKubeconfigs, KUBECONFIG_NAMES } from '../partitions.js';
import { arg, CERTS, certPath, configDir, instanceCertDir } from '../paths.js';
import type { RenderContext, RoleDefinition } from '../types.js';

export const SCHEDULER_PORT = 10259;
export const CONTROLLER_MANAGER_PORT = 10257;
export const DASHBOARD_PORT = 9090;

/** Seed 003: leadership moves within 20-25 s of losing the leader. */
export const LEADER_ELECTION = [
  '--leader-elect=true',
  '--leader-elect-lease-duration=20s',
  '--leader-elect-renew-deadline=15s',
  '--leader-elect-retry-period=4s',
];

/**
 * `--kubeconfig` (one file, or Arktos' space-separated list with one per partition) plus the
 * delegated-auth kubeconfigs, which take a single file: the first.
 */
function kubeconfigArgs(ctx: RenderContext): { args: string[]; files: PlanFile[] } {
  const files = clientKubeconfigs(ctx, KUBECONFIG_NAMES[ctx.role]!);
  const first = arg(files[0]!.path);
  return {
    files,
    args: [
      kubeconfigFlag(files),
      `--authentication-kubeconfig=${first}`,
      `--authorization-kubeconfig=${first}`,
    ],
  };
}

/** `--kubeconfig=<file>`, or `--kubeconfig=<file-1> <file-2> …` for a partitioned (Arktos) cluster. */
export function kubeconfigFlag(files: PlanFile[]): string {
  return `--kubeconfig=${files.map((f) => arg(f.path)).join(' ')}`;
}

/**
 * The secure port's serving cert, issued by the cluster CA (without it the component makes a
 * self-signed one, and the controller manager would even pick its client cert out of --cert-dir).
 */
function servingCertArgs(ctx: RenderContext, crt: string, key: string): string[] {
  const t = ctx.topology;
  return [
    `--tls-cert-file=${arg(certPath(t, ctx.assignment, crt))}`,
    `--tls-private-key-file=${arg(certPath(t, ctx.assignment, key))}`,
  ];
}

/** /healthz over TLS, verified against the cluster CA the instance's cert dir holds. */
export function servingProbe(ctx: RenderContext, port: number): ReturnType<typeof probe> {
  return probe({
    kind: 'https',
    host: ctx.node.address,
    port,
    path: '/healthz',
    caFile: arg(certPath(ctx.topology, ctx.assignment, CERTS.ca)),
  });
}

export const kubeScheduler: RoleDefinition = {
  name: 'kube-scheduler',
  description: 'Kubernetes scheduler with leader election (20s/15s/4s), kubeconfig on the API endpoint',
  binary: 'kube-scheduler',
  kubernetes: true,
  stateful: false,
  defaultSpread: { perNode: true },
  restart: { ...DEFAULT_RESTART },
  needs: ['kube-apiserver'],
  ports: () => [SCHEDULER_PORT],
  reads: [],
  usesApiEndpoint: true,
  probe: (ctx) => servingProbe(ctx, SCHEDULER_PORT),
  render: (ctx) => {
    const kc = kubeconfigArgs(ctx);
    return {
      args: [
        `--v=${ctx.topology.cluster.logLevel}`,
        ...kc.args,
        `--bind-address=${ctx.node.address}`,
        `--secure-port=${SCHEDULER_PORT}`,
        ...servingCertArgs(ctx, CERTS.schedulerServing, CERTS.schedulerServingKey),
        ...LEADER_ELECTION,
      ],
      files: kc.files,
    };
  },
};

export const kubeControllerManager: RoleDefinition = {
  name: 'kube-controller-manager',
  description:
    'Kubernetes controller manager with leader election (20s/15s/4s), kubeconfig on the API endpoint',
  binary: 'kube-controller-manager',
  kubernetes: true,
  stateful: false,
  defaultSpread: { perNode: true },
  restart: { ...DEFAULT_RESTART },
  needs: ['kube-apiserver'],
  ports: () => [CONTROLLER_MANAGER_PORT],
  reads: [],
  usesApiEndpoint: true,
  probe: (ctx) => servingProbe(ctx, CONTROLLER_MANAGER_PORT),
  render: (ctx) => {
    const t = ctx.topology;
    const cert = (f: string) => arg(certPath(t, ctx.assignment, f));
    const kc = kubeconfigArgs(ctx);
    return {
      args: [
        `--v=${t.cluster.logLevel}`,
        ...kc.args,
        `--bind-address=${ctx.node.address}`,
        `--secure-port=${CONTROLLER_MANAGER_PORT}`,
        ...servingCertArgs(ctx, CERTS.controllerManagerServing, CERTS.controllerManagerServingKey),
        ...LEADER_ELECTION,
        `--service-account-private-key-file=${cert(CERTS.serviceAccountKey)}`,
        `--root-ca-file=${cert(CERTS.ca)}`,
        // no --cluster-signing-*: the cluster CA key stays on the coordinator, which issues every
        // node certificate itself (kubelets included) through the CSR flow
        '--use-service-account-credentials=true',
        `--cert-dir=${arg(instanceCertDir(t, ctx.assignment))}`,
        `--cluster-name=${t.cluster.name}`,
        `--service-cluster-ip-range=${t.cluster.serviceCIDR}`,
      ],
      files: kc.files,
    };
  },
};

/** Arktos' workload controllers (seed 000/001) and how many workers each runs. */
export const WORKLOAD_CONTROLLERS = [
  { type: 'node', workers: 5 },
  { type: 'replicaset', workers: 10 },
  { type: 'deployment', workers: 5 },
];

export const workloadControllerManager: RoleDefinition = {
  name: 'workload-controller-manager',
  description: "Arktos' workload controller manager; several run in parallel, each with --controllerconfig",
  binary: 'workload-controller-manager',
  kubernetes: true,
  stateful: false,
  defaultSpread: { perNode: true },
  restart: { ...DEFAULT_RESTART },
  needs: ['kube-apiserver'],
  ports: () => [],
  reads: [],
  usesApiEndpoint: true,
  // It serves no health endpoint; the agent supervises the process itself.
  probe: () => undefined,
  render: (ctx) => {
    const cfg = `${configDir(ctx.assignment)}/controllerconfig.json`;
    const kubeconfigs = clientKubeconfigs(ctx, KUBECONFIG_NAMES[ctx.role]!);
    return {
      args: [
        `--v=${ctx.topology.cluster.logLevel}`,
        kubeconfigFlag(kubeconfigs),
        `--controllerconfig=${arg(cfg)}`,
      ],
      files: [
        ...kubeconfigs,
        {
          path: cfg,
          mode: 0o644,
          content: `${JSON.stringify({ controllers: WORKLOAD_CONTROLLERS }, null, 2)}\n`,
        },
      ],
    };
  },
};

export const dashboard: RoleDefinition = {
  name: 'dashboard',
  description: 'Kubernetes dashboard (OpenPAI layout: on the node marked dashboard), HTTP on 9090',
  binary: 'dashboard',
  kubernetes: true,
  stateful: false,
  defaultSpread: { perNode: true },
  restart: { ...DEFAULT_RESTART },
  needs: ['kube-apiserver'],
  ports: () => [DASHBOARD_PORT],
  reads: [],
  usesApiEndpoint: true,
  probe: (ctx) => probe({ kind: 'http', host: ctx.node.address, port: DASHBOARD_PORT, path: '/' }),
  render: (ctx) => ({
    args: [
      `--kubeconfig=${arg(kubeconfigPath(ctx))}`,
      `--insecure-bind-address=${ctx.node.address}`,
      `--insecure-port=${DASHBOARD_PORT}`,
    ],
    files: [kubeconfigFile(ctx)],
  }),
};
