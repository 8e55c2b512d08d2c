/**
 * What a new host needs to join the fleet: the agents' NATS URL(s), a per-host join token (which
 * carries the bus CA for NATS TLS) and the fingerprint of the plan-signing key, and the `drover-agent join` one-liner.
 * Shared by `drover join-command` on the coordinator host (reading the coordinator's config) and
 * the API's `GET /v1/join-command` (which the CLI uses from anywhere, e.g. in the lab).
 */
import { networkInterfaces } from 'node:os';

export interface JoinCommandParts {
  natsUrl: string;
  /** a per-host join token (`drover-join-v1.…`, which carries the bus CA) */
  joinToken: string;
  /** a CA file on the new host, for a bus whose CA the token does not carry */
  caFile?: string;
  /** sha256 hex of the coordinator's plan-signing key, so the agent pins it at join */
  coordinatorKeyFingerprint?: string;
}

/** Quotes a word for a POSIX shell only when it needs it. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9@%+=:,./_-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The one-liner, e.g. `drover-agent join --server nats://10.0.0.1:4222 --token abc`. */
export function formatJoinCommand(parts: JoinCommandParts): string {
  if (!parts.natsUrl.trim()) throw new TypeError('formatJoinCommand: natsUrl is empty');
  if (!parts.joinToken.trim()) throw new TypeError('formatJoinCommand: joinToken is empty');
  const words = ['drover-agent', 'join', '--server', parts.natsUrl, '--token', parts.joinToken];
  if (parts.caFile) words.push('--ca', parts.caFile);
  if (parts.coordinatorKeyFingerprint)
    words.push('--coordinator-key-fingerprint', parts.coordinatorKeyFingerprint);
  return words.map((w, i) => (i < 2 ? w : shellQuote(w))).join(' ');
}

export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host.startsWith('127.') || host === '[::1]' || host === '::1';
}

export function defaultHostAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces()))
    for (const a of list ?? []) if (!a.internal && a.family === 'IPv4') out.push(a.address);
  return out;
}

/**
 * The NATS URLs for agents: the coordinator's own, with a loopback host replaced by this host's
 * first other address (other hosts cannot use loopback); `note` says so. Without another address
 * the loopback URL is kept when `keepLoopback` (a single-machine lab) and refused otherwise.
 */
export function agentNatsUrls(
  servers: string[],
  hostAddresses: string[],
  note: (text: string) => void,
  opts: { keepLoopback?: boolean } = {},
): string {
  const hostAddr = hostAddresses[0];
  const urls = servers.map((s) => {
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      return s;
    }
    if (!isLoopbackHost(u.hostname)) return s;
    if (!hostAddr) {
      if (opts.keepLoopback) {
        note(`${s} is a loopback address: only agents on this host can use it`);
        return s;
      }
      throw new Error(
        `the coordinator reaches NATS at ${s}, a loopback address other hosts cannot use, and this ` +
          'host has no other address; pass --server nats://ADDRESS:PORT',
      );
    }
    u.hostname = hostAddr;
    note(`${s} is a loopback address; printing ${hostAddr} instead (pass --server to choose)`);
    return u.toString().replace(/\/$/, '');
  });
  return [...new Set(urls)].join(',');
}
