/**
 * `drover repair etcd --member NAME`, decided purely: which member NAME is, what the request does
 * (remember it, announce it, queue the cluster's reconcile: effects, applied by the policy) and
 * what the next reconcile will make of it as things stand (replace the member, or refuse and
 * why: the same rule as the reconcile's etcd gate). A dry run (`--dry-run`, `?dryRun=true`) only
 * reads the decision and applies none of its effects.
 */
import type { Assignment } from '../model.js';
import type { RepairEffect } from './effects.js';
import { ETCD, etcdChangeRefusal } from './policy.js';

/** The etcd member NAME names: `etcd-<ordinal>`, `etcd#<ordinal>`, `<ordinal>` or its instance id. */
export function findEtcdMember(member: string, all: readonly Assignment[]): Assignment | undefined {
  const m = /^(?:etcd[-#])?(\d+)$/.exec(member);
  return all.find(
    (x) => x.role === ETCD && (x.instanceId === member || (m !== null && x.ordinal === Number(m[1]))),
  );
}

export interface EtcdMemberRepairInput {
  /** the member to replace (`findEtcdMember`) */
  member: Assignment;
  /** its cluster's assignments now */
  current: readonly Assignment[];
  /** an instance is healthy at its current epoch on a live node (policy.ts `instanceHealthy`) */
  healthy: (a: Assignment) => boolean;
}

/** What the next reconcile does with the request, judged now. */
export type EtcdMemberVerdict = { replace: true } | { replace: false; reason: string };

export interface EtcdMemberRepairDecision {
  cluster: string;
  instanceId: string;
  nodeId: string;
  verdict: EtcdMemberVerdict;
  /** what the request does when it is carried out (none of it on a dry run) */
  effects: RepairEffect[];
}

export function decideEtcdMemberRepair(input: EtcdMemberRepairInput): EtcdMemberRepairDecision {
  const a = input.member;
  const reason = etcdChangeRefusal(input.current, a, input.healthy);
  return {
    cluster: a.cluster,
    instanceId: a.instanceId,
    nodeId: a.nodeId,
    verdict: reason === undefined ? { replace: true } : { replace: false, reason },
    effects: [
      // the reconcile reassigns it without waiting for reassignAfter (quorum still applies there)
      { type: 'mark', set: 'immediate', op: 'add', id: a.instanceId },
      {
        type: 'event',
        event: {
          kind: 'etcd.repair-requested',
          severity: 'warning',
          cluster: a.cluster,
          instanceId: a.instanceId,
          nodeId: a.nodeId,
          role: ETCD,
          message: `operator asked to replace etcd member ${a.instanceId} on ${a.nodeId}`,
        },
      },
      { type: 'reconcile', cluster: a.cluster },
    ],
  };
}
