/**
 * Where the real upstream binaries are: the pinned versions `scripts/k8s-binaries.sh` builds, the
 * cache it builds them into, and the lookup the lab and the tests share:
 *   1. a directory the user names (`drover lab up --k8s-bin-dir DIR`, or DROVER_K8S_BIN_DIR),
 *   2. the build cache for the pinned versions (`$DROVER_K8S_CACHE`, default ~/.cache/drover/k8s),
 *   3. PATH.
 * A component found in none of them runs as the lab's stand-in, labelled SIMULATED.
 */
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';

/** The versions scripts/k8s-binaries.sh pins (a unit test keeps the two in step). */
export const K8S_PINS = Object.freeze({
  kubernetes: 'v1.37.2',
  etcd: 'v3.6.16',
  kwok: 'v0.8.0',
});

/** The control-plane binaries; kubelet is optional (workers fall back to kwok). */
export const K8S_CONTROL_PLANE_BINARIES = Object.freeze([
  'kube-apiserver',
  'kube-controller-manager',
  'kube-scheduler',
]);
export const K8S_ALL_BINARIES = Object.freeze([
  ...K8S_CONTROL_PLANE_BINARIES,
  'kube-proxy',
  'kubectl',
  'kubelet',
  'kwok',
  'etcd',
  'etcdctl',
  'etcdutl',
]);

export type K8sBinSource = 'flag' | 'cache' | 'path' | 'none';

export interface K8sBinLookup {
  /** the directory the lab prepends to its hosts' PATH (absent when only PATH has them) */
  dir?: string;
  source: K8sBinSource;
  /** binary → absolute path, for every binary of K8S_ALL_BINARIES found */
  found: Record<string, string>;
  /** control-plane binaries found nowhere (these run as stand-ins) */
  missing: string[];
  /** the Kubernetes version of the cache or of the directory (VERSIONS file), when known */
  version?: string;
}

export function k8sCacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.DROVER_K8S_CACHE || join(env.HOME || homedir(), '.cache', 'drover', 'k8s');
}

/** The pinned build's bin directory (whether or not it was built). */
export function k8sCacheBinDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(k8sCacheRoot(env), K8S_PINS.kubernetes, 'bin');
}

/** The stamp scripts/k8s-binaries.sh writes when every pinned binary is built. */
export function k8sCacheStamp(env: NodeJS.ProcessEnv = process.env): string {
  return join(
    k8sCacheBinDir(env),
    `.built-${K8S_PINS.kubernetes}-etcd-${K8S_PINS.etcd}-kwok-${K8S_PINS.kwok}`,
  );
}

/** Whether `p` is a regular file this process may execute. */
export function isExecutableFile(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

function inDir(dir: string, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of names) if (isExecutableFile(join(dir, n))) out[n] = join(dir, n);
  return out;
}

function onPath(names: readonly string[], path: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const dir of path.split(delimiter).filter(Boolean))
    for (const n of names) if (!out[n] && isExecutableFile(join(dir, n))) out[n] = join(dir, n);
  return out;
}

function versionOf(dir: string): string | undefined {
  try {
    const m = /^kubernetes=(\S+)$/m.exec(readFileSync(join(dir, 'VERSIONS'), 'utf8'));
    return m?.[1];
  } catch {
    return undefined;
  }
}

export class K8sBinDirError extends Error {
  override name = 'K8sBinDirError';
}

/**
 * Finds the binaries. `explicit` (a flag) must exist and hold kube-apiserver, or this throws a
 * K8sBinDirError naming what is wrong: a typo must not quietly fall back to stand-ins.
 */
export function findK8sBinaries(
  opts: { explicit?: string; env?: NodeJS.ProcessEnv; path?: string } = {},
): K8sBinLookup {
  const env = opts.env ?? process.env;
  const explicit = opts.explicit ?? (env.DROVER_K8S_BIN_DIR || undefined);
  const missingOf = (found: Record<string, string>) => K8S_CONTROL_PLANE_BINARIES.filter((b) => !found[b]);
  if (explicit) {
    if (!existsSync(explicit) || !statSync(explicit).isDirectory())
      throw new K8sBinDirError(`--k8s-bin-dir ${explicit}: no such directory`);
    const found = inDir(explicit, K8S_ALL_BINARIES);
    if (!found['kube-apiserver'])
      throw new K8sBinDirError(
        `--k8s-bin-dir ${explicit} holds no executable kube-apiserver (expected the binaries scripts/k8s-binaries.sh builds)`,
      );
    const version = versionOf(explicit);
    return {
      dir: explicit,
      source: 'flag',
      found,
      missing: missingOf(found),
      ...(version ? { version } : {}),
    };
  }
  const cache = k8sCacheBinDir(env);
  if (existsSync(k8sCacheStamp(env))) {
    const found = inDir(cache, K8S_ALL_BINARIES);
    return { dir: cache, source: 'cache', found, missing: missingOf(found), version: K8S_PINS.kubernetes };
  }
  const found = onPath(K8S_ALL_BINARIES, opts.path ?? env.PATH ?? '');
  if (found['kube-apiserver']) return { source: 'path', found, missing: missingOf(found) };
  return { source: 'none', found, missing: [...K8S_CONTROL_PLANE_BINARIES] };
}

/** Throws with the reason when the real binaries are not there: for tests that need them. */
export function requireK8sBinaries(env: NodeJS.ProcessEnv = process.env): K8sBinLookup {
  const l = findK8sBinaries({ env });
  const need = [...K8S_CONTROL_PLANE_BINARIES, 'kubectl', 'kwok', 'etcd'];
  const absent = need.filter((b) => !l.found[b]);
  if (absent.length)
    throw new Error(
      `this test needs the real Kubernetes binaries, and ${absent.join(', ')} ${absent.length > 1 ? 'are' : 'is'} missing (looked in ${l.dir ?? k8sCacheBinDir(env)} and on PATH): run bash scripts/k8s-binaries.sh (scripts/setup.sh does it; needs Go 1.26)`,
    );
  return l;
}
