/**
 * Agent intake: what agents send (register, heartbeat, status, facts, plan fetch), turned into
 * node records, liveness and the reconciles they call for.
 */
import type { Clock } from '../../lib/clock.js';
import {
  DecodeError,
  type Facts,
  type FactsUpdate,
  type Heartbeat,
  isIpAddress,
  isLabelKey,
  isLabelValue,
  MAX_AGENT_LABELS,
  type NodeStatus,
  nodeTextProblem,
  type PlanFetch,
  PROTOCOL_VERSION,
  type Register,
  type RegisterReply,
  type SignedPlan,
  type SigningKeyPair,
  type StatusDigest,
} from '../../protocol/index.js';
import { coordinatorError } from '../errors.js';
import type { EventLog } from '../events.js';
import { agentLabelsOf, CLUSTER_LABEL, clusterOfRecord, mergeLabels } from '../labels.js';
import type { NodeRecord } from '../model.js';
import { type Liveness, NodeRegistry, sameMachine } from '../nodes.js';
import type { ClusterState } from '../state/cluster-state.js';
import { statusEvents } from '../status-events.js';
import { deriveLabels } from '../topology/index.js';
import type { NodePush } from './node-push.js';
import type { PlanBook } from './plan-book.js';
import type { EngineTimings, Enqueue } from './ports.js';

export interface IntakePorts {
  state: ClusterState;
  plans: PlanBook;
  push: NodePush;
  events: EventLog;
  clock: Clock;
  enqueue: Enqueue;
  epoch: () => number;
  signingKey: SigningKeyPair;
  timings: EngineTimings;
  /**
   * Spends one token of the join and registration rate limit (coordinator/nats.ts shares it with
   * the join handler); false: refuse with a retry-later error. Absent: no limit.
   */
  admitRegistration?: () => { ok: true } | { ok: false; retryAfterMs: number };
  /** nodes that may wait for approval at once (new records beyond it are refused) */
  maxPendingNodes?: number;
  /** sees every status report (the repair policy's instance trouble) */
  observeStatus?: (st: NodeStatus) => void;
  /**
   * An agent reports a plan applied under a coordinator epoch above ours (the store was restored
   * from an older copy, or lost its last epoch write): raise the epoch above it.
   */
  epochBehind?: (reported: number) => void;
}

export class Intake {
  constructor(private readonly p: IntakePorts) {}

  /**
   * A Register arrives on `drover.v1.register.<id>`, which only a holder of node `<id>`'s bus
   * credentials may publish: the node is approved unless held (its address is another live node's,
   * or its host name is taken in its cluster: Pending with an event). Refuses a bad address,
   * hostname, label or NIC address before anything changes (DecodeError), and a registration over
   * the rate limit or a new record over the Pending cap (with a retry-later error).
   */
  async handleRegister(raw: Register): Promise<RegisterReply> {
    const msg = checkedRegister(raw);
    const admit = this.p.admitRegistration?.() ?? { ok: true };
    if (!admit.ok)
      throw coordinatorError(
        'DROVER_ERR_JOIN_RATE_LIMITED',
        `too many joins and registrations per second; retry in ${Math.max(1, Math.ceil(admit.retryAfterMs / 1000))}s`,
        { retryAfterMs: admit.retryAfterMs },
      );
    const now = new Date(this.p.clock.now()).toISOString();
    const base = {
      v: PROTOCOL_VERSION,
      type: 'register-reply' as const,
      nodeId: msg.nodeId,
      coordinatorEpoch: this.p.epoch(),
      signingKey: this.p.signingKey.publicKeyB64,
      keyFingerprint: this.p.signingKey.fingerprint,
      heartbeatIntervalMs: this.p.timings.heartbeatIntervalMs,
    };
    let rec = this.p.state.nodes.get(msg.nodeId);
    // a record made at join has no labels yet: its first registration sets its cluster, not moves it
    const clusterBefore =
      rec && rec.state !== 'Removed' && !rec.joinedOnly ? this.p.state.clusterOf(rec) : undefined;
    // the operator's labels (`drover label`) survive every registration; a new record has none
    const labels = mergeLabels(
      msg.labels,
      deriveLabels(msg.facts),
      rec && rec.state !== 'Removed' ? rec.operatorLabels : undefined,
    );
    const cluster = clusterOfRecord({ labels });
    const hostHolder = this.hostnameHolder(msg.hostname, cluster, msg.nodeId);
    if (rec && rec.state !== 'Removed' && !sameMachine(rec.fingerprint, msg.fingerprint)) {
      this.p.events.emit({
        kind: 'node.refused',
        severity: 'error',
        nodeId: msg.nodeId,
        message: `node ${msg.nodeId} registered from a different machine (machine-id ${msg.fingerprint.machineId || '?'} ≠ ${rec.fingerprint.machineId || '?'}); refused — a wiped or cloned host must be removed first`,
      });
      return {
        ...base,
        accepted: false,
        state: 'Pending',
        reason:
          'fingerprint mismatch: this node id belongs to a different machine; remove the old node first',
      };
    }
    if (!rec || rec.state === 'Removed') {
      const twin = this.p.state.nodes.findByAddress(msg.address, msg.nodeId);
      const max = this.p.maxPendingNodes;
      if ((twin || hostHolder) && max !== undefined && this.pendingCount() >= max) {
        this.p.events.emit({
          kind: 'node.pending-cap',
          severity: 'warning',
          nodeId: msg.nodeId,
          message: `registration of ${msg.nodeId} refused: ${max} node(s) wait for approval already (maxPendingNodes)`,
        });
        throw coordinatorError(
          'DROVER_ERR_PENDING_CAP',
          `node ${msg.nodeId}: ${max} node(s) wait for approval already (maxPendingNodes ${max}); approve or remove some first`,
        );
      }
      const approved = !twin && !hostHolder;
      rec = NodeRegistry.newRecord({
        id: msg.nodeId,
        hostname: msg.hostname,
        address: msg.address,
        labels,
        facts: msg.facts,
        fingerprint: msg.fingerprint,
        approved,
        now,
        cluster: msg.labels[CLUSTER_LABEL],
      });
      rec.agentLabels = { ...msg.labels };
      if (twin) rec.heldFor = twin.id;
      else if (hostHolder) rec.heldFor = hostHolder.id;
      if (this.p.state.nodes.get(msg.nodeId)) await this.p.state.nodes.forget(msg.nodeId);
      await this.p.state.nodes.save(rec);
      if (twin) {
        this.p.events.emit({
          kind: 'node.suspected-wipe',
          severity: 'warning',
          nodeId: msg.nodeId,
          message: `new node ${msg.nodeId} has the address ${msg.address} of existing node ${twin.id}: possibly a wiped or cloned host; kept Pending — remove ${twin.id} and approve ${msg.nodeId} to replace it`,
          data: { existing: twin.id },
        });
      } else if (hostHolder) {
        this.hostnameConflict(msg.nodeId, msg.hostname, hostHolder, cluster);
      } else {
        this.p.events.emit({
          kind: approved ? 'node.joined' : 'node.pending',
          severity: 'info',
          nodeId: msg.nodeId,
          message: approved
            ? `node ${msg.nodeId} (${msg.hostname}, ${msg.address}) joined`
            : `node ${msg.nodeId} (${msg.hostname}) is waiting for approval`,
        });
      }
    } else if (
      rec.joinedOnly ||
      rec.address !== msg.address ||
      rec.hostname !== msg.hostname ||
      JSON.stringify(rec.labels) !== JSON.stringify(labels) ||
      JSON.stringify(rec.agentLabels) !== JSON.stringify(msg.labels) ||
      JSON.stringify({ ...rec.facts, collectedAt: '' }) !== JSON.stringify({ ...msg.facts, collectedAt: '' })
    ) {
      rec = {
        ...rec,
        address: msg.address,
        hostname: msg.hostname,
        labels,
        agentLabels: { ...msg.labels },
        facts: msg.facts,
        fingerprint: msg.fingerprint,
        ...(rec.joinedOnly ? { joinedOnly: undefined, cluster: msg.labels[CLUSTER_LABEL] } : {}),
      };
      rec = await this.approveOrHold(rec, hostHolder, cluster, false);
      await this.p.state.nodes.save(rec);
    } else if (!rec.approved && !rec.heldFor) {
      rec = await this.approveOrHold(rec, hostHolder, cluster, true);
    }
    const was = this.p.state.nodes.heartbeat(msg.nodeId);
    if (msg.applied) {
      const l = this.p.state.nodes.liveness(msg.nodeId);
      if (l) l.applied = { ...msg.applied };
      this.observeApplied(msg.nodeId, msg.applied);
    }
    if (rec.approved && (was === 'Suspect' || was === 'Unreachable'))
      this.p.events.emit({
        kind: 'node.recovered',
        severity: 'info',
        nodeId: msg.nodeId,
        message: `node ${msg.nodeId} registered again (was ${was})`,
      });
    if (!rec.approved)
      return {
        ...base,
        accepted: true,
        state: 'Pending',
        reason: rec.heldFor
          ? `held for operator approval: its address or host name is node ${rec.heldFor}'s (\`drover approve ${rec.id}\`)`
          : 'waiting for operator approval',
      };
    const clusterNow = this.p.state.clusterOf(rec);
    if (clusterBefore !== undefined && clusterBefore !== clusterNow) {
      // the agent's configured cluster label changed: an explicit move, by whoever edited its config
      this.p.events.emit({
        kind: 'node.cluster-changed',
        severity: 'warning',
        nodeId: rec.id,
        cluster: clusterNow,
        message: `node ${rec.id} moved from cluster ${clusterBefore} to ${clusterNow} (its agent's ${CLUSTER_LABEL} label)`,
        data: { from: clusterBefore, to: clusterNow },
      });
      this.p.enqueue(`cluster:${clusterBefore}`);
    }
    this.p.enqueue(`cluster:${clusterNow}`);
    const d = this.p.plans.get(rec.id);
    if (d) this.p.enqueue(`node:${rec.id}`);
    return { ...base, accepted: true, state: this.p.state.nodes.effectiveState(rec), plan: d?.signed };
  }

  /** An approved node of `cluster` other than `exceptId` with this host name (case-insensitive). */
  private hostnameHolder(hostname: string, cluster: string, exceptId: string) {
    const h = hostname.toLowerCase();
    for (const r of this.p.state.nodes.all())
      if (
        r.id !== exceptId &&
        r.state !== 'Removed' &&
        r.approved &&
        r.hostname.toLowerCase() === h &&
        this.p.state.clusterOf(r) === cluster
      )
        return r;
    return undefined;
  }

  private pendingCount(): number {
    let n = 0;
    for (const r of this.p.state.nodes.all())
      if (r.state !== 'Removed' && this.p.state.nodes.effectiveState(r) === 'Pending') n++;
    return n;
  }

  private hostnameConflict(nodeId: string, hostname: string, holder: { id: string }, cluster: string): void {
    this.p.events.emit({
      kind: 'node.hostname-conflict',
      severity: 'warning',
      nodeId,
      cluster,
      message: `node ${nodeId} claims host name ${hostname}, which node ${holder.id} has in cluster ${cluster}; kept Pending — remove ${holder.id} or rename the host, then \`drover approve ${nodeId}\``,
      data: { existing: holder.id, hostname },
    });
  }

  /** A Pending, unheld record that registered with its own credentials: approved, or held for a taken host name. */
  private async approveOrHold(
    rec: NodeRecord,
    holder: NodeRecord | undefined,
    cluster: string,
    save: boolean,
  ): Promise<NodeRecord> {
    // held for a twin or a host name, or joined with a token that requires approval
    if (rec.approved || rec.heldFor || rec.awaitingApproval) return rec;
    let next: NodeRecord;
    const twin = this.p.state.nodes.findByAddress(rec.address, rec.id);
    if (twin) {
      next = { ...rec, heldFor: twin.id };
      this.p.events.emit({
        kind: 'node.suspected-wipe',
        severity: 'warning',
        nodeId: rec.id,
        message: `node ${rec.id} has the address ${rec.address} of existing node ${twin.id}: possibly a wiped or cloned host; kept Pending — remove ${twin.id} and approve ${rec.id} to replace it`,
        data: { existing: twin.id },
      });
    } else if (holder) {
      next = { ...rec, heldFor: holder.id };
      this.hostnameConflict(rec.id, rec.hostname, holder, cluster);
    } else {
      next = { ...rec, approved: true, state: 'Ready' };
      this.p.events.emit({
        kind: 'node.joined',
        severity: 'info',
        nodeId: rec.id,
        message: `node ${rec.id} (${rec.hostname}, ${rec.address}) joined`,
      });
    }
    if (save) await this.p.state.nodes.save(next);
    return next;
  }

  handleHeartbeat(hb: Heartbeat): void {
    const rec = this.p.state.nodes.get(hb.nodeId);
    if (!rec?.approved || rec.state === 'Removed') return;
    const prev = this.p.state.nodes.heartbeat(hb.nodeId, hb.digest);
    if (prev && prev !== 'new') {
      this.p.events.emit({
        kind: 'node.recovered',
        severity: 'info',
        nodeId: hb.nodeId,
        message: `node ${hb.nodeId} is heartbeating again (was ${prev})`,
      });
      this.p.enqueue(`cluster:${this.p.state.clusterOf(rec)}`);
    }
    const l = this.p.state.nodes.liveness(hb.nodeId)!;
    const dg = hb.digest;
    this.observeApplied(hb.nodeId, dg);
    const d = this.p.plans.get(hb.nodeId);
    if (!d) return;
    const matches = dg.checksum === d.plan.checksum && dg.coordinatorEpoch === this.p.epoch();
    if (matches) {
      l.applied = { generation: dg.generation, checksum: dg.checksum, coordinatorEpoch: dg.coordinatorEpoch };
      if (this.statusLost(l, dg)) {
        l.statusResync = true;
        this.p.enqueue(`node:${hb.nodeId}`);
      }
      return;
    }
    // A heartbeat sent just before our push landed still shows the old plan; don't re-push for it.
    const recentlyPushed =
      l.lastPushOkAt !== undefined &&
      this.p.clock.now() - l.lastPushOkAt < this.p.timings.heartbeatIntervalMs * 1.5;
    if (!recentlyPushed) {
      l.applied = { generation: dg.generation, checksum: dg.checksum, coordinatorEpoch: dg.coordinatorEpoch };
      this.p.enqueue(`node:${hb.nodeId}`);
    }
  }

  /**
   * True when the held status is behind the heartbeats and a push should bring it back. A status
   * is sent once, on change, and NATS delivers at most once (a nats-server dying with it in
   * flight, a coordinator taking over): a lost one would leave an instance "not reported yet"
   * for good and a rollout slot held until its timeout. The heartbeat's digest names the
   * instance states (`health`), so a disagreement that lasts two heartbeat intervals (a status
   * is debounced and may trail the digest for a moment) means the status was lost; the agent
   * answers a push that changes nothing with its full status. At most once per ten intervals
   * per node, so an agent that never agrees costs one push in ten heartbeats, not one in each.
   */
  private statusLost(l: Liveness, dg: StatusDigest): boolean {
    const held = l.status?.digest;
    const agrees = held ? held.health === dg.health && held.instances === dg.instances : dg.instances === 0;
    if (agrees) {
      l.statusBehindSince = undefined;
      return false;
    }
    const now = this.p.clock.now();
    const every = this.p.timings.heartbeatIntervalMs;
    l.statusBehindSince ??= now;
    if (now - l.statusBehindSince < 2 * every) return false;
    if (l.statusResyncAt !== undefined && now - l.statusResyncAt < 10 * every) return false;
    l.statusResyncAt = now;
    return true;
  }

  /**
   * What an agent says it applied, checked against what we would send it, so that nothing we send
   * can look stale to it (issue 15, point 10): an epoch above ours raises ours; the same epoch and
   * a generation at or above the desired plan's (with other content) re-issues the plan above it.
   */
  private observeApplied(
    nodeId: string,
    a: { generation: number; checksum: string; coordinatorEpoch: number },
  ): void {
    if (a.coordinatorEpoch > this.p.epoch()) this.p.epochBehind?.(a.coordinatorEpoch);
    else if (a.coordinatorEpoch === this.p.epoch() && a.checksum) this.p.plans.catchUp(nodeId, a);
  }

  handleStatus(st: NodeStatus): void {
    const rec = this.p.state.nodes.get(st.nodeId);
    if (!rec?.approved) return;
    this.p.state.nodes.heartbeat(st.nodeId, st.digest);
    const l = this.p.state.nodes.liveness(st.nodeId)!;
    const before = l.status;
    l.status = st;
    if (st.plan.state === 'refused' && before?.plan.state !== 'refused') {
      this.p.events.emit({
        kind: 'plan.refused',
        severity: 'error',
        nodeId: st.nodeId,
        message: `node ${st.nodeId} refused its plan: ${st.plan.error ?? 'no reason given'}`,
      });
    }
    for (const e of statusEvents(before, st)) this.p.events.emit(e);
    for (const i of st.instances) this.p.push.released(st.nodeId, i);
    this.p.observeStatus?.(st);
  }

  /** Refuses facts with a bad hostname or NIC address before anything changes (DecodeError). */
  async handleFacts(raw: FactsUpdate): Promise<void> {
    const rec = this.p.state.nodes.get(raw.nodeId);
    if (!rec) return;
    const msg = { ...raw, facts: checkedFacts(raw.nodeId, raw.facts, '/facts') };
    const agent = agentLabelsOf(rec);
    const labels = mergeLabels(agent, deriveLabels(msg.facts), rec.operatorLabels);
    await this.p.state.nodes.save({ ...rec, facts: msg.facts, labels });
    this.p.enqueue(`cluster:${this.p.state.clusterOf(rec)}`);
  }

  handlePlanFetch(msg: PlanFetch): SignedPlan {
    const rec = this.p.state.nodes.get(msg.nodeId);
    if (!rec)
      throw coordinatorError(
        'DROVER_ERR_NODE_NOT_FOUND',
        `node ${msg.nodeId} is not registered; register first`,
      );
    if (!rec.approved)
      throw coordinatorError('DROVER_ERR_ILLEGAL_STATE', `node ${msg.nodeId} is waiting for approval`);
    const d = this.p.plans.get(msg.nodeId);
    if (!d)
      throw coordinatorError('DROVER_ERR_NOT_READY', `no plan rendered yet for ${msg.nodeId}; retry shortly`);
    return d.signed;
  }
}

/*
 * The schemas (protocol/node-input.ts) already refuse what follows when a message comes off the
 * bus; these checks hold for every other caller too (simulated agents, tests, a future transport),
 * and lower the hostname's case: host names are case-insensitive, and the record keeps one form.
 */

const refuse = (field: string, message: string): never => {
  throw new DecodeError('DROVER_ERR_DECODE', field, message);
};

function checkedFacts(nodeId: string, facts: Facts, at: string): Facts {
  const p = nodeTextProblem({ id: nodeId, address: '0.0.0.0', hostname: facts.hostname });
  if (p) refuse(`${at}/hostname`, p.message);
  for (const [i, nic] of facts.network.entries())
    for (const [j, a] of nic.addresses.entries())
      if (!isIpAddress(a))
        refuse(
          `${at}/network/${i}/addresses/${j}`,
          `node ${nodeId}: NIC ${JSON.stringify(nic.name)} address ${JSON.stringify(a)} is not an IP address`,
        );
  const hostname = facts.hostname.toLowerCase();
  return hostname === facts.hostname ? facts : { ...facts, hostname };
}

function checkedRegister(msg: Register): Register {
  const p = nodeTextProblem({ id: msg.nodeId, address: msg.address, hostname: msg.hostname });
  if (p) refuse(`/${p.field}`, p.message);
  const keys = Object.keys(msg.labels);
  if (keys.length > MAX_AGENT_LABELS)
    refuse('/labels', `node ${msg.nodeId}: ${keys.length} labels; at most ${MAX_AGENT_LABELS}`);
  for (const k of keys) {
    if (!isLabelKey(k))
      refuse(`/labels`, `node ${msg.nodeId}: label key ${JSON.stringify(k)} is not a Kubernetes label key`);
    if (!isLabelValue(msg.labels[k]))
      refuse(
        `/labels/${k}`,
        `node ${msg.nodeId}: label ${k}=${JSON.stringify(msg.labels[k])} is not a Kubernetes label value`,
      );
  }
  const facts = checkedFacts(msg.nodeId, msg.facts, '/facts');
  const hostname = msg.hostname.toLowerCase();
  return hostname === msg.hostname && facts === msg.facts ? msg : { ...msg, hostname, facts };
}
