/**
 * `drover remove NODE` (DELETE /v1/nodes/:id) on a node that is still heartbeating.
 *
 * Forgetting a node places its instances elsewhere at once. That is right for a dead host (its
 * plan can no longer run, and if it returns it is fenced by its new plan), but a *live* node keeps
 * running what it last applied: the instance then runs twice (two controller managers, an etcd
 * member twice). So:
 *
 * - a node that is not live (Unreachable, Pending, not approved) is forgotten as before;
 * - a live node (Ready, Suspect, Cordoned, Draining) that already runs nothing — no assignments,
 *   and its agent applied its (empty) plan, e.g. after `drover drain NODE --wait` — is forgotten;
 * - any other live node is refused (DROVER_ERR_NODE_LIVE, 409): drain it first, or `--force`;
 * - `--force` fences it first: its plan is emptied (its assignments still point at it, so nothing
 *   is placed elsewhere yet), and only when the agent has applied the empty plan (it stopped its
 *   instances) is the node forgotten and its instances placed elsewhere. If the agent does not
 *   confirm within the timeout, nothing is removed and the fence is lifted
 *   (DROVER_ERR_FENCE_TIMEOUT, 504): a node that heartbeats but does not apply plans may still run
 *   everything, so treating it as dead would start the double run again. Stop its agent (it is then
 *   Unreachable after `unreachableAfter`) and remove it as a dead node.
 *
 * The decision is pure (`removalVerdict`); `prepareRemoval` acts through a narrow port.
 */
import type { Clock } from '../lib/clock.js';
import type { NodeState } from '../protocol/index.js';
import { coordinatorError } from './errors.js';

/** States in which the node's agent is heartbeating. */
const LIVE: ReadonlySet<NodeState> = new Set<NodeState>(['Ready', 'Suspect', 'Cordoned', 'Draining']);

export function isLive(state: NodeState): boolean {
  return LIVE.has(state);
}

export interface RemovalInput {
  state: NodeState;
  /** instances assigned to the node */
  assigned: number;
  /** its agent confirmed a plan with no instances (or never had one and reports none) */
  runsNothing: boolean;
  force: boolean;
}

export type RemovalVerdict =
  | { kind: 'forget'; why: string }
  | { kind: 'fence' }
  | { kind: 'refuse'; reason: string };

/** Pure: may this node be forgotten now, must it be fenced first, or is the removal refused? */
export function removalVerdict(i: RemovalInput): RemovalVerdict {
  if (!isLive(i.state)) return { kind: 'forget', why: `it is ${i.state}` };
  if (i.assigned === 0 && i.runsNothing) return { kind: 'forget', why: 'it runs nothing' };
  if (i.force) return { kind: 'fence' };
  return {
    kind: 'refuse',
    reason: `it is ${i.state} (its agent is heartbeating) and runs ${i.assigned} instance(s): removing it now would start them elsewhere while they still run here`,
  };
}

/**
 * Pure: the node's agent confirmed a plan holding no instances (or, with no plan rendered for it,
 * reports running none). Used for the fence and for `drover drain --wait`.
 */
export function appliedEmptyPlan(
  desired: { instances: readonly unknown[]; checksum: string; generation: number } | undefined,
  live:
    | { applied?: { checksum: string; generation: number }; status?: { instances: readonly unknown[] } }
    | undefined,
): boolean {
  if (!desired) return (live?.status?.instances.length ?? 0) === 0;
  return (
    desired.instances.length === 0 &&
    live?.applied?.checksum === desired.checksum &&
    live.applied.generation >= desired.generation
  );
}

/** What `prepareRemoval` needs from the engine. */
export interface RemovalPort {
  clock: Clock;
  state(nodeId: string): NodeState;
  assigned(nodeId: string): number;
  /** the agent applied a desired plan that holds no instances */
  runsNothing(nodeId: string): boolean;
  /** empties (true) or restores (false) the node's plan, and re-renders */
  fence(nodeId: string, on: boolean): void;
}

export interface RemoveOptions {
  /** fence a live node first instead of refusing */
  force?: boolean;
  /** how long the agent has to confirm the empty plan; default 15 s */
  timeoutMs?: number;
}

export interface RemovalOutcome {
  /** `forgotten`: removed as it was; `fenced`: its agent stopped its instances first */
  how: 'forgotten' | 'fenced';
  instances: number;
}

const POLL_MS = 100;
export const DEFAULT_FENCE_TIMEOUT_MS = 15_000;

/**
 * Checks the removal and, for a forced live node, fences it and waits for its agent's
 * confirmation. Resolves when the node may be forgotten (the caller forgets it; the fence stays
 * on until then); throws NODE_LIVE or FENCE_TIMEOUT, having changed nothing.
 */
export async function prepareRemoval(
  port: RemovalPort,
  nodeId: string,
  opts: RemoveOptions = {},
): Promise<RemovalOutcome> {
  const instances = port.assigned(nodeId);
  const v = removalVerdict({
    state: port.state(nodeId),
    assigned: instances,
    runsNothing: port.runsNothing(nodeId),
    force: opts.force === true,
  });
  if (v.kind === 'forget') return { how: 'forgotten', instances };
  if (v.kind === 'refuse')
    throw coordinatorError(
      'DROVER_ERR_NODE_LIVE',
      `not removing node ${nodeId}: ${v.reason}; drain it first (\`drover drain ${nodeId} --wait\`, then \`drover remove ${nodeId}\`) or use \`drover remove ${nodeId} --force\` to stop its instances there before they are placed elsewhere`,
      { nodeId, state: port.state(nodeId), instances },
    );
  const timeoutMs = opts.timeoutMs ?? DEFAULT_FENCE_TIMEOUT_MS;
  port.fence(nodeId, true);
  const started = port.clock.now();
  for (;;) {
    if (port.runsNothing(nodeId)) return { how: 'fenced', instances };
    const waited = port.clock.now() - started;
    if (waited >= timeoutMs) break;
    await new Promise<void>((r) => port.clock.setTimeout(r, Math.min(POLL_MS, timeoutMs - waited)));
  }
  port.fence(nodeId, false);
  const state = port.state(nodeId);
  throw coordinatorError(
    'DROVER_ERR_FENCE_TIMEOUT',
    `not removing node ${nodeId}: its agent did not confirm within ${(timeoutMs / 1000).toFixed(0)}s that it stopped its ${instances} instance(s) (it is ${state}); nothing was removed and its plan is restored. ${
      isLive(state)
        ? `Stop its agent (it becomes Unreachable after \`unreachableAfter\`) and remove it then, or retry with a longer --timeout`
        : `It is no longer heartbeating: \`drover remove ${nodeId}\` now removes it as a dead node`
    }`,
    { nodeId, state, instances, timeoutMs },
  );
}

/** What revoking a removed node's bus credentials needs: BusAuth's revoke and the account push. */
export interface BusRevokePort {
  revoke(userPublicKey: string): Promise<void>;
  /** pushes the account JWT (its revocations) to nats-server: the node is disconnected at once */
  push(): Promise<void>;
}

/**
 * After a node is forgotten: its bus key is revoked and the account pushed, so its agent is cut
 * off and cannot come back without a new join token. A node with no bus key (it never joined with
 * a token) has nothing to revoke. A failed push is logged by the caller and retried with the next.
 */
export async function revokeRemovedNode(
  port: BusRevokePort,
  rec: { id: string; busKey?: string },
): Promise<boolean> {
  if (!rec.busKey) return false;
  await port.revoke(rec.busKey);
  await port.push();
  return true;
}
