import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect, credsAuthenticator, type NatsConnection } from 'nats';
import {
  decodeMessage,
  encode,
  type InstanceStatus,
  type NodePlan,
  type NodeStatus,
  nodeInboxPrefix,
  PROTOCOL_VERSION,
  publicKeyFromB64,
  type RegisterReply,
  type SignedPlan,
  subjects,
  verifyPlan,
} from '../../protocol/index.js';
import { sampleFacts } from './fixtures.js';
import { natsByUrl } from './servers.js';

/**
 * A protocol-level stand-in for drover-agent: it speaks the real NATS protocol (register,
 * heartbeat, verified plan pushes, status, tasks) to a real coordinator, but runs nothing. Every
 * instance of an accepted plan is reported Healthy and `simulated: true`, so tables label it. Used
 * where a test is about the coordinator's side (API, CLI), not about running processes.
 */
export interface SimAgent {
  nodeId: string;
  plan(): NodePlan | undefined;
  pushes: number;
  /** stop heartbeating and answering (the node goes Suspect, then Unreachable) */
  close(): Promise<void>;
}

/** The digest of a simulated node whose every planned instance is Healthy. */
export function simulatedDigest(plan: NodePlan | undefined) {
  return {
    generation: plan?.generation ?? 0,
    checksum: plan?.checksum ?? '',
    coordinatorEpoch: plan?.coordinatorEpoch ?? 0,
    health: '0000000000000000',
    instances: plan?.instances.length ?? 0,
    unhealthy: 0,
  };
}

/** The full status a simulated node sends after applying `plan`: every instance Healthy, `simulated`. */
export function simulatedStatus(nodeId: string, seq: number, plan: NodePlan | undefined): NodeStatus {
  const d = simulatedDigest(plan);
  return {
    v: PROTOCOL_VERSION,
    type: 'status',
    nodeId,
    seq,
    sentAt: new Date().toISOString(),
    plan: {
      generation: d.generation,
      checksum: d.checksum,
      coordinatorEpoch: d.coordinatorEpoch,
      state: plan ? 'applied' : 'none',
    },
    digest: d,
    instances: (plan?.instances ?? []).map(
      (i): InstanceStatus => ({
        id: i.id,
        role: i.role,
        epoch: i.epoch,
        checksum: i.checksum,
        phase: 'Healthy',
        health: 'healthy',
        restarts: 0,
        simulated: true,
      }),
    ),
  };
}

export async function startSimAgent(o: {
  natsUrl: string;
  nodeId: string;
  address: string;
  heartbeatMs?: number;
  /** the host name it reports (default sim-<id>); two sims with one name: the second is held Pending */
  hostname?: string;
  labels?: Record<string, string>;
}): Promise<SimAgent> {
  // a pre-joined node: the credentials a join would have issued, the bus CA, its own inbox prefix
  const bus = natsByUrl.get(o.natsUrl);
  if (!bus) throw new Error(`startSimAgent: no test nats-server at ${o.natsUrl}`);
  const nc: NatsConnection = await connect({
    servers: o.natsUrl,
    name: `sim-agent-${o.nodeId}`,
    authenticator: credsAuthenticator(readFileSync(await bus.credsFor(o.nodeId))),
    tls: { caFile: bus.caFile },
    inboxPrefix: nodeInboxPrefix(o.nodeId),
  });
  let key: KeyObject | undefined;
  let current: NodePlan | undefined;
  let seq = 0;
  const state = { pushes: 0 };

  const publishStatus = () =>
    nc.publish(subjects.status(o.nodeId), encode(simulatedStatus(o.nodeId, ++seq, current)));
  const accept = (signed: SignedPlan): NodePlan => {
    if (!key) throw new Error('no pinned key');
    const plan = verifyPlan(signed, key);
    if (plan.nodeId !== o.nodeId) throw new Error(`plan for ${plan.nodeId}`);
    current = plan;
    return plan;
  };

  nc.subscribe(subjects.plan(o.nodeId), {
    callback: (_err, m) => {
      state.pushes++;
      try {
        const plan = accept(decodeMessage('SignedPlan', m.data));
        m.respond(
          encode({
            v: PROTOCOL_VERSION,
            type: 'plan-result',
            nodeId: o.nodeId,
            generation: plan.generation,
            checksum: plan.checksum,
            accepted: true,
          }),
        );
        publishStatus();
      } catch (err) {
        m.respond(
          encode({
            v: PROTOCOL_VERSION,
            type: 'plan-result',
            nodeId: o.nodeId,
            generation: 0,
            checksum: '',
            accepted: false,
            error: { code: 'DROVER_ERR_PLAN_SIGNATURE', message: (err as Error).message },
          }),
        );
      }
    },
  });
  nc.subscribe(subjects.task(o.nodeId), {
    callback: (_err, m) => {
      const { task } = decodeMessage('SignedTask', m.data);
      m.respond(
        encode({
          v: PROTOCOL_VERSION,
          type: 'task-result',
          id: task.id,
          nodeId: o.nodeId,
          ok: true,
          output: `simulated ${task.kind}`,
          finishedAt: new Date().toISOString(),
        }),
      );
    },
  });

  const n = o.nodeId.replace(/[\W_]/g, ''); // an RFC 1123 hostname: no '_'
  const reply = decodeMessage(
    'RegisterReply',
    (
      await nc.request(
        subjects.register(o.nodeId),
        encode({
          v: PROTOCOL_VERSION,
          type: 'register',
          nodeId: o.nodeId,
          hostname: o.hostname ?? `sim-${n}`,
          address: o.address,
          labels: o.labels ?? {},
          facts: sampleFacts({ hostname: o.hostname ?? `sim-${n}`, machineId: `sim-machine-${n}` }),
          fingerprint: { machineId: `sim-machine-${n}`, macs: [] },
          agentVersion: 'sim',
        }),
        { timeout: 5000 },
      )
    ).data,
  ) as RegisterReply;
  if (!reply.accepted) throw new Error(`sim agent ${o.nodeId} refused: ${reply.reason}`);
  key = publicKeyFromB64(reply.signingKey);
  if (reply.plan) accept(reply.plan);
  publishStatus();

  const beat = () =>
    nc.publish(
      subjects.heartbeat(o.nodeId),
      encode({
        v: PROTOCOL_VERSION,
        type: 'heartbeat',
        nodeId: o.nodeId,
        seq: ++seq,
        sentAt: new Date().toISOString(),
        digest: simulatedDigest(current),
      }),
    );
  beat();
  const timer = setInterval(beat, o.heartbeatMs ?? 500);
  return {
    nodeId: o.nodeId,
    plan: () => current,
    get pushes() {
      return state.pushes;
    },
    async close() {
      clearInterval(timer);
      await nc.close();
    },
  };
}
