import { CLUSTER_LABEL } from '../coordinator/labels.js';
import { labError } from './errors.js';

/**
 * The lab's fleet, shaped for examples/ha.yaml (seed 003's HA control plane): nodes are picked by
 * their `pool` label. One load-balancer node, up to four control-plane nodes (three run the
 * control plane, the fourth is the spare that repair moves roles to), and the rest are workers.
 */
export type Pool = 'lb' | 'control-plane' | 'worker';

export interface NodeLayout {
  name: string;
  pool: Pool;
  /** 1-based index: address `<subnet>.<index + 1>` (the first host address is the gateway / .1) */
  index: number;
  address: string;
  labels: Record<string, string>;
  /** joins with a token that requires approval: stays Pending until `drover approve` */
  pending?: boolean;
}

export const MIN_NODES = 4;
export const MAX_NODES = 60;
export const DEFAULT_NODES = 7;

/** How many nodes of each pool `n` nodes give: 1 lb, min(4, n - 1) control-plane, the rest workers. */
export function poolSizes(n: number): Record<Pool, number> {
  const cp = Math.min(4, n - 1);
  return { lb: 1, 'control-plane': cp, worker: n - 1 - cp };
}

/** The label that puts a node in a cluster (coordinator/labels.ts); the lab sets it on every host at join. */
export { CLUSTER_LABEL };

export interface LayoutOptions {
  /**
   * The clusters the topology file defines (metadata.name of each document). Every host gets
   * `drover.dev/cluster=<name>`: with one cluster all of them; with several the hosts are
   * `<cluster>-1`, `<cluster>-2`… (label `pool=worker`), split as evenly as `n` allows.
   */
  clusters?: readonly string[];
  /** extra hosts `pending-1`… (pool=worker, the first cluster) that join with a token requiring approval */
  pending?: number;
}

/** `subnet` is the first three octets, e.g. `127.0.0` or `10.77.0`. */
export function fleetLayout(n: number, subnet: string, opts: LayoutOptions = {}): NodeLayout[] {
  const clusters = opts.clusters?.length ? opts.clusters : undefined;
  const multi = !!clusters && clusters.length > 1;
  const min = multi ? clusters.length : MIN_NODES;
  const pending = opts.pending ?? 0;
  if (!Number.isInteger(n) || n < min || n > MAX_NODES)
    throw labError(
      'DROVER_ERR_LAB_USAGE',
      multi
        ? `--nodes must be a whole number from ${min} to ${MAX_NODES} (at least one host for each of the topology's ${clusters.length} clusters); got ${JSON.stringify(n)}`
        : `--nodes must be a whole number from ${MIN_NODES} to ${MAX_NODES} (1 load balancer, 3 control-plane nodes, then a spare and workers); got ${JSON.stringify(n)}`,
    );
  if (!Number.isInteger(pending) || pending < 0 || n + pending > MAX_NODES)
    throw labError(
      'DROVER_ERR_LAB_USAGE',
      `--pending must be a whole number from 0 to ${MAX_NODES - n} (at most ${MAX_NODES} hosts in all); got ${JSON.stringify(pending)}`,
    );
  const out: NodeLayout[] = [];
  let index = 1;
  const add = (pool: Pool, prefix: string, count: number, cluster: string | undefined) => {
    for (let i = 1; i <= count; i++) {
      const name = `${prefix}-${i}`;
      const labels: Record<string, string> = { pool };
      if (cluster) labels[CLUSTER_LABEL] = cluster;
      out.push({ name, pool, index, address: `${subnet}.${index + 1}`, labels });
      index++;
    }
  };
  if (multi)
    clusters.forEach((c, j) => {
      add('worker', c, Math.floor(n / clusters.length) + (j < n % clusters.length ? 1 : 0), c);
    });
  else {
    const sizes = poolSizes(n);
    const c = clusters?.[0];
    add('lb', 'lb', sizes.lb, c);
    add('control-plane', 'cp', sizes['control-plane'], c);
    add('worker', 'worker', sizes.worker, c);
  }
  const first = out.length;
  add('worker', 'pending', pending, clusters?.[0]);
  for (const x of out.slice(first)) x.pending = true;
  return out;
}

/** `127.0.0` style: three dotted octets. */
export function checkSubnet(subnet: string, netns: boolean): string {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(subnet);
  if (!m || m.slice(1).some((o) => Number(o) > 255))
    throw labError(
      'DROVER_ERR_LAB_USAGE',
      `--subnet takes three octets such as ${netns ? '10.77.0' : '127.0.0'}; got ${JSON.stringify(subnet)}`,
    );
  const loop = m[1] === '127';
  if (netns && loop)
    throw labError(
      'DROVER_ERR_LAB_USAGE',
      `--netns needs a private subnet for its bridge (e.g. 10.77.0), not loopback ${subnet}`,
    );
  if (!netns && !loop)
    throw labError(
      'DROVER_ERR_LAB_USAGE',
      `without --netns the lab uses loopback addresses: --subnet must start with 127 (got ${subnet})`,
    );
  return subnet;
}
