import { CLUSTER_LABEL } from '../labels.js';
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
}

export const MIN_NODES = 4;
export const MAX_NODES = 60;
export const DEFAULT_NODES = 7;

/** How many nodes of each pool `n` nodes give: 1 lb, min(4, n - 1) control-plane, the rest workers. */
export function poolSizes(n: number): Record<Pool, number> {
  const cp = Math.min(4, n - 1);
  return { lb: 1, 'control-plane': cp, worker: n - 1 - cp };
}

/** `subnet` is the first three octets, e.g. `127.0.0` or `10.77.0`. */
/**
 * With `cluster`, every host is labelled `drover.dev/cluster: <cluster>`: a node joins a cluster
 * only explicitly, and the lab's hosts belong to the topology it applies.
 */
export function fleetLayout(n: number, subnet: string, cluster?: string): NodeLayout[] {
  if (!Number.isInteger(n) || n < MIN_NODES || n > MAX_NODES)
    throw labError(
      'DROVER_ERR_LAB_USAGE',
      `--nodes must be a whole number from ${MIN_NODES} to ${MAX_NODES} (1 load balancer, 3 control-plane nodes, then a spare and workers); got ${JSON.stringify(n)}`,
    );
  const sizes = poolSizes(n);
  const out: NodeLayout[] = [];
  let index = 1;
  const add = (pool: Pool, prefix: string, count: number) => {
    for (let i = 1; i <= count; i++) {
      const name = `${prefix}-${i}`;
      out.push({
        name,
        pool,
        index,
        address: `${subnet}.${index + 1}`,
        labels: { pool, ...(cluster ? { [CLUSTER_LABEL]: cluster } : {}) },
      });
      index++;
    }
  };
  add('lb', 'lb', sizes.lb);
  add('control-plane', 'cp', sizes['control-plane']);
  add('worker', 'worker', sizes.worker);
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
