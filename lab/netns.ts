import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { labError } from './errors.js';
import { findProgram } from './preflight.js';

/**
 * The `--netns` network: a bridge in the root namespace holding `<subnet>.1/24` (nats-server
 * listens there), and per node a namespace with a veth pair whose host end is a bridge port and
 * whose namespace end is `eth0` with `<subnet>.<n>/24`. Cutting the host end (`link set down`)
 * partitions the node from everything: the bus, the coordinator and the other nodes.
 *
 * Interface names are limited to 15 bytes, so they carry a 4-hex-digit id derived from the lab
 * directory: two labs in different directories never share a name.
 */

export interface NetNames {
  bridge: string;
  netns(name: string): string;
  hostVeth(index: number): string;
  peerVeth(index: number): string;
  /** prefix shared by every namespace of this lab (for leak checks) */
  netnsPrefix: string;
  vethPrefix: string;
}

export function netNames(dir: string): NetNames {
  const id = createHash('sha256').update(dir).digest('hex').slice(0, 4);
  return {
    bridge: `drvbr-${id}`,
    netns: (name) => `drv-${id}-${name}`,
    hostVeth: (i) => `dv${id}-${i}h`,
    peerVeth: (i) => `dv${id}-${i}n`,
    netnsPrefix: `drv-${id}-`,
    vethPrefix: `dv${id}-`,
  };
}

export async function ip(args: string[], opts: { allowFail?: boolean } = {}): Promise<string> {
  const bin = findProgram('ip') ?? 'ip';
  return await new Promise<string>((resolve, reject) => {
    execFile(bin, args, { timeout: 15_000 }, (err, stdout, stderr) => {
      if (err && !opts.allowFail)
        reject(
          labError(
            'DROVER_ERR_LAB_NETNS',
            `\`ip ${args.join(' ')}\` failed: ${(stderr || err.message).trim()}`,
            {
              cause: err,
            },
          ),
        );
      else resolve(stdout);
    });
  });
}

export async function listNetns(): Promise<string[]> {
  const out = await ip(['netns', 'list'], { allowFail: true });
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter(Boolean);
}

export async function listLinks(): Promise<string[]> {
  const out = await ip(['-o', 'link', 'show'], { allowFail: true });
  const names: string[] = [];
  for (const line of out.split('\n')) {
    const m = /^\d+:\s+([^:@\s]+)/.exec(line);
    if (m) names.push(m[1]!);
  }
  return names;
}

export async function createBridge(bridge: string, cidr: string): Promise<void> {
  await ip(['link', 'add', bridge, 'type', 'bridge']);
  await ip(['addr', 'add', cidr, 'dev', bridge]);
  await ip(['link', 'set', bridge, 'up']);
}

export interface NodeNet {
  netns: string;
  hostVeth: string;
  peerVeth: string;
  /** `10.77.0.3/24` */
  cidr: string;
  gateway: string;
}

export async function createNodeNet(bridge: string, n: NodeNet): Promise<void> {
  await ip(['netns', 'add', n.netns]);
  await ip(['link', 'add', n.hostVeth, 'type', 'veth', 'peer', 'name', n.peerVeth]);
  await ip(['link', 'set', n.peerVeth, 'netns', n.netns]);
  await ip(['-n', n.netns, 'link', 'set', n.peerVeth, 'name', 'eth0']);
  await ip(['-n', n.netns, 'addr', 'add', n.cidr, 'dev', 'eth0']);
  await ip(['-n', n.netns, 'link', 'set', 'lo', 'up']);
  await ip(['-n', n.netns, 'link', 'set', 'eth0', 'up']);
  await ip(['-n', n.netns, 'route', 'add', 'default', 'via', n.gateway]);
  await ip(['link', 'set', n.hostVeth, 'master', bridge]);
  await ip(['link', 'set', n.hostVeth, 'up']);
}

/** Pids of every process inside the namespace. */
export async function netnsPids(netns: string): Promise<number[]> {
  const out = await ip(['netns', 'pids', netns], { allowFail: true });
  return out
    .split('\n')
    .map((l) => Number(l.trim()))
    .filter((n) => Number.isInteger(n) && n > 0);
}

export async function setLink(name: string, up: boolean): Promise<void> {
  await ip(['link', 'set', name, up ? 'up' : 'down']);
}

/** Deletes the lab's namespaces, veths and bridge; tolerates pieces already gone. Returns what is left. */
export async function teardownNet(names: NetNames): Promise<string[]> {
  for (const ns of (await listNetns()).filter((n) => n.startsWith(names.netnsPrefix)))
    await ip(['netns', 'del', ns], { allowFail: true });
  for (const l of (await listLinks()).filter((x) => x.startsWith(names.vethPrefix) || x === names.bridge))
    await ip(['link', 'del', l], { allowFail: true });
  return await leftovers(names);
}

export async function leftovers(names: NetNames): Promise<string[]> {
  return [
    ...(await listNetns()).filter((n) => n.startsWith(names.netnsPrefix)).map((n) => `netns ${n}`),
    ...(await listLinks())
      .filter((x) => x.startsWith(names.vethPrefix) || x === names.bridge)
      .map((l) => `link ${l}`),
  ];
}
