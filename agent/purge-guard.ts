/**
 * The purge guard (`drover clean --purge`): which path of a plan's purge list the agent may
 * delete. A signed plan is trusted to say *what* to purge, never to reach past what a removed
 * instance owned: the path must be absolute and normalised (no `..`, `.` or `//`), at least three
 * levels deep, strictly inside the agent's root dir once symlinks in its parents are resolved, and
 * equal to or inside a path that same instance owned in a plan this agent applied (the ownership
 * ledger, `owned.json` in the data dir). A symlink at the path itself is removed, never followed.
 */
import { lstat, realpath } from 'node:fs/promises';
import { basename, dirname, join, posix, relative, resolve, sep } from 'node:path';
import { AgentError } from './errors.js';

/** Levels a purge path needs (`/var/lib/etcd/x` deletes; `/var/lib` never does). */
export const PURGE_MIN_DEPTH = 3;

const refuse = (path: string, why: string, instanceId?: string): never => {
  throw new AgentError('DROVER_ERR_PLAN_INVALID', `purge path ${JSON.stringify(path)} ${why}`, {
    details: { path, ...(instanceId ? { instanceId } : {}) },
  });
};

const inside = (p: string, dir: string): boolean =>
  p === dir || p.startsWith(dir.endsWith('/') ? dir : `${dir}/`);

/**
 * The checks that need no file system: absolute, normalised, deep enough, and owned by the
 * instance (`owned`: its paths from the ownership ledger; undefined when it never ran here).
 */
export function checkPurgePath(path: string, instanceId: string, owned: readonly string[] | undefined): void {
  if (typeof path !== 'string' || !path.startsWith('/')) refuse(path, 'is not absolute', instanceId);
  if (path.includes('\0')) refuse(path, 'holds a NUL byte', instanceId);
  if (path.split('/').includes('..')) refuse(path, "holds a '..' segment", instanceId);
  const trimmed = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
  const norm = posix.normalize(trimmed);
  if (norm !== trimmed) refuse(path, `is not normalised (it means ${norm})`, instanceId);
  if (norm.split('/').filter(Boolean).length < PURGE_MIN_DEPTH)
    refuse(path, `is too shallow (needs ${PURGE_MIN_DEPTH} levels)`, instanceId);
  if (!owned)
    refuse(
      path,
      `is not deleted: instance ${instanceId} never ran under this agent, so nothing here is known to be its own`,
      instanceId,
    );
  if (!owned!.some((o) => inside(norm, posix.normalize(o))))
    refuse(
      path,
      `is not a path instance ${instanceId} owned (it owned ${owned!.join(', ') || 'nothing'})`,
      instanceId,
    );
}

/** The real path of `p` (symlinks resolved) as far as it exists; the rest appended unresolved. */
export async function realish(p: string): Promise<string> {
  const tail: string[] = [];
  let cur = resolve(p);
  for (;;) {
    try {
      return join(await realpath(cur), ...tail.reverse());
    } catch {
      const up = dirname(cur);
      if (up === cur) return resolve(p);
      tail.push(basename(cur));
      cur = up;
    }
  }
}

/**
 * Where `path` really is under `rootDir` after the symlinks of its parents, or undefined when
 * nothing is there (nothing to delete). Refuses (AgentError) a target that is the root, lies
 * above or outside it, or is less than `PURGE_MIN_DEPTH` levels below it.
 */
export async function purgeTarget(
  rootDir: string,
  path: string,
  instanceId: string,
): Promise<string | undefined> {
  const root = resolve(rootDir);
  const full = resolve(root, `.${path}`);
  if (full === root || !full.startsWith(root === sep ? root : `${root}${sep}`))
    refuse(path, 'is the root dir or escapes it', instanceId);
  const realRoot = await realpath(root);
  let parent: string;
  try {
    parent = await realpath(dirname(full));
  } catch {
    return undefined; // its parent is gone, so is it
  }
  const target = join(parent, basename(full));
  const rel = relative(realRoot, target);
  if (rel === '' || rel.startsWith('..') || resolve(realRoot, rel) !== target)
    refuse(path, `leads outside the root dir through a symlink (to ${target})`, instanceId);
  if (rel.split(sep).filter(Boolean).length < PURGE_MIN_DEPTH)
    refuse(
      path,
      `leads through a symlink to ${target}, too shallow (needs ${PURGE_MIN_DEPTH} levels)`,
      instanceId,
    );
  try {
    await lstat(target);
  } catch {
    return undefined;
  }
  return target;
}
