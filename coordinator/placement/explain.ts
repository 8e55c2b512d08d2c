/**
 * Human-readable reasons for instances placement could not put anywhere, in the form the issue
 * asks for, one per instance and never contradicting itself: `kube-apiserver#3: no node matches
 * pool=control-plane with cpu-cores>=2`, or `4 nodes match pool=control-plane, but cp-1, cp-2 and cp-3
 * already run kube-apiserver (one per node); cp-4 is cordoned`.
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

/**
 * What a rejected node (or several: `plural`) does that keeps the instance off, as a verb phrase:
 * `is cordoned`, `already run kube-apiserver (one per node)`, `has port 8080 in use by api#0`.
 */
export function rejectionPhrase(r: Rejection, plural = false): string {
  const be = plural ? 'are' : 'is';
  const have = plural ? 'have' : 'has';
  switch (r.kind) {
    case 'state':
      return `${be} ${r.state}`;
    case 'cordoned':
      return `${be} cordoned`;
    case 'unapproved':
      return `${be} not approved`;
    case 'evicted':
      return `${be} being evicted`;
    case 'spread':
      return `already ${plural ? 'run' : 'runs'} ${r.role} (one per node)`;
    case 'port':
      return `${have} port ${r.port} in use${plural ? '' : ` by ${r.by}`}`;
    case 'label':
      return `${have} no ${r.label} label (spread across ${r.label})`;
  }
}

/** The phrase for one node: kept for callers that want `cordoned`, `Unreachable`… after "is". */
export function rejectionText(r: Rejection): string {
  return rejectionPhrase(r).replace(/^is /, '');
}

function listNodes(ids: string[]): string {
  const shown = ids.length <= 3 ? ids : [...ids.slice(0, 3), `${ids.length - 3} more`];
  return joinAnd(shown);
}

/** `a`, `a and b`, `a, b and c` */
function joinAnd(items: string[]): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

/**
 * Groups the rejected nodes by reason, one clause each:
 * `cp-1, cp-2 and cp-3 already run etcd (one per node); cp-4 is Unreachable`.
 */
export function summarizeRejections(rejected: Array<{ node: NodeRecord; why: Rejection }>): string {
  const groups = new Map<string, { why: Rejection; ids: string[]; by: Set<string> }>();
  for (const { node, why } of rejected) {
    const k = why.kind === 'port' ? `port:${why.port}` : rejectionPhrase(why);
    const g = groups.get(k) ?? { why, ids: [], by: new Set<string>() };
    if (g.ids.length === 0) groups.set(k, g);
    g.ids.push(node.id);
    if (why.kind === 'port') g.by.add(why.by);
  }
  return [...groups.values()]
    .map(({ why, ids, by }) => {
      const plural = ids.length > 1;
      const phrase = rejectionPhrase(why, plural);
      return `${listNodes(ids)} ${phrase}${why.kind === 'port' && plural ? ` (by ${listNodes([...by].sort())})` : ''}`;
    })
    .join('; ');
}

/**
 * One clear reason for an instance no node can take: either nothing matches the requirements, or
 * `N nodes match …, but` each of them is ruled out, grouped by why (never both at once).
 */
export function noNodeReason(
  instanceId: string,
  spec: RoleSpec,
  matching: number,
  rejected: Array<{ node: NodeRecord; why: Rejection }>,
): string {
  const req = describeRequirements(spec);
  if (matching === 0)
    return req ? `${instanceId}: no node matches ${req}` : `${instanceId}: no approved node in the cluster`;
  const why = summarizeRejections(rejected);
  if (!req)
    return `${instanceId}: ${matching === 1 ? 'the only node cannot' : `none of the ${matching} nodes can`} take it: ${why}`;
  const nodes = `${matching} node${matching === 1 ? '' : 's'}`;
  return `${instanceId}: ${nodes} match${matching === 1 ? 'es' : ''} ${req}, but ${why}`;
}

/**
 * The reasons of unplaced instances for a role's view, de-duplicated: instances with the same
 * reason share one line (`web#3 and web#4 unschedulable: 4 nodes match …, but …`).
 */
export function unplacedReasons(list: ReadonlyArray<{ instanceId: string; reason: string }>): string[] {
  const groups = new Map<string, string[]>();
  for (const u of list) {
    const prefix = `${u.instanceId}: `;
    const why = u.reason.startsWith(prefix) ? u.reason.slice(prefix.length) : u.reason;
    const ids = groups.get(why) ?? [];
    if (ids.length === 0) groups.set(why, ids);
    ids.push(u.instanceId);
  }
  return [...groups].map(([why, ids]) => `${listNodes(ids)} unschedulable: ${why}`);
}
