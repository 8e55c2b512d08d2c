/**
 * The OpenPAI machine list against the fleet the coordinator knows: a `hostip` that is no
 * registered node's address usually means a typo or a host that has not joined yet. Pure; the
 * CLI asks the coordinator for the nodes when it can.
 */
import type { OpenPaiCluster } from './parse.js';

export function unknownHostIpsWarning(
  source: Pick<OpenPaiCluster, 'nodes'>,
  nodes: ReadonlyArray<{ id: string; address: string }>,
): string | undefined {
  if (nodes.length === 0) return undefined;
  const addresses = new Set(nodes.map((n) => n.address));
  const unknown = source.nodes.filter((n) => !addresses.has(n.hostip));
  if (unknown.length === 0) return undefined;
  const list = unknown.map((n) => `${n.hostip} (${n.hostname})`);
  return `${unknown.length} hostip${unknown.length === 1 ? '' : 's'} of the machine list match${unknown.length === 1 ? 'es' : ''} no node registered with the coordinator (${nodes.length} known): ${list.join(', ')}; pins go by hostname, so check the machine list against \`drover get nodes\` (a typo, or a host whose agent has not joined yet)`;
}
