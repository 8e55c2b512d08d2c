import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { labError } from './errors.js';

/** Programs the lab runs, and the Debian 12 package each comes from. */
export const LAB_PROGRAMS: ReadonlyArray<{ bin: string; pkg: string; why: string; netnsOnly?: boolean }> = [
  { bin: 'nats-server', pkg: 'nats-server', why: 'the message bus between coordinator and agents' },
  { bin: 'etcd', pkg: 'etcd-server', why: 'the control plane store (a real 3-member cluster)' },
  { bin: 'etcdctl', pkg: 'etcd-client', why: 'etcd health and membership commands' },
  { bin: 'haproxy', pkg: 'haproxy', why: 'the load balancer in front of the API servers' },
  { bin: 'ip', pkg: 'iproute2', why: 'network namespaces, veths and the bridge', netnsOnly: true },
];

/** The sbin directories Debian installs nats-server and haproxy into; a non-root PATH often lacks them. */
const SBIN = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

export function labPath(path = process.env.PATH ?? ''): string {
  const parts = path.split(delimiter).filter(Boolean);
  for (const d of ['/usr/local/bin', '/usr/bin', '/bin', ...SBIN]) if (!parts.includes(d)) parts.push(d);
  return parts.join(delimiter);
}

export function findProgram(bin: string, path = labPath()): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, bin);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * Checks everything `lab up` needs before it starts anything, so a missing piece never leaves a
 * half-started lab. Throws one error naming every missing program and its Debian package.
 */
export function preflight(opts: {
  netns: boolean;
  distDir: string;
  isRoot?: boolean;
  /** looks a program up (default: PATH plus the sbin dirs) */
  find?: (bin: string) => string | undefined;
}): Record<string, string> {
  const find = opts.find ?? ((bin: string) => findProgram(bin));
  const found: Record<string, string> = {};
  const missing: Array<{ bin: string; pkg: string; why: string }> = [];
  for (const p of LAB_PROGRAMS) {
    if (p.netnsOnly && !opts.netns) continue;
    const at = find(p.bin);
    if (at) found[p.bin] = at;
    else missing.push(p);
  }
  if (missing.length) {
    const pkgs = [...new Set(missing.map((m) => m.pkg))];
    throw labError(
      'DROVER_ERR_LAB_MISSING_PACKAGES',
      `cannot start the lab: ${missing.map((m) => `${m.bin} (${m.why}) is not installed — Debian package ${m.pkg}`).join('; ')}`,
      {
        hint: `install with: sudo apt-get install -y ${pkgs.join(' ')}   (or run: bash scripts/lab.sh, which does it)`,
      },
    );
  }
  if (opts.netns && !(opts.isRoot ?? process.getuid?.() === 0))
    throw labError(
      'DROVER_ERR_LAB_NOT_ROOT',
      '--netns creates network namespaces, veths and a bridge: run it as root',
      {
        hint: 'or drop --netns to run on loopback addresses',
      },
    );
  const bundles = ['drover-coordinator.mjs', 'drover-agent.mjs', 'drover-standin.mjs'];
  const absent = bundles.filter((b) => !existsSync(join(opts.distDir, b)));
  if (absent.length)
    throw labError(
      'DROVER_ERR_LAB_START',
      `the bundles ${absent.join(', ')} are missing from ${opts.distDir}`,
      {
        hint: 'build them with `npm run build` (scripts/lab.sh does it)',
      },
    );
  return found;
}

/**
 * The lab's hosts run etcd and haproxy as their own system users (least privilege), so every
 * directory from / down to the lab dir must be searchable by other users. Refuses (before
 * anything starts) naming the first one that is not, e.g. a lab under /root (mode 0700).
 */
export function checkLabDirReachable(dir: string): void {
  const chain: string[] = [];
  for (let d = resolve(dir); ; d = dirname(d)) {
    chain.unshift(d);
    if (d === dirname(d)) break;
  }
  for (const d of chain) {
    let mode: number;
    try {
      mode = statSync(d).mode;
    } catch {
      return; // created by the lab, searchable
    }
    if ((mode & 0o001) === 0)
      throw labError(
        'DROVER_ERR_LAB_DIR_UNREACHABLE',
        `the lab dir ${dir} is under ${d} (mode ${(mode & 0o777).toString(8).padStart(4, '0')}), which other users cannot search: etcd and haproxy run as their own system users and could not reach their data and certificates`,
        { hint: `use --dir under a searchable directory (e.g. /var/tmp/drover-lab), or chmod o+x ${d}` },
      );
  }
}
