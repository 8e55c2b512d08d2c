/**
 * Human-readable reasons for instances placement could not put anywhere, in the form the issue
 * asks for: `kube-apiserver#3: no Ready node matches pool=control-plane with cpu-cores>=2`.
 */
import type { NodeRecord } from '../model.js';
import { describeSelector, formatBytes, type RoleSpec } from '../topology/index.js';

export function describeResources(spec: RoleSpec): string {
  const parts: string[] = [];
  if (spec.resources.cpuCores !== undefined) parts.push(`cpu-cores>=${spec.resources.cpuCores}`);
  if (spec.resources.memoryBytes !== undefined)
    parts.push(`memory>=${formatBytes(spec.resources.memoryBytes)}`);
  return parts.join(', ');
}

/** `pool=control-plane with cpu-cores>=2`, `cpu-cores>=2`, or '' when anything goes. */
export function describeRequirements(spec: RoleSpec): string {
  const sel = describeSelector(spec.nodeSelector);
  const res = describeResources(spec);
  return sel && res ? `${sel} with ${res}` : sel || res;
}

/** Why one statically matching node cannot take a new instance (short, for grouping). */
export type Rejection =
  | { kind: 'state'; state: string }
  | { kind: 'cordoned' }
  | { kind: 'unapproved' }
  | { kind: 'evicted' }
  | { kind: 'spread'; role: string }
  | { kind: 'port'; port: number; by: string }
  | { kind: 'label'; label: string };

export function rejectionText(r: Rejection): string {
  switch (r.kind) {
    case 'state':
      return `${r.state}`;
    case 'cordoned':
      return 'cordoned';
    case 'unapproved':
      return 'not approved';
    case 'evicted':
      return 'being evicted';
    case 'spread':
      return `already run ${r.role} (one per node)`;
    case 'port':
      return `port ${r.port} taken by ${r.by}`;
    case 'label':
      return `no ${r.label} label (spread across ${r.label})`;
  }
}

function listNodes(ids: string[]): string {
  return ids.length <= 3 ? ids.join(', ') : `${ids.slice(0, 3).join(', ')} and ${ids.length - 3} more`;
}

/** Groups the rejected nodes by reason: `cp-1, cp-2 already run etcd (one per node); cp-4 Unreachable`. */
export function summarizeRejections(rejected: Array<{ node: NodeRecord; why: Rejection }>): string {
  const groups = new Map<string, string[]>();
  for (const { node, why } of rejected) {
    const k = rejectionText(why);
    const list = groups.get(k) ?? [];
    if (list.length === 0) groups.set(k, list);
    list.push(node.id);
  }
  return [...groups].map(([why, ids]) => `${listNodes(ids)}: ${why}`).join('; ');
}

export function noNodeReason(
  instanceId: string,
  spec: RoleSpec,
  matching: number,
  rejected: Array<{ node: NodeRecord; why: Rejection }>,
): string {
  const req = describeRequirements(spec);
  const head = req ? `${instanceId}: no Ready node matches ${req}` : `${instanceId}: no Ready node available`;
  if (matching === 0) return head;
  return `${head} (${matching} matching node${matching === 1 ? '' : 's'}; ${summarizeRejections(rejected)})`;
}
