/**
 * Convergence as scripts see it (like `kubectl wait`): `drover status` and `apply` exit non-zero
 * when the state asked for is not reached, and `--wait` fails fast, with the reasons, once the
 * coordinator reports instances it cannot place, instead of waiting out its whole timeout.
 *
 * "Still converging" (plans being applied, instances starting) is worth waiting for; "cannot be
 * placed" (no node fits, an unschedulable instance) is not: it needs a change (more nodes, fewer
 * replicas, other labels) before it can converge.
 */
import type { StatusView, Unplaced } from '../../protocol/rest/schemas.js';
import type { CommandContext } from '../context.js';

/** What `/v1/assignments` lists as unplaced; the status only counts them. */
export async function unplacedOf(ctx: CommandContext, cluster: string | undefined): Promise<Unplaced[]> {
  const r = await ctx.client.get<{ unplaced: Unplaced[] }>('/v1/assignments', { cluster });
  return r.unplaced;
}

export function unplacedLines(list: Array<Pick<Unplaced, 'instanceId' | 'reason'>>): string[] {
  return list.map((u) => `${u.instanceId} cannot be placed: ${u.reason}`);
}

export interface ConvergenceCheck {
  done: boolean;
  progress: string;
  detail: string[];
  /** set when waiting longer cannot help: the instances the coordinator cannot place */
  fatal?: string;
}

/**
 * A convergence check for `waitUntil`. It reports `fatal` once the same instances are unplaced on
 * two checks in a row, so an unplaced list left from before a reconcile (the topology was applied
 * a moment ago) never ends a wait that would succeed.
 */
export function convergenceCheck(
  ctx: CommandContext,
  cluster: string | undefined,
): () => Promise<ConvergenceCheck> {
  let lastUnplaced = '';
  return async () => {
    const s = await ctx.client.get<StatusView>('/v1/status', { cluster });
    const r = summarize(s);
    const unplacedCount = s.clusters.reduce((n, c) => n + c.unplaced, 0);
    if (r.done || unplacedCount === 0) {
      lastUnplaced = '';
      return r;
    }
    const list = await unplacedOf(ctx, cluster);
    const key = JSON.stringify(list.map((u) => [u.instanceId, u.reason]));
    const stable = list.length > 0 && key === lastUnplaced;
    lastUnplaced = key;
    if (!stable) return r;
    return {
      ...r,
      fatal: `${list.length} instance(s) cannot be placed, so ${cluster ? `cluster ${cluster}` : 'the fleet'} cannot converge:\n  ${unplacedLines(list).slice(0, 20).join('\n  ')}${list.length > 20 ? `\n  … and ${list.length - 20} more` : ''}`,
    };
  };
}

/** The one-line progress of a status, and the reasons behind it. */
export function summarize(s: StatusView): ConvergenceCheck {
  const cs = s.clusters;
  if (!cs.length) return { done: false, progress: 'no topology applied yet', detail: [] };
  const roles = cs.reduce((n, c) => n + c.roles, 0);
  const healthy = cs.reduce((n, c) => n + c.healthyRoles, 0);
  const plans = cs.every((c) => c.plansApplied) ? 'plans applied' : 'plans being applied';
  const unplaced = cs.reduce((n, c) => n + c.unplaced, 0);
  const detail = cs.flatMap((c) => c.reasons);
  return {
    done: s.converged,
    progress: `${healthy}/${roles} roles healthy, ${plans}${unplaced ? `, ${unplaced} instance(s) unschedulable` : ''}${detail.length ? ` (${detail[0]}${detail.length > 1 ? `; +${detail.length - 1} more` : ''})` : ''}`,
    detail,
  };
}
