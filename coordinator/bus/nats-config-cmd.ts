/**
 * `drover-coordinator nats-config`: writes the nats-server configuration for this coordinator's
 * bus (operator JWT, full resolver, TLS from the bus CA, limits) from its bus dir, making the keys
 * and the CA on the first run. The packaged setup runs it from the coordinator's postinst, and an
 * admin runs it again when the addresses agents dial change (`--tls-hosts`). Nothing is reloaded
 * here: nats-server reads the file when it (re)starts.
 *
 * Pure parts (`natsConfigRequest`, `defaultTlsHosts`) decide; `runNatsConfig` acts.
 */

import { execFileSync } from 'node:child_process';
import { chmod, chown, lstat, readdir } from 'node:fs/promises';
import { isIP } from 'node:net';
import { networkInterfaces, hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import { type PreparedBus, prepareBus } from './server-config.js';

export const NATS_CONFIG_FLAGS = [
  'listen',
  'monitor',
  'tls-hosts',
  'server-dir',
  'out',
  'server-name',
  'bus-owner',
  'server-owner',
];

export interface NatsConfigRequest {
  listen: string;
  monitor: string;
  tlsHosts: string[];
  serverDir: string;
  out: string;
  serverName: string;
  /** the coordinator's system user: owns the bus dir (keys, creds, CA) */
  busOwner?: string;
  /** nats-server's system user: owns the server dir; the config becomes root:<group> 0640 */
  serverOwner?: string;
}

export class NatsConfigUsageError extends Error {
  override name = 'NatsConfigUsageError';
}

const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

function hostPort(flag: string, v: string): string {
  const m = HOST_PORT.exec(v);
  const port = m ? Number(m[2]) : 0;
  if (!m || port < 1 || port > 65535)
    throw new NatsConfigUsageError(`--${flag}: ${JSON.stringify(v)} is not host:port (e.g. 0.0.0.0:4222)`);
  return v;
}

/** The names a server certificate should carry by default: this host's name and every address. */
export function defaultTlsHosts(
  name = osHostname(),
  ifaces: ReturnType<typeof networkInterfaces> = networkInterfaces(),
): string[] {
  const out = new Set<string>(['127.0.0.1', 'localhost']);
  if (/^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/.test(name)) out.add(name.toLowerCase());
  for (const list of Object.values(ifaces))
    for (const a of list ?? []) if (!a.internal && !a.address.startsWith('fe80:')) out.add(a.address);
  return [...out];
}

/** Pure: the request `flags` make, with the defaults; throws NatsConfigUsageError naming a bad flag. */
export function natsConfigRequest(
  flags: Record<string, string | boolean>,
  busDir: string,
  hosts: () => string[] = defaultTlsHosts,
): NatsConfigRequest {
  for (const k of Object.keys(flags))
    if (!NATS_CONFIG_FLAGS.includes(k))
      throw new NatsConfigUsageError(
        `nats-config: unknown flag --${k} (it takes --${NATS_CONFIG_FLAGS.join(', --')} and --config)`,
      );
  for (const [k, v] of Object.entries(flags))
    if (typeof v !== 'string' || v === '') throw new NatsConfigUsageError(`--${k} needs a value`);
  const f = flags as Record<string, string | undefined>;
  const tlsHosts = f['tls-hosts']
    ? f['tls-hosts']
        .split(',')
        .map((h) => h.trim())
        .filter(Boolean)
    : hosts();
  for (const h of tlsHosts)
    if (
      !isIP(h) &&
      !/^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(h)
    )
      throw new NatsConfigUsageError(
        `--tls-hosts: ${JSON.stringify(h)} is neither an IP address nor a host name`,
      );
  const serverDir = f['server-dir'] ?? join(busDir, 'server');
  if (!serverDir.startsWith('/')) throw new NatsConfigUsageError('--server-dir must be an absolute path');
  const out = f.out ?? join(serverDir, 'nats-server.conf');
  if (!out.startsWith('/')) throw new NatsConfigUsageError('--out must be an absolute path');
  const serverName = f['server-name'] ?? 'drover';
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(serverName))
    throw new NatsConfigUsageError(
      `--server-name: ${JSON.stringify(serverName)} must match [A-Za-z0-9_-]{1,64}`,
    );
  for (const k of ['bus-owner', 'server-owner'])
    if (f[k] !== undefined && !/^[a-z_][a-z0-9_-]{0,31}$/.test(f[k]!))
      throw new NatsConfigUsageError(`--${k}: ${JSON.stringify(f[k])} is not a system user name`);
  return {
    ...(f['bus-owner'] ? { busOwner: f['bus-owner'] } : {}),
    ...(f['server-owner'] ? { serverOwner: f['server-owner'] } : {}),
    listen: hostPort('listen', f.listen ?? '0.0.0.0:4222'),
    monitor: hostPort('monitor', f.monitor ?? '127.0.0.1:8222'),
    tlsHosts,
    serverDir,
    out,
    serverName,
  };
}

/** uid and gid of a system user (getent: works with NSS, not only /etc/passwd). */
function lookupUser(name: string): { uid: number; gid: number } {
  let line: string;
  try {
    line = execFileSync('getent', ['passwd', name], { encoding: 'utf8' }).trim();
  } catch {
    throw new NatsConfigUsageError(`no system user ${JSON.stringify(name)}`);
  }
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/** chowns `dir` and everything under it; symlinks are neither followed nor changed. */
async function chownTree(dir: string, uid: number, gid: number): Promise<void> {
  const st = await lstat(dir);
  if (st.isSymbolicLink()) return;
  await chown(dir, uid, gid);
  if (!st.isDirectory()) return;
  for (const e of await readdir(dir)) await chownTree(join(dir, e), uid, gid);
}

/** Acts: keys, CA, server certificate and the config file (then the owners, when asked). */
export async function runNatsConfig(
  req: NatsConfigRequest,
  bus: { dir: string; tls: boolean },
): Promise<PreparedBus> {
  const owners = {
    bus: req.busOwner ? lookupUser(req.busOwner) : undefined,
    server: req.serverOwner ? lookupUser(req.serverOwner) : undefined,
  };
  const prepared = await prepareBusFor(req, bus);
  if (owners.bus) await chownTree(bus.dir, owners.bus.uid, owners.bus.gid);
  if (owners.server) {
    await chownTree(req.serverDir, owners.server.uid, owners.server.gid);
    await chown(prepared.configFile, 0, owners.server.gid);
    await chmod(prepared.configFile, 0o640);
  }
  return prepared;
}

function prepareBusFor(req: NatsConfigRequest, bus: { dir: string; tls: boolean }): Promise<PreparedBus> {
  return prepareBus({
    dir: bus.dir,
    listen: req.listen,
    monitor: req.monitor,
    serverName: req.serverName,
    tlsHosts: req.tlsHosts,
    tls: bus.tls,
    jetstream: true,
    serverDir: req.serverDir,
    configFile: req.out,
  });
}
