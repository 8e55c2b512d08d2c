import { BlockList, isIP } from 'node:net';

/**
 * Who is asking: the socket's address, or, when that socket is a trusted reverse proxy
 * (`api.trustedProxies`), the address the proxies say they saw in `X-Forwarded-For`. Pure: the
 * API's auth hook calls it for every request; the failure limiter keys on its answer.
 */

/** `api.trustedProxies`, compiled once: IPs and CIDRs, IPv4 and IPv6. */
export interface TrustedProxies {
  readonly entries: readonly string[];
  has(ip: string): boolean;
}

/** `::ffff:10.0.0.1` (an IPv4 peer on a dual-stack socket) is `10.0.0.1`. */
function normalise(ip: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return m ? m[1]! : ip;
}

/** The reason `entry` is not an IP address or CIDR, or undefined when it is one. */
export function trustedProxyProblem(entry: string): string | undefined {
  const [addr, bits, extra] = entry.trim().split('/');
  const family = isIP(addr ?? '');
  if (extra !== undefined || family === 0)
    return `${JSON.stringify(entry)} is not an IP address or CIDR (e.g. 10.0.0.1, 10.0.0.0/8, fd00::/8)`;
  if (bits === undefined) return undefined;
  const max = family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > max)
    return `${JSON.stringify(entry)}: the prefix length must be 0 to ${max}`;
  return undefined;
}

/** Compiles the list; throws naming the first bad entry (config validation reports it first). */
export function compileTrustedProxies(list: readonly string[] = []): TrustedProxies {
  const bl = new BlockList();
  for (const entry of list) {
    const problem = trustedProxyProblem(entry);
    if (problem) throw new Error(`api.trustedProxies: ${problem}`);
    const [addr, bits] = entry.trim().split('/') as [string, string | undefined];
    const type = isIP(addr) === 4 ? 'ipv4' : 'ipv6';
    if (bits === undefined) bl.addAddress(normalise(addr), type);
    else bl.addSubnet(addr, Number(bits), type);
  }
  return {
    entries: [...list],
    has(ip) {
      const a = normalise(ip);
      const family = isIP(a);
      return family !== 0 && bl.check(a, family === 4 ? 'ipv4' : 'ipv6');
    },
  };
}

/** One X-Forwarded-For entry as an address: `1.2.3.4`, `1.2.3.4:80`, `::1`, `[::1]`, `[::1]:80`. */
function parseEntry(raw: string): string | undefined {
  const s = raw.trim();
  const bracket = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(s);
  if (bracket) return isIP(bracket[1]!) === 6 ? normalise(bracket[1]!) : undefined;
  if (isIP(s)) return normalise(s);
  const v4port = /^(\d+\.\d+\.\d+\.\d+):\d{1,5}$/.exec(s);
  if (v4port && isIP(v4port[1]!) === 4) return v4port[1];
  return undefined;
}

/**
 * The client's address. A peer that is not a trusted proxy is the client, whatever
 * X-Forwarded-For it sends (anyone can write that header). From a trusted proxy the header is read
 * right to left: each trusted address is a hop, the first untrusted one is the client. An entry
 * that is not an IP address ends the walk, so the client is then the nearest trusted hop: a value
 * nobody trusted vouched for is never used.
 */
export function clientAddress(
  socketIp: string,
  xffHeader: string | readonly string[] | undefined,
  trustedProxies: TrustedProxies | readonly string[],
): string {
  const trusted = 'has' in trustedProxies ? trustedProxies : compileTrustedProxies(trustedProxies);
  let client = normalise(socketIp);
  if (!trusted.has(client) || xffHeader === undefined) return client;
  const hops = (typeof xffHeader === 'string' ? [xffHeader] : xffHeader)
    .flatMap((h) => h.split(','))
    .map((e) => e.trim())
    .filter((e) => e !== '');
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = parseEntry(hops[i]!);
    if (hop === undefined) return client;
    client = hop;
    if (!trusted.has(hop)) return hop;
  }
  return client;
}
