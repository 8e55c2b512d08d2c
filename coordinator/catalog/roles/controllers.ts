import { DEFAULT_RESTART, probe } from '../common.js';
import { kubeconfigFile, kubeconfigPath } from '../kubeconfig.js';
import { arg, CERTS, certPath, configDir } from '../paths.js';
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

function kubeconfigArgs(ctx: RenderContext): string[] {
  const kc = arg(kubeconfigPath(ctx));
  return [`--kubeconfig=${kc}`, `--authentication-kubeconfig=${kc}`, `--authorization-kubeconfig=${kc}`];
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
  probe: (ctx) =>
    probe({ kind: 'https', host: ctx.node.address, port: SCHEDULER_PORT, path: '/healthz', insecure: true }),
  render: (ctx) => ({
    args: [
      `--v=${ctx.topology.cluster.logLevel}`,
      ...kubeconfigArgs(ctx),
      `--bind-address=${ctx.node.address}`,
      `--secure-port=${SCHEDULER_PORT}`,
      ...LEADER_ELECTION,
    ],
    files: [kubeconfigFile(ctx)],
  }),
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
  probe: (ctx) =>
    probe({
      kind: 'https',
      host: ctx.node.address,
      port: CONTROLLER_MANAGER_PORT,
      path: '/healthz',
      insecure: true,
    }),
  render: (ctx) => {
    const t = ctx.topology;
    const cert = (f: string) => arg(certPath(t, f));
    return {
      args: [
        `--v=${t.cluster.logLevel}`,
        ...kubeconfigArgs(ctx),
        `--bind-address=${ctx.node.address}`,
        `--secure-port=${CONTROLLER_MANAGER_PORT}`,
        ...LEADER_ELECTION,
        `--service-account-private-key-file=${cert(CERTS.serviceAccountKey)}`,
        `--root-ca-file=${cert(CERTS.ca)}`,
        `--cluster-signing-cert-file=${cert(CERTS.ca)}`,
        `--cluster-signing-key-file=${cert(CERTS.caKey)}`,
        '--use-service-account-credentials=true',
        `--cert-dir=${arg(t.cluster.certDir)}`,
        `--cluster-name=${t.cluster.name}`,
        `--service-cluster-ip-range=${t.cluster.serviceCIDR}`,
      ],
      files: [kubeconfigFile(ctx)],
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
    return {
      args: [
        `--v=${ctx.topology.cluster.logLevel}`,
        `--kubeconfig=${arg(kubeconfigPath(ctx))}`,
        `--controllerconfig=${arg(cfg)}`,
      ],
      files: [
        kubeconfigFile(ctx),
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
