/**
 * Pushes the DROVER account JWT (with its revocations) to nats-server over the system account
 * (`$SYS.REQ.CLAIMS.UPDATE`): the `full` resolver stores it and disconnects every user it now
 * revokes, at once, with no reload. The port is small on purpose: `push()` resolves when the
 * server answered code 200 and throws a BusPushError saying what went wrong otherwise.
 */
import { readFileSync } from 'node:fs';
import { type ConnectionOptions, connect, credsAuthenticator, type NatsConnection } from 'nats';
import type { Logger } from '../../lib/logger.js';

export const CLAIMS_UPDATE_SUBJECT = '$SYS.REQ.CLAIMS.UPDATE';

export class BusPushError extends Error {
  override name = 'BusPushError';
}

export interface AccountPush {
  /** pushes the current account JWT; throws BusPushError unless the server answered 200 */
  push(): Promise<void>;
  close(): Promise<void>;
}

export interface AccountPushOptions {
  servers: readonly string[];
  /** `BusAuth.systemCredsFile` */
  systemCredsFile: string;
  /** the bus CA (PEM file) when nats-server uses TLS */
  tlsCaFile?: string;
  /** `() => auth.accountJwt()` */
  accountJwt: () => Promise<string>;
  logger: Logger;
  timeoutMs?: number;
}

/** The server's answer: `{data:{code:200,message}}` or `{error:{code,description}}`. */
export function claimsUpdateProblem(body: Uint8Array): string | undefined {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder().decode(body));
  } catch {
    return 'nats-server answered the account update with something that is not JSON';
  }
  const o = v as {
    data?: { code?: unknown; message?: unknown };
    error?: { code?: unknown; description?: unknown };
  };
  if (o?.error)
    return `nats-server refused the account update: ${o.error.code ?? '?'} ${o.error.description ?? ''}`.trim();
  if (o?.data?.code === 200) return undefined;
  return `nats-server answered the account update with code ${String(o?.data?.code ?? '?')}: ${String(o?.data?.message ?? '')}`;
}

/** A system-account connection, made on first push and kept (it reconnects by itself). */
export function accountPush(o: AccountPushOptions): AccountPush {
  let nc: Promise<NatsConnection> | undefined;
  const opts = (): ConnectionOptions => ({
    servers: [...o.servers],
    name: 'drover-coordinator-sys',
    authenticator: credsAuthenticator(() => new Uint8Array(readFileSync(o.systemCredsFile))),
    reconnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    ...(o.tlsCaFile ? { tls: { caFile: o.tlsCaFile } } : {}),
  });
  const connection = (): Promise<NatsConnection> => {
    nc ??= connect(opts()).catch((err) => {
      nc = undefined;
      throw new BusPushError(
        `cannot connect to nats-server with the system credentials ${o.systemCredsFile}: ${(err as Error).message}`,
      );
    });
    return nc;
  };
  return {
    async push() {
      const c = await connection();
      const jwt = await o.accountJwt();
      let reply: Uint8Array;
      try {
        reply = (
          await c.request(CLAIMS_UPDATE_SUBJECT, new TextEncoder().encode(jwt), {
            timeout: o.timeoutMs ?? 5000,
          })
        ).data;
      } catch (err) {
        throw new BusPushError(
          `the account update on ${CLAIMS_UPDATE_SUBJECT} got no answer: ${(err as Error).message}`,
        );
      }
      const problem = claimsUpdateProblem(reply);
      if (problem) throw new BusPushError(problem);
      o.logger.debug('account JWT pushed to nats-server');
    },
    async close() {
      const c = await nc?.catch(() => undefined);
      nc = undefined;
      if (c && !c.isClosed()) await c.close().catch(() => {});
    },
  };
}
