/**
 * The join handler (`drover.v1.join.<tokenId>`): a host holding a join token's bootstrap user asks
 * for its own node credentials. The token id comes from the subject (only that token's bootstrap
 * user may publish there), never from the body. The token must be active, the node id must not
 * belong to another machine, the Pending cap and the join rate must hold; then the node's user JWT
 * is minted for the key the host made, its bus key is recorded on its node record (Pending until
 * it registers with those credentials), one use is counted, and the reply is signed with the
 * plan-signing key the agent pins. Every refusal is a signed JoinReply with ok:false and
 * {code, message}, and changes nothing.
 *
 * `joinVerdict` decides purely; `JoinHandler` acts.
 */
import type { Clock } from '../../lib/clock.js';
import type { Logger } from '../../lib/logger.js';
import type { TokenBucket } from '../../lib/token-bucket.js';
import {
  decodeMessage,
  type Facts,
  type Join,
  type JoinReply,
  nodeTextProblem,
  PROTOCOL_VERSION,
  type SigningKeyPair,
  signJoinReply,
} from '../../protocol/index.js';
import type { EventLog } from '../events.js';
import type { JOIN_ERRORS } from '../join-errors.js';
import type { UseVerdict } from '../join-tokens.js';
import type { NodeRecord } from '../model.js';
import { NodeRegistry, sameMachine } from '../nodes.js';

export const DEFAULT_MAX_PENDING_NODES = 100;
export const DEFAULT_REGISTRATION_RATE = 20;
export const DEFAULT_REGISTRATION_BURST = 200;

type JoinCode = keyof typeof JOIN_ERRORS | 'DROVER_ERR_DECODE';

export interface JoinRefusal {
  code: JoinCode;
  message: string;
  /** an event to record with the refusal */
  event?: { kind: string; severity: 'warning' | 'error'; message: string };
}

export interface JoinInput {
  subjectTokenId: string;
  join: Join;
  token: UseVerdict;
  existing: NodeRecord | undefined;
  pendingCount: number;
  maxPending: number;
}

/** Pure: may this join go ahead? undefined: yes; else the refusal. */
export function joinVerdict(i: JoinInput): JoinRefusal | undefined {
  const j = i.join;
  if (j.tokenId !== i.subjectTokenId)
    return {
      code: 'DROVER_ERR_JOIN_REFUSED',
      message: `the join names token ${j.tokenId} but came on the subject of token ${i.subjectTokenId}`,
    };
  if (!i.token.ok) return { code: i.token.code, message: i.token.message };
  const ex = i.existing && i.existing.state !== 'Removed' ? i.existing : undefined;
  if (ex && !sameMachine(ex.fingerprint, j.fingerprint)) {
    const message = `node id ${j.nodeId} belongs to another machine (machine-id ${ex.fingerprint.machineId || '?'} ≠ ${j.fingerprint.machineId || '?'}); remove node ${j.nodeId} first, or join this host under another id`;
    return {
      code: 'DROVER_ERR_JOIN_REFUSED',
      message,
      event: { kind: 'node.refused', severity: 'error', message: `join refused: ${message}` },
    };
  }
  if (!ex && i.pendingCount >= i.maxPending) {
    const message = `${i.pendingCount} node(s) wait for approval (maxPendingNodes ${i.maxPending}); approve or remove some (\`drover get nodes\`), then join again`;
    return {
      code: 'DROVER_ERR_PENDING_CAP',
      message,
      event: {
        kind: 'node.pending-cap',
        severity: 'warning',
        message: `join of ${j.nodeId} refused: ${message}`,
      },
    };
  }
  return undefined;
}

/** The facts a record holds between its join and its first registration (which brings the real ones). */
export function placeholderFacts(j: Join, now: string): Facts {
  return {
    hostname: j.hostname.toLowerCase(),
    machineId: j.fingerprint.machineId,
    cpu: { cores: 1, physicalCores: 0, model: '' },
    memory: { totalBytes: 0 },
    disks: [],
    os: { platform: '', distro: '', release: '', kernel: '', arch: '' },
    network: [],
    gpus: [],
    virtualization: { virtual: false },
    binaries: {},
    collectedAt: now,
  };
}

export interface JoinPorts {
  nodes: NodeRegistry;
  events: EventLog;
  clock: Clock;
  log: Logger;
  signingKey: SigningKeyPair;
  tokens: {
    check(id: string): UseVerdict;
    /** counts a use; says whether hosts joined with it wait for an operator's approval */
    use(id: string, nodeId: string): Promise<{ requireApproval: boolean }>;
    /** cuts an ended token's bootstrap user off the bus (after the reply went out) */
    revokeEnded(id: string): Promise<void>;
  };
  /** mints the node's user JWT for `userKey` */
  nodeUser(nodeId: string, userKey: string): Promise<{ jwt: string }>;
  /** revokes an old bus key of the node (it joined again with a new one) and pushes the account */
  revokeKey(userKey: string): Promise<void>;
  maxPendingNodes: number;
  /** shared with registrations (coordinator/nats.ts) */
  limiter: TokenBucket;
}

/** The `nodeId`, `nonce` and `userKey` a body claims, when they look right; for the refusal's fields. */
function claimed(data: Uint8Array): { nodeId: string; nonce: string; userKey: string } {
  let o: Record<string, unknown> = {};
  try {
    const v = JSON.parse(new TextDecoder().decode(data)) as unknown;
    if (v && typeof v === 'object') o = v as Record<string, unknown>;
  } catch {}
  const pick = (k: string, re: RegExp) =>
    typeof o[k] === 'string' && re.test(o[k] as string) ? (o[k] as string) : '';
  return {
    nodeId: pick('nodeId', /^[A-Za-z0-9_-]{1,128}$/) || 'unknown',
    nonce: pick('nonce', /^[A-Za-z0-9_-]{1,64}$/),
    userKey: pick('userKey', /^U[A-Z2-7]{55}$/),
  };
}

export interface JoinOutcome {
  reply: JoinReply;
  afterReply: () => Promise<void>;
}

export class JoinHandler {
  constructor(private readonly p: JoinPorts) {}

  private pendingCount(): number {
    let n = 0;
    for (const r of this.p.nodes.all())
      if (r.state !== 'Removed' && this.p.nodes.effectiveState(r) === 'Pending') n++;
    return n;
  }

  private refuse(
    to: { nodeId: string; nonce: string; userKey: string },
    code: JoinCode,
    message: string,
  ): JoinReply {
    return signJoinReply(
      {
        v: PROTOCOL_VERSION,
        type: 'join-reply',
        ok: false,
        nodeId: to.nodeId,
        nonce: to.nonce,
        userKey: to.userKey,
        error: { code, message: message.slice(0, 1024) },
      },
      this.p.signingKey,
    );
  }

  /**
   * Never throws: every outcome is a signed JoinReply. Send it, then run `afterReply` (it revokes
   * the token's bootstrap user when the token ran out, which disconnects the joining host).
   */
  async handle(subjectTokenId: string, data: Uint8Array): Promise<JoinOutcome> {
    const reply = await this.decide(subjectTokenId, data);
    return {
      reply,
      afterReply: async () => {
        try {
          if (this.p.tokens.check(subjectTokenId).ok) return;
          await this.p.tokens.revokeEnded(subjectTokenId);
        } catch (err) {
          this.p.log.warn(
            { err, tokenId: subjectTokenId },
            'cannot revoke an ended join token on the bus; the sweep retries',
          );
        }
      },
    };
  }

  private async decide(subjectTokenId: string, data: Uint8Array): Promise<JoinReply> {
    const who = claimed(data);
    if (!this.p.limiter.take()) {
      const ms = this.p.limiter.retryAfterMs();
      return this.refuse(
        who,
        'DROVER_ERR_JOIN_RATE_LIMITED',
        `too many joins and registrations per second (registrationRate ${this.p.limiter.ratePerSec}/s, burst ${this.p.limiter.burst}); retry in ${Math.max(1, Math.ceil(ms / 1000))}s`,
      );
    }
    let j: Join;
    try {
      j = decodeMessage('Join', data);
      const p = nodeTextProblem({ id: j.nodeId, address: j.address, hostname: j.hostname });
      if (p) throw new Error(`/${p.field}: ${p.message}`);
    } catch (err) {
      this.p.log.warn({ tokenId: subjectTokenId, err: (err as Error).message }, 'refused a malformed join');
      return this.refuse(
        who,
        'DROVER_ERR_DECODE',
        `the join request is malformed: ${(err as Error).message}`,
      );
    }
    try {
      return await this.admit(subjectTokenId, j);
    } catch (err) {
      this.p.log.error({ err, tokenId: subjectTokenId, nodeId: j.nodeId }, 'join failed');
      return this.refuse(
        { nodeId: j.nodeId, nonce: j.nonce, userKey: j.userKey },
        'DROVER_ERR_BUS_UNAVAILABLE',
        `the coordinator could not complete the join: ${(err as Error).message}; retry`,
      );
    }
  }

  private async admit(subjectTokenId: string, j: Join): Promise<JoinReply> {
    const to = { nodeId: j.nodeId, nonce: j.nonce, userKey: j.userKey };
    const existing = this.p.nodes.get(j.nodeId);
    const refusal = joinVerdict({
      subjectTokenId,
      join: j,
      token: this.p.tokens.check(subjectTokenId),
      existing,
      pendingCount: this.pendingCount(),
      maxPending: this.p.maxPendingNodes,
    });
    if (refusal) {
      this.p.log.warn({ tokenId: subjectTokenId, nodeId: j.nodeId, code: refusal.code }, refusal.message);
      if (refusal.event)
        this.p.events.emit({ ...refusal.event, nodeId: j.nodeId, data: { tokenId: subjectTokenId } });
      return this.refuse(to, refusal.code, refusal.message);
    }
    const { jwt } = await this.p.nodeUser(j.nodeId, j.userKey);
    // the use is counted before anything else changes: a token that ran out admits nobody more
    const { requireApproval } = await this.p.tokens.use(subjectTokenId, j.nodeId);
    const now = new Date(this.p.clock.now()).toISOString();
    const ex = existing && existing.state !== 'Removed' ? existing : undefined;
    let rec: NodeRecord;
    if (ex) {
      rec = {
        ...ex,
        busKey: j.userKey,
        joinedWith: subjectTokenId,
        // a node approved already stays so; one still waiting waits for an operator now
        ...(requireApproval && !ex.approved ? { awaitingApproval: true } : {}),
      };
      if (ex.busKey && ex.busKey !== j.userKey)
        await this.p
          .revokeKey(ex.busKey)
          .catch((err) =>
            this.p.log.error(
              { err, nodeId: j.nodeId },
              'cannot revoke the old bus key of a node that joined again',
            ),
          );
    } else {
      if (existing) await this.p.nodes.forget(j.nodeId);
      rec = {
        ...NodeRegistry.newRecord({
          id: j.nodeId,
          hostname: j.hostname.toLowerCase(),
          address: j.address,
          labels: {},
          facts: placeholderFacts(j, now),
          fingerprint: j.fingerprint,
          approved: false,
          now,
        }),
        busKey: j.userKey,
        joinedWith: subjectTokenId,
        joinedOnly: true,
        ...(requireApproval ? { awaitingApproval: true } : {}),
      };
    }
    await this.p.nodes.save(rec);
    if (rec.awaitingApproval)
      this.p.events.emit({
        kind: 'node.awaiting-approval',
        severity: 'info',
        nodeId: j.nodeId,
        message: `node ${j.nodeId} (${j.hostname}, ${j.address}) joined with token ${subjectTokenId}, which requires approval: it waits Pending — check its fingerprint (\`drover describe node ${j.nodeId}\`), then \`drover approve ${j.nodeId}\``,
        data: { tokenId: subjectTokenId },
      });
    this.p.events.emit({
      kind: 'node.join-token-used',
      severity: 'info',
      nodeId: j.nodeId,
      message: `node ${j.nodeId} (${j.hostname}, ${j.address}) joined with token ${subjectTokenId}${ex ? ' again (new bus credentials; the old ones are revoked)' : ''}; it registers next`,
      data: { tokenId: subjectTokenId },
    });
    return signJoinReply(
      {
        v: PROTOCOL_VERSION,
        type: 'join-reply',
        ok: true,
        nodeId: j.nodeId,
        nonce: j.nonce,
        userKey: j.userKey,
        state: this.p.nodes.effectiveState(rec),
        userJwt: jwt,
      },
      this.p.signingKey,
    );
  }
}
