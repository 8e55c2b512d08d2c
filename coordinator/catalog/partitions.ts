/**
 * Arktos data partitions in plans (seeds 000/001). `cluster.partitions` splits the kube-apiserver
 * instances into service groups in declaration order: with partitions of 1 and 2 replicas,
 * `kube-apiserver#0` serves the first, `#1` and `#2` the second. Each API server runs with its
 * group's `APISERVER_SERVICEGROUPID` and gets its group's DataPartitionConfig manifest, and every
 * component that must reach all partitions gets one kubeconfig per group, passed the way Arktos'
 * scripts pass them: one `--kubeconfig` whose value lists the files separated by spaces
 * (`--kubeconfig "kubeconfig-1.config kubeconfig-2.config"`).
 *
 * A group's kubeconfig points at the group's first placed API server: clients must reach the
 * partition that owns a tenant, so the shared load balancer (which spreads over every group) is no
 * use to them. When that instance moves, the kubeconfigs follow on the next render.
 */
import type { PlanFile } from '../../protocol/index.js';
import {
  type Partition,
  partitionName,
  renderDataPartitionConfig,
  serviceGroupEnv,
} from '../arktos/index.js';
import type { Topology } from '../topology/index.js';
import { APISERVER_PORT } from './endpoint.js';
import { kubeconfigFile } from './kubeconfig.js';
import { configDir, hostPort } from './paths.js';
import type { Member, RenderContext } from './types.js';

/** The partition an API-server ordinal serves, in declaration order; undefined past the last. */
export function partitionForOrdinal(t: Topology, ordinal: number): Partition | undefined {
  let next = 0;
  for (const p of t.cluster.partitions ?? []) {
    next += p.replicas;
    if (ordinal < next) return p;
  }
  return undefined;
}

/** The API-server members serving each partition (placed ones only), in declaration order. */
export function partitionMembers(
  t: Topology,
  apiservers: Member[],
): Array<{ partition: Partition; members: Member[] }> {
  return (t.cluster.partitions ?? []).map((partition) => ({
    partition,
    members: apiservers.filter((m) => partitionForOrdinal(t, m.assignment.ordinal) === partition),
  }));
}

/** The URL clients of a partition use: its first placed API server, else the cluster API endpoint. */
export function partitionServers(ctx: RenderContext): Array<{ partition: Partition; url: string }> {
  return partitionMembers(ctx.topology, ctx.members('kube-apiserver')).map(({ partition, members }) => {
    const m = members[0];
    return { partition, url: m ? `https://${hostPort(m.node.address, APISERVER_PORT)}` : ctx.api.url };
  });
}

/** What a partitioned API server adds: its group's env and DataPartitionConfig manifest. */
export function apiserverPartition(
  ctx: RenderContext,
): { env: Record<string, string>; files: PlanFile[] } | undefined {
  const p = partitionForOrdinal(ctx.topology, ctx.assignment.ordinal);
  if (!p) return undefined;
  return {
    env: serviceGroupEnv(p),
    files: [
      {
        path: `${configDir(ctx.assignment)}/datapartition-${p.id}.yaml`,
        mode: 0o644,
        content: renderDataPartitionConfig(p),
      },
    ],
  };
}

/**
 * The kubeconfig files of an API client: one on the API endpoint when the cluster is not
 * partitioned, else one per partition named as seed 000 names them (`fileName(partition id)`).
 */
export function clientKubeconfigs(ctx: RenderContext, fileName: (id: string) => string): PlanFile[] {
  if (!ctx.topology.cluster.partitions) return [kubeconfigFile(ctx)];
  const dir = configDir(ctx.assignment);
  return partitionServers(ctx).map(({ partition, url }) =>
    kubeconfigFile(ctx, {
      path: `${dir}/${fileName(partition.id)}`,
      server: url,
      contextName: partitionName(partition),
    }),
  );
}

/** Seed 000's file names per component. */
export const KUBECONFIG_NAMES: Readonly<Record<string, (id: string) => string>> = Object.freeze({
  'kube-controller-manager': (id: string) => `kubeconfig-${id}.config`,
  'workload-controller-manager': (id: string) => `kubeconfig-${id}.config`,
  'kube-scheduler': (id: string) => `scheduler-${id}.kubeconfig`,
  kubelet: (id: string) => `kubelet-${id}.kubeconfig`,
  'kube-proxy': (id: string) => `kube-proxy-${id}.kubeconfig`,
});

/** Is `t` partitioned (Arktos)? Then API clients read the API servers' placement directly. */
export const isPartitioned = (t: Topology | undefined): boolean => !!t?.cluster.partitions?.length;
