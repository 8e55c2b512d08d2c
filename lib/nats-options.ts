import { readFileSync } from 'node:fs';
import { type Authenticator, type ConnectionOptions, credsAuthenticator, nkeyAuthenticator } from 'nats';

/** How a daemon reaches NATS: the part of its configuration both daemons share. */
export interface NatsSettings {
  readonly servers: readonly string[];
  readonly token?: string;
  readonly user?: string;
  readonly password?: string;
  /** an nkey seed (SU…) */
  readonly nkeySeed?: string;
  /** a .creds file (JWT + seed), read again on every connect so a rotated file is picked up */
  readonly credsFile?: string;
  /** PEM files; present (even empty) means the connection must use TLS */
  readonly tls?: { readonly ca?: string; readonly cert?: string; readonly key?: string };
}

/** What differs between the daemons: the name, the reconnect pacing and a few knobs. */
export interface NatsTuning {
  /** the connection's name, as the server's monitoring (`/connz`) shows it */
  name: string;
  /**
   * The wait between reconnect attempts: a function the client asks before each attempt (the
   * agent's outage-aged backoff), or a fixed wait plus random jitter (the coordinator).
   */
  reconnect: { delayMs: () => number } | { waitMs: number; jitterMs: number };
  /** unanswered pings before the connection counts as stale (nats.js default 2) */
  maxPingOut?: number;
  /** how long one connect attempt may take (nats.js default 20 s) */
  connectTimeoutMs?: number;
  /** skip the stack trace nats.js captures per request (costly at thousands of requests) */
  noAsyncTraces?: boolean;
  /**
   * the inbox prefix replies come back under: a node's `_INBOX_<id>` (only it may subscribe
   * there), a joining host's `_INBOX_join_<token>`; default nats.js's `_INBOX`
   */
  inboxPrefix?: string;
}

/**
 * nats.js connection options for either daemon: reconnect forever, ping every 10 s, the
 * credentials (token, user and password, nkey, creds file) and TLS files passed through.
 */
export function natsConnectOptions(s: NatsSettings, t: NatsTuning): ConnectionOptions {
  const o: ConnectionOptions = {
    servers: [...s.servers],
    name: t.name,
    reconnect: true,
    maxReconnectAttempts: -1,
    pingInterval: 10_000,
  };
  if ('delayMs' in t.reconnect) o.reconnectDelayHandler = t.reconnect.delayMs;
  else {
    o.reconnectTimeWait = t.reconnect.waitMs;
    o.reconnectJitter = t.reconnect.jitterMs;
  }
  if (t.maxPingOut !== undefined) o.maxPingOut = t.maxPingOut;
  if (t.connectTimeoutMs !== undefined) o.timeout = t.connectTimeoutMs;
  if (t.noAsyncTraces) o.noAsyncTraces = true;
  if (t.inboxPrefix) o.inboxPrefix = t.inboxPrefix;
  if (s.token) o.token = s.token;
  if (s.user) o.user = s.user;
  if (s.password) o.pass = s.password;
  const auth: Authenticator[] = [];
  if (s.nkeySeed) auth.push(nkeyAuthenticator(new TextEncoder().encode(s.nkeySeed)));
  if (s.credsFile) {
    const path = s.credsFile;
    auth.push(credsAuthenticator(() => new Uint8Array(readFileSync(path))));
  }
  if (auth.length === 1) o.authenticator = auth[0];
  else if (auth.length > 1) o.authenticator = auth;
  if (s.tls) {
    o.tls = {
      ...(s.tls.ca ? { caFile: s.tls.ca } : {}),
      ...(s.tls.cert ? { certFile: s.tls.cert } : {}),
      ...(s.tls.key ? { keyFile: s.tls.key } : {}),
    };
  }
  return o;
}
