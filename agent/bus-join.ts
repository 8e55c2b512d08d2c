/**
 * The agent's side of joining (issue 15, points 3–5): with a per-host join token and no node
 * credentials yet (`<dataDir>/bus.creds`), the agent
 * 1. decodes the token (refusing a damaged one, or one past its own expiry, at once);
 * 2. makes its own nkey user — the seed never leaves this host;
 * 3. connects with the token's bootstrap user (which may only publish its join subject and read
 *    `_INBOX_join_<token>`), over TLS with the token's CA unless `nats.tls.ca` is configured;
 * 4. sends `Join` and checks the signed `JoinReply` against the pinned coordinator key
 *    (`coordinatorKeyFingerprint`; trust on first use only with insecureTrustFirstCoordinator);
 * 5. writes `<dataDir>/bus.creds` (mode 0600) and pins the coordinator key.
 * Transient trouble (the bus or the coordinator away, rate limits) is retried with backoff; a
 * refusal that a retry cannot change (bad, expired, used-up or revoked token; a reply not signed
 * by the pinned key) throws DROVER_ERR_JOIN_FAILED and leaves no credentials behind.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fmtCreds } from '@nats-io/jwt';
import { createUser } from '@nats-io/nkeys';
import { connect, ErrorCode, jwtAuthenticator, type NatsConnection, type NatsError } from 'nats';
import type { Logger } from 'pino';
import { writeFileAtomic } from '../lib/atomic-file.js';
import { Backoff } from '../lib/backoff.js';
import { type Clock, systemClock } from '../lib/clock.js';
import { componentLogger } from '../lib/logger.js';
import { DROVER_VERSION } from '../lib/version.js';
import {
  bootstrapInboxPrefix,
  decodeJoinToken,
  decodeMessage,
  encode,
  type Facts,
  type Fingerprint,
  type Join,
  type JoinReply,
  type JoinTokenBlob,
  PROTOCOL_VERSION,
  subjects,
  verifyJoinReply,
} from '../protocol/index.js';
import { AgentError } from './errors.js';
import { defaultAdvertiseAddress, type Identity } from './identity.js';
import type { KeyPin } from './keys.js';
import type { AgentOptions } from './options.js';

export const BUS_CREDS_FILE = 'bus.creds';
export const BUS_CA_FILE = 'bus-ca.crt';

export const busCredsPath = (dataDir: string) => join(dataDir, BUS_CREDS_FILE);
export const busCaPath = (dataDir: string) => join(dataDir, BUS_CA_FILE);

const NEW_TOKEN =
  'a new token is needed: `drover token create --join` (or `drover join-command`) on the coordinator';

export interface BusJoinInput {
  token: string;
  dataDir: string;
  servers: readonly string[];
  /** `nats.tls.ca` when configured: wins over the CA the token carries */
  tlsCa?: string;
  nodeId: string;
  hostname: string;
  address: string;
  fingerprint: Fingerprint;
  agentVersion: string;
  pin: KeyPin;
  /** insecureTrustFirstCoordinator */
  allowTrustOnFirstUse: boolean;
  logger: Logger;
  clock?: Clock;
  /** aborts the retries (the agent closes) */
  signal?: AbortSignal;
  requestTimeoutMs?: number;
  /** the first retry wait; default 500 ms (doubling to 30 s) */
  retryInitialMs?: number;
}

export interface BusJoinResult {
  credsFile: string;
  /** the CA the bus is verified with (configured, or written from the token) */
  caFile?: string;
  nodeId: string;
  state?: string;
}

/** A failure a retry can mend (bus or coordinator away, rate limited). */
class TransientJoinError extends Error {}

function failed(message: string): AgentError {
  return new AgentError('DROVER_ERR_JOIN_FAILED', message);
}

/** Whether nats.js says the server refused the credentials. */
export function isAuthError(err: unknown): boolean {
  const e = err as NatsError | undefined;
  return (
    e?.code === ErrorCode.AuthorizationViolation ||
    e?.code === ErrorCode.AuthenticationExpired ||
    /authorization violation|authentication expired|authentication revoked|user authentication revoked/i.test(
      e?.message ?? '',
    )
  );
}

/** Decodes the token and checks its own expiry; throws DROVER_ERR_JOIN_FAILED saying what is wrong. */
export function checkedJoinToken(raw: string, now: number): JoinTokenBlob {
  let blob: JoinTokenBlob;
  try {
    blob = decodeJoinToken(raw);
  } catch (err) {
    throw failed(`joinToken: ${(err as Error).message}`);
  }
  if (Date.parse(blob.expiresAt) <= now)
    throw failed(`join token ${blob.id} expired at ${blob.expiresAt}; ${NEW_TOKEN}`);
  return blob;
}

/** Joins the bus (see the file comment); resolves when `<dataDir>/bus.creds` is written. */
export async function joinBus(i: BusJoinInput): Promise<BusJoinResult> {
  const clock = i.clock ?? systemClock;
  const log = i.logger;
  const blob = checkedJoinToken(i.token, clock.now());
  i.pin.requirePinOrTofu();
  const pinned = i.pin.expectedFingerprint();
  if (!pinned)
    log.warn(
      { tokenId: blob.id },
      'INSECURE: joining without coordinatorKeyFingerprint (insecureTrustFirstCoordinator): this agent trusts whichever coordinator key answers first; a rogue responder on the bus could take this host over. Pin the key: --coordinator-key-fingerprint (drover join-command prints it)',
    );
  let caFile = i.tlsCa;
  if (!caFile && blob.ca) {
    caFile = busCaPath(i.dataDir);
    await writeFileAtomic(caFile, blob.ca.endsWith('\n') ? blob.ca : `${blob.ca}\n`, 0o644);
  }
  const user = createUser();
  const userKey = user.getPublicKey();
  const backoff = new Backoff({ initialMs: i.retryInitialMs ?? 500, maxMs: 30_000, jitter: 0.2 });
  for (let attempt = 1; ; attempt++) {
    if (i.signal?.aborted) throw failed('the join was cancelled (the agent is closing)');
    try {
      const reply = await joinOnce(i, blob, userKey, caFile, pinned);
      const credsFile = busCredsPath(i.dataDir);
      await writeFileAtomic(credsFile, new TextDecoder().decode(fmtCreds(reply.userJwt!, user)), 0o600);
      await i.pin.accept(reply.signingKey);
      log.info(
        { tokenId: blob.id, credsFile, state: reply.state, keyFingerprint: reply.keyFingerprint },
        'joined the bus: this node has its own credentials now',
      );
      return { credsFile, caFile, nodeId: reply.nodeId, state: reply.state };
    } catch (err) {
      if (!(err instanceof TransientJoinError)) throw err;
      const delay = backoff.next();
      log.warn({ tokenId: blob.id, attempt, err: err.message, retryInMs: delay }, 'join failed; retrying');
      await new Promise<void>((resolve) => {
        const t = clock.setTimeout(done, delay);
        function done() {
          i.signal?.removeEventListener('abort', done);
          clock.clearTimeout(t);
          resolve();
        }
        i.signal?.addEventListener('abort', done, { once: true });
      });
    }
  }
}

async function joinOnce(
  i: BusJoinInput,
  blob: JoinTokenBlob,
  userKey: string,
  caFile: string | undefined,
  pinned: string | undefined,
): Promise<JoinReply> {
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: [...i.servers],
      name: `drover-agent-join-${i.nodeId}`,
      authenticator: jwtAuthenticator(blob.jwt, new TextEncoder().encode(blob.seed)),
      inboxPrefix: bootstrapInboxPrefix(blob.id),
      reconnect: false,
      timeout: 5000,
      ...(caFile ? { tls: { caFile } } : {}),
    });
  } catch (err) {
    if (isAuthError(err))
      throw failed(
        `the bus refused join token ${blob.id} (${(err as Error).message}): the token is expired, used up or revoked; ${NEW_TOKEN}`,
      );
    throw new TransientJoinError(`cannot connect to ${i.servers.join(',')}: ${(err as Error).message}`);
  }
  try {
    const nonce = randomBytes(18).toString('base64url');
    const msg: Join = {
      v: PROTOCOL_VERSION,
      type: 'join',
      tokenId: blob.id,
      nodeId: i.nodeId,
      hostname: i.hostname,
      address: i.address,
      fingerprint: i.fingerprint,
      userKey,
      nonce,
      agentVersion: i.agentVersion.slice(0, 64),
    };
    let data: Uint8Array;
    try {
      data = (
        await nc.request(subjects.join(blob.id), encode(msg), { timeout: i.requestTimeoutMs ?? 10_000 })
      ).data;
    } catch (err) {
      if (isAuthError(err))
        throw failed(
          `the bus refused join token ${blob.id}'s request (${(err as Error).message}); ${NEW_TOKEN}`,
        );
      throw new TransientJoinError(`no answer to the join request: ${(err as Error).message}`);
    }
    let reply: JoinReply;
    try {
      reply = decodeMessage('JoinReply', data);
    } catch (err) {
      throw new TransientJoinError(`the join reply does not decode: ${(err as Error).message}`);
    }
    try {
      verifyJoinReply(reply, { nonce, userKey, pinnedFingerprint: pinned });
    } catch (err) {
      throw failed(`${(err as Error).message}; no credentials were written`);
    }
    if (!reply.ok) {
      const code = reply.error?.code ?? 'DROVER_ERR_JOIN_REFUSED';
      const message = reply.error?.message ?? reply.reason ?? 'no reason given';
      if (code === 'DROVER_ERR_JOIN_RATE_LIMITED' || code === 'DROVER_ERR_BUS_UNAVAILABLE')
        throw new TransientJoinError(`${code}: ${message}`);
      throw failed(`the coordinator refused the join (${code}): ${message}`);
    }
    if (!reply.userJwt) throw failed('the coordinator accepted the join but sent no credentials');
    return reply;
  } finally {
    await nc.close().catch(() => {});
  }
}

/** Whether node credentials exist already (the join is done). */
export function hasBusCreds(dataDir: string): boolean {
  return existsSync(busCredsPath(dataDir));
}

/**
 * The bus settings a node's session connects with: `nats.credsFile` when configured; else the
 * node's own `<dataDir>/bus.creds` (and the bus CA the join wrote), joining first with the
 * configured join token when there are none yet (or `rejoin`: the bus refused them). Without a
 * token or creds: the settings as configured.
 */
export async function nodeBusSettings(p: {
  opts: AgentOptions;
  rejoin: boolean;
  log: Logger;
  facts: () => Promise<Facts>;
  identity: Identity;
  pin: KeyPin;
  clock: Clock;
  signal: AbortSignal;
}): Promise<AgentOptions['nats']> {
  const o = p.opts;
  if (o.nats.credsFile) return o.nats;
  const creds = busCredsPath(o.dataDir);
  const withCreds = (): AgentOptions['nats'] => {
    const ca = o.nats.tls?.ca ?? (existsSync(busCaPath(o.dataDir)) ? busCaPath(o.dataDir) : undefined);
    return { ...o.nats, credsFile: creds, ...(ca ? { tls: { ...o.nats.tls, ca } } : {}) };
  };
  if (!p.rejoin && existsSync(creds)) return withCreds();
  if (!o.joinToken) {
    p.log.warn(
      { credsFile: creds },
      'no node credentials and no joinToken: connecting without credentials (a bus with authorisation refuses this; join with `drover-agent join --token …`)',
    );
    return o.nats;
  }
  if (p.rejoin) p.log.warn({ credsFile: creds }, 'joining again with the configured join token');
  const facts = await p.facts();
  await joinBus({
    token: o.joinToken,
    dataDir: o.dataDir,
    servers: o.nats.servers,
    tlsCa: o.nats.tls?.ca,
    nodeId: p.identity.nodeId,
    hostname: facts.hostname,
    address: o.advertiseAddress ?? defaultAdvertiseAddress(),
    fingerprint: p.identity.fingerprint,
    agentVersion: DROVER_VERSION,
    pin: p.pin,
    allowTrustOnFirstUse: o.insecureTrustFirstCoordinator,
    logger: componentLogger(p.log, 'join'),
    clock: p.clock,
    signal: p.signal,
  });
  return withCreds();
}
