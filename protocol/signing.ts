import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import { canonicalJson, sha256Hex } from './canonical.js';
import { SignatureError } from './errors.js';
import type { JoinReply, SignedTask, Task } from './schemas/messages.js';
import type { InstanceSpec, NodePlan, SignedPlan } from './schemas/plan.js';
import { PROTOCOL_VERSION } from './version.js';

/** Content checksum of one instance: everything that affects what runs, so not `checksum` or `epoch`. */
export function instanceChecksum(spec: Omit<InstanceSpec, 'checksum'> & { checksum?: string }): string {
  const { checksum: _c, epoch: _e, ...content } = spec;
  return sha256Hex(canonicalJson(content));
}

/**
 * True when the change from `before` to `after` (one instance) is a reload, not a restart: the
 * instance names a `run.reloadSignal` and only its files differ. The agent applies such a change
 * by rewriting the files and signalling the process; the coordinator's rollout gate does not hold
 * it back, since nothing stops serving.
 */
export function isReloadOnly(before: InstanceSpec, after: InstanceSpec): boolean {
  if (!after.run.reloadSignal) return false;
  const strip = ({ files: _f, checksum: _c, epoch: _e, ...rest }: InstanceSpec) => rest;
  return canonicalJson(strip(before)) === canonicalJson(strip(after));
}

/**
 * Content checksum of a plan: the node and, per instance, its id, epoch and content checksum.
 * Generation, coordinator epoch and issue time are not content, so re-issuing identical content
 * gives the same checksum; the signature covers them. Building on the instance checksums (which
 * `verifyPlan` checks first) keeps sealing a plan cheap: no second pass over the content.
 */
export function planChecksum(plan: Pick<NodePlan, 'nodeId' | 'instances'>): string {
  return sha256Hex(
    canonicalJson({
      nodeId: plan.nodeId,
      instances: plan.instances.map((i) => ({ id: i.id, epoch: i.epoch, checksum: i.checksum })),
    }),
  );
}

/**
 * Fills in instance and plan checksums. `checksumOf` lets a caller that seals the same instance
 * objects again and again (the coordinator) memoize `instanceChecksum`.
 */
export function sealPlan(
  plan: Omit<NodePlan, 'checksum' | 'instances'> & { instances: Array<Omit<InstanceSpec, 'checksum'>> },
  checksumOf: (i: Omit<InstanceSpec, 'checksum'>) => string = instanceChecksum,
): NodePlan {
  const instances = plan.instances.map((i) => ({ ...i, checksum: checksumOf(i) })) as InstanceSpec[];
  const sealed = { ...plan, instances, checksum: '' } as NodePlan;
  sealed.checksum = planChecksum(sealed);
  return sealed;
}

export interface SigningKeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** base64 of the SPKI DER public key: what agents pin */
  publicKeyB64: string;
  /** sha256 hex of the SPKI DER */
  fingerprint: string;
}

export function generateSigningKey(): SigningKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return describeKey(privateKey, publicKey);
}

export function signingKeyFromPem(privatePem: string): SigningKeyPair {
  const privateKey = createPrivateKey(privatePem);
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new TypeError('plan signing key must be ed25519');
  return describeKey(privateKey, createPublicKey(privateKey));
}

export function signingKeyToPem(key: SigningKeyPair): string {
  return key.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

function describeKey(privateKey: KeyObject, publicKey: KeyObject): SigningKeyPair {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return { privateKey, publicKey, publicKeyB64: der.toString('base64'), fingerprint: sha256Hex(der) };
}

export function publicKeyFromB64(b64: string): KeyObject {
  const key = createPublicKey({ key: Buffer.from(b64, 'base64'), format: 'der', type: 'spki' });
  if (key.asymmetricKeyType !== 'ed25519') throw new TypeError('plan signing key must be ed25519');
  return key;
}

export function keyFingerprintFromB64(b64: string): string {
  return sha256Hex(Buffer.from(b64, 'base64'));
}

/**
 * The bytes a plan's signature covers: the canonical JSON of the plan with each instance reduced to
 * `{id, epoch, checksum}`. Every field of the plan is covered — instance content through its
 * SHA-256 checksum, which `verifyPlan` recomputes before it checks the signature — yet signing and
 * verifying cost O(instances), not O(content): a coordinator signs thousands of plans a second.
 */
export function planSigningBytes(plan: NodePlan): Buffer {
  return Buffer.from(
    canonicalJson({
      ...plan,
      instances: plan.instances.map((i) => ({ id: i.id, epoch: i.epoch, checksum: i.checksum })),
    }),
  );
}

export function signPlan(plan: NodePlan, key: SigningKeyPair): SignedPlan {
  const signature = sign(null, planSigningBytes(plan), key.privateKey).toString('base64');
  return { v: PROTOCOL_VERSION, type: 'plan-push', plan, signature, keyId: key.fingerprint };
}

/**
 * Verifies checksum and signature. Throws SignatureError naming what is wrong; returns the plan.
 * Order matters: a missing signature is reported as such, not as a bad one.
 */
export function verifyPlan(signed: SignedPlan, publicKey: KeyObject): NodePlan {
  if (!signed.signature) throw new SignatureError('DROVER_ERR_PLAN_UNSIGNED', 'plan is not signed');
  const plan = signed.plan;
  for (const inst of plan.instances) {
    if (instanceChecksum(inst) !== inst.checksum) {
      throw new SignatureError(
        'DROVER_ERR_PLAN_CHECKSUM',
        `instance ${inst.id}: checksum does not match its content`,
      );
    }
  }
  if (planChecksum(plan) !== plan.checksum) {
    throw new SignatureError('DROVER_ERR_PLAN_CHECKSUM', 'plan checksum does not match its content');
  }
  let ok = false;
  try {
    ok = verify(null, planSigningBytes(plan), publicKey, Buffer.from(signed.signature, 'base64'));
  } catch {
    ok = false;
  }
  if (!ok)
    throw new SignatureError(
      'DROVER_ERR_PLAN_SIGNATURE',
      'plan signature does not verify against the pinned coordinator key',
    );
  return plan;
}

/** The bytes a task's signature covers: the canonical JSON of the whole task. */
export function taskSigningBytes(task: Task): Buffer {
  return Buffer.from(canonicalJson(task));
}

export function signTask(task: Task, key: SigningKeyPair): SignedTask {
  const signature = sign(null, taskSigningBytes(task), key.privateKey).toString('base64');
  return { v: PROTOCOL_VERSION, type: 'task-push', task, signature, keyId: key.fingerprint };
}

/**
 * Verifies a task's signature against the pinned key. Throws SignatureError naming what is
 * wrong; returns the task. The validity window, node id and replay checks are the agent's
 * (agent/task-guard.ts): they need its clock and its memory of seen tasks.
 */
export function verifyTask(signed: SignedTask, publicKey: KeyObject): Task {
  if (!signed.signature) throw new SignatureError('DROVER_ERR_TASK_UNSIGNED', 'task is not signed');
  let ok = false;
  try {
    ok = verify(null, taskSigningBytes(signed.task), publicKey, Buffer.from(signed.signature, 'base64'));
  } catch {
    ok = false;
  }
  if (!ok)
    throw new SignatureError(
      'DROVER_ERR_TASK_SIGNATURE',
      'task signature does not verify against the pinned coordinator key',
    );
  return signed.task;
}

/** The bytes a join reply's signature covers: the canonical JSON of every field but the signature. */
export function joinReplySigningBytes(reply: Omit<JoinReply, 'signature'>): Buffer {
  const { signature: _s, ...rest } = reply as JoinReply;
  return Buffer.from(canonicalJson(rest));
}

export function signJoinReply(
  reply: Omit<JoinReply, 'signature' | 'signingKey' | 'keyFingerprint'>,
  key: SigningKeyPair,
): JoinReply {
  const body = { ...reply, signingKey: key.publicKeyB64, keyFingerprint: key.fingerprint };
  return { ...body, signature: sign(null, joinReplySigningBytes(body), key.privateKey).toString('base64') };
}

/**
 * Checks a join reply: signed by the key it names, that key is the pinned one (when a pin is
 * given), and it answers this join (nonce and user key). Throws SignatureError naming the problem.
 */
export function verifyJoinReply(
  reply: JoinReply,
  expect: { nonce: string; userKey: string; pinnedFingerprint?: string },
): void {
  let key: KeyObject;
  try {
    key = publicKeyFromB64(reply.signingKey);
  } catch {
    throw new SignatureError('DROVER_ERR_JOIN_SIGNATURE', 'the join reply names no valid ed25519 key');
  }
  const fp = keyFingerprintFromB64(reply.signingKey);
  if (expect.pinnedFingerprint && fp !== expect.pinnedFingerprint)
    throw new SignatureError(
      'DROVER_ERR_JOIN_SIGNATURE',
      `the join reply is signed by key ${fp}, not the pinned coordinator key ${expect.pinnedFingerprint}: a rogue responder, or the wrong --coordinator-key-fingerprint`,
    );
  let ok = false;
  try {
    ok = verify(null, joinReplySigningBytes(reply), key, Buffer.from(reply.signature, 'base64'));
  } catch {
    ok = false;
  }
  if (!ok) throw new SignatureError('DROVER_ERR_JOIN_SIGNATURE', 'the join reply signature does not verify');
  if (reply.nonce !== expect.nonce || reply.userKey !== expect.userKey)
    throw new SignatureError(
      'DROVER_ERR_JOIN_SIGNATURE',
      'the join reply answers another join (nonce or key differ)',
    );
}
