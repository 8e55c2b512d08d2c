/**
 * The join token a host is given (`drover token create --join`): one string that carries what
 * the host needs to ask to join and nothing more — the token id, the bootstrap user's JWT and
 * nkey seed (which may only publish `drover.v1.join.<id>` and expire with the token), and the bus
 * CA that signs the nats-server certificate. It is a secret: whoever holds it may join a host
 * (once, by default). The coordinator key fingerprint travels separately (`drover join-command`
 * prints it), so a forged token cannot make the agent trust another coordinator.
 */
export const JOIN_TOKEN_PREFIX = 'drover-join-v1.';
/** a token is a few KiB (the JWT and the CA certificate); refuse anything far bigger */
export const JOIN_TOKEN_MAX_LENGTH = 16 * 1024;

export interface JoinTokenBlob {
  /** the token id (lowercase letters and digits): the subject token of its join subject */
  id: string;
  /** the bootstrap user JWT */
  jwt: string;
  /** the bootstrap user's nkey seed (SU…) */
  seed: string;
  /** the bus CA certificate (PEM), when the bus uses TLS */
  ca?: string;
  /** when the token expires (ISO 8601) */
  expiresAt: string;
}

export class JoinTokenError extends Error {
  override name = 'JoinTokenError';
}

const ID = /^[a-z0-9]{6,32}$/;

export function encodeJoinToken(b: JoinTokenBlob): string {
  if (!ID.test(b.id))
    throw new JoinTokenError(`join token id ${JSON.stringify(b.id)} is not 6-32 lowercase letters or digits`);
  const body = { id: b.id, jwt: b.jwt, seed: b.seed, expiresAt: b.expiresAt, ...(b.ca ? { ca: b.ca } : {}) };
  return `${JOIN_TOKEN_PREFIX}${Buffer.from(JSON.stringify(body)).toString('base64url')}`;
}

/** Decodes and checks a join token's shape; throws JoinTokenError saying what is wrong. */
export function decodeJoinToken(raw: string): JoinTokenBlob {
  const s = raw.trim();
  if (s.length > JOIN_TOKEN_MAX_LENGTH)
    throw new JoinTokenError(`the join token is longer than ${JOIN_TOKEN_MAX_LENGTH} characters`);
  if (!s.startsWith(JOIN_TOKEN_PREFIX))
    throw new JoinTokenError(
      `the join token does not start with ${JOIN_TOKEN_PREFIX} (old shared tokens are gone: create one with \`drover token create --join\`)`,
    );
  const b64 = s.slice(JOIN_TOKEN_PREFIX.length);
  if (!/^[A-Za-z0-9_-]+$/.test(b64))
    throw new JoinTokenError('the join token is not base64url after its prefix');
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(b64, 'base64url').toString('utf8'));
  } catch {
    throw new JoinTokenError('the join token is damaged (its body is not JSON); copy it again');
  }
  const o = v as Partial<Record<keyof JoinTokenBlob, unknown>> | null;
  if (!o || typeof o !== 'object') throw new JoinTokenError('the join token is damaged (not an object)');
  if (typeof o.id !== 'string' || !ID.test(o.id)) throw new JoinTokenError('the join token has no valid id');
  if (typeof o.jwt !== 'string' || !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(o.jwt))
    throw new JoinTokenError('the join token has no valid bootstrap JWT');
  if (typeof o.seed !== 'string' || !/^SU[A-Z2-7]{56}$/.test(o.seed))
    throw new JoinTokenError('the join token has no valid bootstrap nkey seed');
  if (typeof o.expiresAt !== 'string' || Number.isNaN(Date.parse(o.expiresAt)))
    throw new JoinTokenError('the join token has no valid expiry');
  if (o.ca !== undefined && (typeof o.ca !== 'string' || !o.ca.includes('-----BEGIN CERTIFICATE-----')))
    throw new JoinTokenError('the join token carries a CA that is not a PEM certificate');
  return {
    id: o.id,
    jwt: o.jwt,
    seed: o.seed,
    expiresAt: o.expiresAt,
    ...(o.ca ? { ca: o.ca as string } : {}),
  };
}
