import type { KeyObject } from 'node:crypto';
import { type NodePlan, type SignedPlan, verifyPlan } from '../protocol/index.js';
import { AgentError } from './errors.js';

export interface AppliedRef {
  generation: number;
  checksum: string;
  coordinatorEpoch: number;
}

/**
 * Decides whether a signed plan may be applied. Throws (SignatureError or AgentError) when it must
 * be refused: no pinned key, unsigned, badly signed, for another node, or older than what is
 * applied (a lower coordinator epoch, or the same epoch and a lower generation, or the same
 * generation with other content). Returns `noop` for the plan that is already applied.
 */
export function checkPlan(
  signed: SignedPlan,
  ctx: { nodeId: string; key: KeyObject | undefined; applied: AppliedRef | undefined },
): { kind: 'apply' | 'noop'; plan: NodePlan } {
  if (!ctx.key) {
    throw new AgentError(
      'DROVER_ERR_NO_PINNED_KEY',
      'no coordinator key is pinned yet; a plan cannot be verified',
    );
  }
  const plan = verifyPlan(signed, ctx.key);
  if (plan.nodeId !== ctx.nodeId) {
    throw new AgentError(
      'DROVER_ERR_PLAN_WRONG_NODE',
      `plan is for node ${plan.nodeId}, this is ${ctx.nodeId}`,
    );
  }
  const a = ctx.applied;
  if (!a) return { kind: 'apply', plan };
  if (plan.coordinatorEpoch < a.coordinatorEpoch) {
    throw new AgentError(
      'DROVER_ERR_PLAN_STALE',
      `plan is from coordinator epoch ${plan.coordinatorEpoch}, older than the applied epoch ${a.coordinatorEpoch}`,
    );
  }
  if (plan.coordinatorEpoch === a.coordinatorEpoch) {
    if (plan.generation < a.generation) {
      throw new AgentError(
        'DROVER_ERR_PLAN_STALE',
        `plan generation ${plan.generation} is older than the applied generation ${a.generation}`,
      );
    }
    if (plan.generation === a.generation) {
      if (plan.checksum === a.checksum) return { kind: 'noop', plan };
      throw new AgentError(
        'DROVER_ERR_PLAN_STALE',
        `plan generation ${plan.generation} is already applied with other content (checksum ${a.checksum.slice(0, 12)}…)`,
      );
    }
  }
  return { kind: 'apply', plan };
}
