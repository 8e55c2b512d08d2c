/**
 * Things a valid topology may say but probably should not: returned with the diff of an apply
 * (and printed by the CLI as `warning: …`), never a refusal. The OpenPAI import uses the same
 * words for the same facts. Pure.
 */
import { quorum as quorumOf } from '../etcd/quorum.js';
import type { Topology } from './types.js';

/**
 * An even etcd member count tolerates no more failures than one fewer member, and needs one more
 * vote for quorum: `4 etcd members tolerate 1 failure, like 3 (quorum is 3 of 4); use 3 or 5`.
 */
export function etcdMemberCountWarning(members: number): string | undefined {
  if (members < 2 || members % 2 !== 0) return undefined;
  const quorum = quorumOf(members);
  const tolerated = members - quorum;
  return `${members} etcd members tolerate ${tolerated} failure${tolerated === 1 ? '' : 's'}, like ${members - 1} (quorum is ${quorum} of ${members}); use ${members - 1} or ${members + 1}`;
}

export function topologyWarnings(t: Topology): string[] {
  const out: string[] = [];
  const etcd = t.roles.etcd;
  if (etcd && !etcd.everywhere && etcd.replicas !== undefined) {
    const w = etcdMemberCountWarning(etcd.replicas);
    if (w) out.push(`roles.etcd.replicas: ${w}`);
  }
  return out;
}
