export { canonicalJson, sha256Hex } from './canonical.js';
export type { MessageName, MessageOf } from './codec.js';
export { decode, decodeMessage, decodeValue, encode, isValid, MESSAGE_SCHEMAS } from './codec.js';
export type { ErrorSpec, ProtocolErrorCode } from './errors.js';
export {
  DecodeError,
  DroverError,
  PROTOCOL_ERRORS,
  SignatureError,
  TerminalError,
} from './errors.js';
export * from './join-token.js';
export * from './node-input.js';
export * from './schemas/common.js';
export * from './schemas/facts.js';
export * from './schemas/messages.js';
export * from './schemas/plan.js';
export type { SigningKeyPair } from './signing.js';
export {
  generateSigningKey,
  instanceChecksum,
  isReloadOnly,
  joinReplySigningBytes,
  keyFingerprintFromB64,
  planChecksum,
  planSigningBytes,
  publicKeyFromB64,
  sealPlan,
  signingKeyFromPem,
  signingKeyToPem,
  signJoinReply,
  signPlan,
  signTask,
  taskSigningBytes,
  verifyJoinReply,
  verifyPlan,
  verifyTask,
} from './signing.js';
export {
  bootstrapInboxPrefix,
  isValidSubjectToken,
  natsPermissionsForNode,
  nodeIdFromSubject,
  nodeInboxPrefix,
  SUBJECT_PREFIX,
  subjects,
} from './subjects.js';
export { TASK_CLOCK_SKEW_MS, TASK_MAX_WINDOW_MS, TASK_REPLY_MARGIN_MS } from './task-window.js';
export { PROTOCOL_VERSION, SUPPORTED_VERSIONS } from './version.js';
