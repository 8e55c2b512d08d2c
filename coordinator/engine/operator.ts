/**
 * Operator actions: topologies (apply, delete), node actions (approve, cordon, drain, remove,
 * repair), instance moves, etcd member repair and one-off agent tasks. Each checks, writes the
 * store, says so with an event and queues the reconcile that carries it out.
 */
import { randomUUID } from 'node:crypto';
import type { Clock } from '../../lib/clock.js';
import {
  PROTOCOL_VERSION,
  type SigningKeyPair,
  signTask,
  TASK_REPLY_MARGIN_MS,
  type Task,
  type TaskResult,
} from '../../protocol/index.js';
import { coordinatorError } from '../errors.js';
import type { EventLog } from '../events.js';
import type { NodeRecord } from '../model.js';
import {
  appliedEmptyPlan,
  prepareRemoval,
  type RemovalOutcome,
  type RemovalPort,
  type RemoveOptions,
} from '../node-removal.js';
import {
  type NodeRepairOutcome,
  type NodeRepairPorts,
  type NodeRepairStarted,
  startNodeRepair,
} from '../node-repair.js';
import { moveFeasibility } from '../placement/index.js';
import type { ClusterState } from '../state/cluster-state.js';
import type { Store } from '../store/types.js';
import type { Topology } from '../topology/index.js';
import type { NodePush } from './node-push.js';
import type { PlanBook } from './plan-book.js';
import type { AgentBus, Enqueue, EtcdMemberRepair, RepairHooks } from './ports.js';

export interface OperatorPorts {
  state: ClusterState;
  store: Store;
  plans: PlanBook;
  push: NodePush;
  events: EventLog;
  clock: Clock;
  enqueue: Enqueue;
  bus: () => AgentBus | undefined;
  /** the coordinator epoch, carried by every task (agents refuse one below their plan's) */
  epoch: () => number;
  /** signs tasks (the plan-signing key: agents pin it) */
  signingKey: SigningKeyPair;
  repair?: RepairHooks;
  /** after a node is forgotten: revoke its bus credentials (a removed node needs a new join token) */
  onNodeRemoved?: (rec: NodeRecord) => Promise<void>;
}

export class OperatorActions {
  /** nodes whose plan is emptied while their removal waits for the agent (node-removal.ts) */
  private readonly fenced = new Set<string>();

  constructor(private readonly p: OperatorPorts) {}

  /** Whether the node's plan stays empty: its removal is waiting for its agent. */
  isFenced(nodeId: string): boolean {
    return this.fenced.has(nodeId);
  }

  async applyTopology(t: Topology): Promise<void> {
    const name = t.metadata.name;
    // the store's revision, not the read model's: a write that timed out on the bus may still have
    // landed (a NATS server died mid-request), and the model would then conflict for ever
    // an apply is the operator's last word: a conflict (a view behind the store) is read again once
    const write = async () => {
      const cur = await this.p.store.get<Topology>(`topology/${name}`);
      return cur
        ? this.p.store.update(`topology/${name}`, t, cur.revision)
        : this.p.store.create(`topology/${name}`, t);
    };
    const revision = await write().catch((err: unknown) => {
      const code = (err as { code?: string }).code;
      if (code === 'DROVER_ERR_STORE_CONFLICT' || code === 'DROVER_ERR_STORE_EXISTS') return write();
      throw err;
    });
    this.p.state.apply({ kind: 'topology', name, value: t, revision });
    this.p.events.emit({
      kind: 'topology.applied',
      severity: 'info',
      cluster: name,
      message: `topology ${name} applied (revision ${revision})`,
    });
    this.p.enqueue(`cluster:${name}`);
  }

  /**
   * Forgets a cluster's topology: its instances are removed (the nodes get plans without them)
   * by the cluster reconcile this queues. Returns false when there is no such topology.
   */
  async deleteTopology(name: string, by?: string): Promise<boolean> {
    const cur = this.p.state.topologyEntry(name);
    if (!cur) return false;
    await this.p.store.delete(`topology/${name}`, cur.revision);
    this.p.state.apply({ kind: 'topology', name });
    const n = this.p.state.currentAssignments(name).length;
    this.p.events.emit({
      kind: 'topology.deleted',
      severity: 'warning',
      cluster: name,
      message: `topology ${name} deleted${by ? ` by ${by}` : ''}: its ${n} instance(s) are being removed`,
      data: { instances: n },
    });
    // its nodes stay in the cluster (membership is explicit) and get empty plans (node.orphaned)
    this.p.enqueue(`cluster:${name}`);
    return true;
  }

  requireNode(id: string): NodeRecord {
    const rec = this.p.state.nodes.get(id);
    if (!rec)
      throw coordinatorError(
        'DROVER_ERR_NODE_NOT_FOUND',
        `no node ${JSON.stringify(id)}; see \`drover get nodes\``,
        { nodeId: id },
      );
    return rec;
  }

  async approve(id: string): Promise<NodeRecord> {
    const rec = this.requireNode(id);
    if (rec.approved) return rec;
    const next = await this.p.state.nodes.change(id, (r) => ({
      ...r,
      approved: true,
      state: 'Ready' as const,
      heldFor: undefined,
      awaitingApproval: undefined,
    }));
    this.p.events.emit({
      kind: 'node.approved',
      severity: 'info',
      nodeId: id,
      message: `node ${id} approved`,
    });
    this.p.enqueue(`cluster:${this.p.state.clusterOf(next)}`);
    return next;
  }

  async setCordon(id: string, cordoned: boolean): Promise<NodeRecord> {
    this.requireNode(id);
    // re-applied to a fresher copy if another write came first (nodes.change)
    const next = await this.p.state.nodes.change(id, (rec) => ({
      ...rec,
      cordoned,
      state: !cordoned && rec.state === 'Draining' ? 'Ready' : rec.state,
    }));
    this.p.events.emit({
      kind: cordoned ? 'node.cordoned' : 'node.uncordoned',
      severity: 'info',
      nodeId: id,
      message: `node ${id} ${cordoned ? 'cordoned' : 'uncordoned'}`,
    });
    this.p.enqueue(`cluster:${this.p.state.clusterOf(next)}`);
    return next;
  }

  async drain(id: string): Promise<NodeRecord> {
    this.requireNode(id);
    const next = await this.p.state.nodes.change(id, (rec) => ({
      ...rec,
      cordoned: true,
      state: 'Draining',
    }));
    this.p.events.emit({
      kind: 'node.draining',
      severity: 'info',
      nodeId: id,
      message: `node ${id} is draining: its instances move elsewhere`,
    });
    this.p.enqueue(`cluster:${this.p.state.clusterOf(next)}`);
    return next;
  }

  /**
   * Forgets a node; its instances are placed elsewhere. A live node that still runs instances is
   * refused unless `force`, which fences it first (coordinator/node-removal.ts).
   */
  async remove(id: string, opts: RemoveOptions = {}): Promise<RemovalOutcome> {
    const rec = this.requireNode(id);
    const cluster = this.p.state.clusterOf(rec);
    // Refused even with --force: forgetting an etcd host removes its member, and a membership
    // change without quorum can lose the cluster's data.
    const refusal = this.p.repair?.removeRefusal?.(cluster, id);
    if (refusal) {
      this.p.events.emit({
        kind: 'etcd.replace-refused',
        severity: 'error',
        cluster,
        nodeId: id,
        role: 'etcd',
        message: `not removing node ${id}: ${refusal}`,
      });
      throw coordinatorError('DROVER_ERR_ETCD_QUORUM', `not removing node ${id}: ${refusal}`, {
        nodeId: id,
      });
    }
    const outcome = await prepareRemoval(this.removalPort(cluster), id, opts);
    let gone: NodeRecord;
    try {
      gone = this.requireNode(id); // not removed by someone else while its agent was stopping its instances
      await this.p.state.nodes.forget(id);
    } finally {
      // the fence ends with the record (an id that registers again later starts unfenced)
      this.fenced.delete(id);
    }
    this.p.plans.forget(id);
    this.p.push.forget(id);
    this.p.events.emit({
      kind: 'node.removed',
      severity: 'warning',
      nodeId: id,
      message: `node ${id} removed${outcome.how === 'fenced' ? ' (fenced first: its agent stopped its instances)' : ''}`,
    });
    this.p.enqueue(`cluster:${cluster}`);
    await this.p.onNodeRemoved?.(gone);
    return outcome;
  }

  private removalPort(cluster: string): RemovalPort {
    return {
      clock: this.p.clock,
      state: (n) => {
        const r = this.p.state.nodes.get(n);
        return r ? this.p.state.nodes.effectiveState(r) : 'Removed';
      },
      assigned: (n) => this.p.state.currentAssignments(cluster).filter((a) => a.nodeId === n).length,
      runsNothing: (n) => appliedEmptyPlan(this.p.plans.plan(n), this.p.state.nodes.liveness(n)),
      fence: (n, on) => {
        if (on) this.fenced.add(n);
        else this.fenced.delete(n);
        this.p.enqueue(`cluster:${cluster}`);
      },
    };
  }

  /**
   * `drover repair NODE`: a live node re-provisions every instance (files rewritten, restart), one
   * task each (`startTask`, e.g. the API's task tracker, makes them visible); an Unreachable node's
   * instances are reassigned now instead of after `reassignAfter`. `force` also overrides the
   * storm guard for two minutes. Quorum and the one-etcd-change rule still hold. Events:
   * `repair.started`, then `repair.succeeded`/`repair.failed` (see coordinator/node-repair.ts).
   */
  startRepair(
    nodeId: string,
    opts: { force?: boolean; startTask?: NodeRepairPorts['startTask'] } = {},
  ): { started: NodeRepairStarted; done: Promise<NodeRepairOutcome> } {
    const rec = this.requireNode(nodeId);
    const cluster = this.p.state.clusterOf(rec);
    if (opts.force) this.p.repair?.force?.();
    const r = startNodeRepair({
      nodeId,
      unreachable: this.p.state.nodes.effectiveState(rec) === 'Unreachable',
      instances: this.p.state
        .currentAssignments(cluster)
        .filter((a) => a.nodeId === nodeId)
        .map((a) => a.instanceId),
      reassign: (id) => this.p.repair?.requestReassign?.(id),
      startTask:
        opts.startTask ??
        ((req) => {
          const id = randomUUID();
          const done = this.runTask({ ...req, id }).then((x) => ({ ok: x.ok, error: x.error?.message }));
          return { id, done };
        }),
      emit: (e) => this.p.events.emit(e),
    });
    this.p.enqueue(`cluster:${cluster}`);
    void r.done.then(() => this.p.enqueue(`cluster:${cluster}`));
    return r;
  }

  async repairNode(
    nodeId: string,
    opts: { force?: boolean } = {},
  ): Promise<{ reprovisioned: string[]; reassigning: string[] }> {
    const { started, done } = this.startRepair(nodeId, opts);
    const out = await done;
    return {
      reprovisioned: out.reprovisioned,
      reassigning: started.mode === 'reassign' ? started.instances : [],
    };
  }

  /** `drover move INSTANCE --to NODE`: same safety rules as automatic repair; `force` skips the last-healthy rule. */
  async moveInstance(
    instanceId: string,
    toNode: string,
    opts: { force?: boolean } = {},
  ): Promise<{ from: string; to: string }> {
    const a = this.p.state.allAssignments().find((x) => x.instanceId === instanceId);
    if (!a)
      throw coordinatorError(
        'DROVER_ERR_INSTANCE_NOT_FOUND',
        `no instance ${JSON.stringify(instanceId)}; see \`drover get assignments\``,
        { instanceId },
      );
    const to = this.requireNode(toNode);
    const refuse = (reason: string) =>
      coordinatorError('DROVER_ERR_MOVE_REFUSED', reason, { instanceId, to: toNode, reason });
    if (this.p.state.clusterOf(to) !== a.cluster)
      throw refuse(
        `${instanceId}: cannot move to ${toNode}: it is in cluster ${this.p.state.clusterOf(to)}, not ${a.cluster}`,
      );
    const topology = this.p.state.topologyEntry(a.cluster)?.topology;
    if (topology) {
      const nodes = this.p.state.placementNodes(a.cluster);
      if (!nodes.some((n) => n.id === to.id))
        throw refuse(
          `${instanceId}: cannot move to ${toNode}: ${toNode} is ${to.state === 'Removed' ? 'Removed' : 'not approved'}`,
        );
      const v = moveFeasibility({
        topology,
        nodes,
        current: this.p.state.currentAssignments(a.cluster),
        instanceId,
        to: to.id,
      });
      if (!v.ok) throw refuse(v.reason);
    }
    if (!this.p.repair?.requestMove)
      throw coordinatorError('DROVER_ERR_NOT_READY', 'the repair policy is not running');
    this.p.repair.requestMove(instanceId, toNode, opts.force ?? false);
    this.p.events.emit({
      kind: 'role.move-requested',
      severity: 'info',
      cluster: a.cluster,
      instanceId,
      role: a.role,
      nodeId: toNode,
      message: `operator asked to move ${instanceId} from ${a.nodeId} to ${toNode}`,
    });
    this.p.enqueue(`cluster:${a.cluster}`);
    return { from: a.nodeId, to: toNode };
  }

  /**
   * `drover repair etcd --member NAME`: replace that member now (through the survivors, quorum
   * permitting). The repair policy decides (coordinator/repair/etcd-member.ts) and carries it
   * out; `dryRun` only says what would happen.
   */
  repairEtcdMember(member: string, opts: { dryRun?: boolean } = {}): EtcdMemberRepair {
    if (!this.p.repair?.repairEtcdMember)
      throw coordinatorError('DROVER_ERR_NOT_READY', 'the repair policy is not running');
    return this.p.repair.repairEtcdMember(member, opts);
  }

  async runTask(
    input: Omit<Task, 'v' | 'type' | 'id' | 'issuedAt' | 'expiresAt' | 'timeoutMs'> & {
      timeoutMs?: number;
      id?: string;
    },
  ): Promise<TaskResult> {
    this.requireNode(input.nodeId);
    const bus = this.p.bus();
    if (!bus) throw coordinatorError('DROVER_ERR_NOT_READY', 'not connected to NATS');
    const { id, ...rest } = input;
    const now = this.p.clock.now();
    const timeoutMs = input.timeoutMs ?? 30_000;
    // Valid exactly as long as we wait for the answer (protocol/task-window.ts): a task that
    // reaches the agent after we gave up on it is refused there, never run unobserved.
    const waitMs = timeoutMs + TASK_REPLY_MARGIN_MS;
    const task: Task = {
      v: PROTOCOL_VERSION,
      type: 'task',
      ...rest,
      timeoutMs,
      coordinatorEpoch: this.p.epoch(),
      issuedAt: new Date(now).toISOString(),
      expiresAt: new Date(now + waitMs).toISOString(),
      id: id ?? randomUUID(),
    } as Task;
    try {
      return await bus.sendTask(task.nodeId, signTask(task, this.p.signingKey), waitMs);
    } catch (err) {
      throw coordinatorError(
        'DROVER_ERR_NODE_UNREACHABLE',
        `task ${task.kind} on ${task.nodeId} got no answer: ${(err as Error).message}`,
        undefined,
        err,
      );
    }
  }
}
