/**
 * A free TCP port to hand to a server we start next (nats-server, etcd, haproxy, a coordinator).
 *
 * Not port 0's answer: the kernel picks that from the ephemeral range, the same range it takes
 * the local port of every outgoing connection from, so between our check and the server's bind a
 * client connecting anywhere can take it ("bind: address already in use"; seen in CI with a
 * nats-server monitor port). Ports are drawn at random below the ephemeral range instead (read from
 * /proc/sys/net/ipv4/ip_local_port_range), checked by binding, and never handed out twice by this
 * process.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

const handedOut = new Set<number>();

function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 12_000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

/** True when `port` can be bound on `host` now. */
export function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.unref();
    s.once('error', () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

function kernelPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.once('error', reject);
    s.listen(0, host, () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  const low = 10_000;
  const high = ephemeralLow() - 1;
  for (let i = 0; i < 64; i++) {
    const port = low + Math.floor(Math.random() * (high - low + 1));
    if (handedOut.has(port)) continue;
    if (await portFree(host, port)) {
      handedOut.add(port);
      return port;
    }
  }
  // a crowded range: the kernel's pick, which is right for most purposes
  return kernelPort(host);
}
