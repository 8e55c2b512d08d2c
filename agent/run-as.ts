/**
 * Least privilege on the host: an instance whose plan names a system user (`run.runAs`, etcd as
 * `etcd`, haproxy as `haproxy`) runs with that uid and gid. Before it starts, the agent
 *  - creates the user and group when the host lacks them (`useradd --system`, no login, no home);
 *  - gives the instance's own paths to them: its data dirs (created 0700 when missing), its
 *    config files, and its certificate, key and CA files;
 *  - checks that the user can reach each of those paths (every parent dir searchable), and
 *    refuses to start otherwise, naming the directory (DROVER_ERR_RUN_AS), rather than letting
 *    the component fail later with a bare "permission denied".
 * An agent that is not root cannot change a process's uid: it runs roles as itself and says so.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chown, lstat, mkdir, readdir, realpath, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import type { InstanceSpec, RunAs } from '../protocol/index.js';
import { AgentError } from './errors.js';
import { filePathUnderRoot } from './root-path.js';

const run = promisify(execFile);

export interface RunAsIds {
  user: string;
  group: string;
  uid: number;
  gid: number;
}

/** `name:x:id:…` lines of /etc/passwd or /etc/group: the id of `name`, if present. */
function idIn(file: string, name: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f[2] !== undefined && /^\d+$/.test(f[2])) return Number(f[2]);
  }
  return undefined;
}

/** The uid and gid of a plan's user and group, read from the host's databases; undefined when either is missing. */
export function lookupRunAs(
  r: RunAs,
  db = { passwd: '/etc/passwd', group: '/etc/group' },
): RunAsIds | undefined {
  const uid = idIn(db.passwd, r.user);
  const gid = idIn(db.group, r.group);
  return uid === undefined || gid === undefined ? undefined : { ...r, uid, gid };
}

/** Whether this agent can start processes as another user. */
export const canSwitchUser = (): boolean => process.getuid?.() === 0;

/** Creates the system group and user when missing (root only). */
export async function ensureSystemUser(r: RunAs, log: Logger): Promise<RunAsIds> {
  const have = lookupRunAs(r);
  if (have) return have;
  try {
    if (idIn('/etc/group', r.group) === undefined) await run('groupadd', ['--system', r.group]);
    if (idIn('/etc/passwd', r.user) === undefined)
      await run('useradd', [
        '--system',
        '--gid',
        r.group,
        '--no-create-home',
        '--home-dir',
        '/nonexistent',
        '--shell',
        '/usr/sbin/nologin',
        '--comment',
        'Drover role user',
        r.user,
      ]);
  } catch (err) {
    throw new AgentError(
      'DROVER_ERR_RUN_AS',
      `cannot create system user ${r.user}:${r.group}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const made = lookupRunAs(r);
  if (!made)
    throw new AgentError(
      'DROVER_ERR_RUN_AS',
      `system user ${r.user}:${r.group} is still missing after useradd`,
    );
  log.warn(
    { user: r.user, group: r.group, uid: made.uid, gid: made.gid },
    'created a system user for a role',
  );
  return made;
}

/** The host paths an instance's user must own: data dirs, config files, certificate files. */
export function ownedHostPaths(rootDir: string, spec: InstanceSpec): { dirs: string[]; files: string[] } {
  const at = (p: string) => filePathUnderRoot(rootDir, p);
  return {
    dirs: (spec.dataPaths ?? []).map(at),
    files: [
      ...spec.files.map((f) => at(f.path)),
      ...(spec.certificates ?? []).flatMap((c) => [at(c.certPath), at(c.keyPath), at(c.caPath)]),
    ],
  };
}

/** Whether `ids` may search (x) a directory with this owner and mode. */
function searchable(st: { uid: number; gid: number; mode: number }, ids: RunAsIds): boolean {
  if (st.uid === ids.uid) return (st.mode & 0o100) !== 0;
  if (st.gid === ids.gid) return (st.mode & 0o010) !== 0;
  return (st.mode & 0o001) !== 0;
}

/** The first parent dir of `path` the user cannot search, if any. */
export async function unreachableParent(path: string, ids: RunAsIds): Promise<string | undefined> {
  const chain: string[] = [];
  for (let d = dirname(path); ; d = dirname(d)) {
    chain.unshift(d);
    if (d === dirname(d)) break;
  }
  for (const d of chain) {
    let st: Awaited<ReturnType<typeof stat>>;
    try {
      st = await stat(d);
    } catch {
      return undefined; // not there yet: the agent creates it, searchable
    }
    if (!searchable(st, ids))
      return `${d} (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}, owner uid ${st.uid})`;
  }
  return undefined;
}

/** Why the user cannot run the binary at `path` (after symlinks), or undefined. */
async function cannotExecute(path: string, ids: RunAsIds): Promise<string | undefined> {
  let real: string;
  try {
    real = await realpath(path);
  } catch {
    return undefined; // missing: the runtime reports it
  }
  const blocked = await unreachableParent(real, ids);
  if (blocked) return `${blocked} is not searchable by it`;
  const st = await stat(real);
  const bit = st.uid === ids.uid ? 0o100 : st.gid === ids.gid ? 0o010 : 0o001;
  return (st.mode & bit) === 0
    ? `${real} is not executable by it (mode ${(st.mode & 0o777).toString(8)})`
    : undefined;
}

async function chownTree(path: string, uid: number, gid: number): Promise<void> {
  const st = await lstat(path).catch(() => undefined);
  if (!st || st.isSymbolicLink()) return;
  if (st.uid !== uid || st.gid !== gid) await chown(path, uid, gid);
  if (st.isDirectory()) for (const e of await readdir(path)) await chownTree(join(path, e), uid, gid);
}

/**
 * Prepares the host for `spec` to run as its plan's user: the user exists, owns the instance's
 * paths, and can reach them. Returns the ids to start with; undefined when the plan names no user
 * or this agent is not root (then the instance runs as the agent, and `onUnprivileged` is told).
 */
export async function prepareRunAs(
  rootDir: string,
  spec: InstanceSpec,
  log: Logger,
  /** the command as the runtime will start it (absolute once resolved) */
  command?: string,
): Promise<RunAsIds | undefined> {
  const r = spec.run.runAs;
  if (!r) return undefined;
  if (!canSwitchUser()) {
    log.warn(
      { instance: spec.id, user: r.user },
      'the agent is not root: the instance runs as the agent’s own user, not as its role user',
    );
    return undefined;
  }
  const ids = await ensureSystemUser(r, log);
  const { dirs, files } = ownedHostPaths(rootDir, spec);
  // a missing data dir is made 0700 for the user; its missing parents 0755 (searchable), as
  // /var/lib is on any host
  for (const d of dirs)
    if (!(await lstat(d).catch(() => undefined))) {
      await mkdir(dirname(d), { recursive: true });
      await mkdir(d, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') throw err;
      });
    }
  // what the user must reach on its own: each owned dir's parents, and files outside them (the
  // owned dirs themselves, and what is inside, are handed to the user below)
  const inOwned = (f: string) => dirs.some((d) => f.startsWith(`${d}/`));
  for (const p of [...dirs, ...files.filter((f) => !inOwned(f))]) {
    const blocked = await unreachableParent(p, ids);
    if (blocked)
      throw new AgentError(
        'DROVER_ERR_RUN_AS',
        `${spec.id} runs as ${r.user} (uid ${ids.uid}), which cannot reach ${p}: ${blocked} is not searchable by it; make it searchable (chmod o+x) or put the agent's root dir elsewhere`,
        { details: { instanceId: spec.id, user: r.user, path: p } },
      );
  }
  if (command?.startsWith('/')) {
    const problem = await cannotExecute(command, ids);
    if (problem)
      throw new AgentError(
        'DROVER_ERR_RUN_AS',
        `${spec.id} runs as ${r.user} (uid ${ids.uid}), which cannot execute ${command}: ${problem}; install the binary where other users can reach it (e.g. /usr/local/bin)`,
        { details: { instanceId: spec.id, user: r.user, path: command } },
      );
  }
  for (const d of dirs) await chownTree(d, ids.uid, ids.gid);
  for (const f of files) {
    const st = await lstat(f).catch(() => undefined);
    if (st && !st.isSymbolicLink() && (st.uid !== ids.uid || st.gid !== ids.gid))
      await chown(f, ids.uid, ids.gid);
  }
  return ids;
}
