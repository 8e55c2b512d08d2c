import type { Facts, NodeState } from '../../protocol/index.js';
import { vcError } from './errors.js';
import { parseCpuMilli, parseMemoryBytes } from './quantity.js';

export interface Capacity {
  cpuMilli: number;
  memoryBytes: number;
}

export interface CapacityOptions {
  /**
   * Held back on every node for the OS, the kubelet and Drover's own roles, like the kubelet's
   * `--system-reserved`/`--kube-reserved` plus its eviction threshold. Default `100m` CPU and
   * `256Mi` memory per node.
   */
  reserve?: { cpu?: string | number; memory?: string | number };
}

export const DEFAULT_NODE_RESERVE = Object.freeze({ cpu: '100m', memory: '256Mi' });

/**
 * A super cluster's allocatable capacity: the sum over its **Ready** kubelet nodes of
 * `allocatable = total - reserve` (never below zero), CPU from `facts.cpu.cores` and memory from
 * `facts.memory.totalBytes`. The caller passes the nodes that run a kubelet in that cluster;
 * Suspect, Unreachable, Cordoned, Draining, Pending and Removed nodes add nothing, so a node that
 * dies shrinks the capacity and `placeSlices` moves the slices that no longer fit.
 */
export function capacityFromNodes(
  nodes: ReadonlyArray<{ facts: Facts; state: NodeState }>,
  opts: CapacityOptions = {},
): Capacity {
  const reserveCpu = parseCpuMilli(opts.reserve?.cpu ?? DEFAULT_NODE_RESERVE.cpu, 'reserve.cpu');
  const reserveMem = parseMemoryBytes(opts.reserve?.memory ?? DEFAULT_NODE_RESERVE.memory, 'reserve.memory');
  let cpuMilli = 0;
  let memoryBytes = 0;
  nodes.forEach((n, i) => {
    if (n.state !== 'Ready') return;
    const cores = n.facts?.cpu?.cores;
    const mem = n.facts?.memory?.totalBytes;
    if (!Number.isFinite(cores) || !Number.isFinite(mem) || cores < 0 || mem < 0)
      throw vcError(
        'DROVER_ERR_VC_INPUT',
        `nodes[${i}] (${n.facts?.hostname ?? '?'}): facts lack cpu.cores or memory.totalBytes`,
      );
    cpuMilli += Math.max(0, cores * 1000 - reserveCpu);
    memoryBytes += Math.max(0, Math.floor(mem) - reserveMem);
  });
  return { cpuMilli, memoryBytes };
}
