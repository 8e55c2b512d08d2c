/**
 * Which Kubernetes components a lab runs for real. The lab looks the binaries up (lib/k8s-bins:
 * --k8s-bin-dir, the build cache, PATH) and links the ones its hosts may run into DIR/bin, which
 * comes first on every host's PATH. An agent reports the binaries it finds, so a component left out
 * of DIR/bin runs as the stand-in (SIMULATED), and the worker's kubelet role as a kwok node.
 *
 * Left out on purpose, with the reason `lab up` prints:
 *   - kubelet: a real kubelet needs a container runtime and cgroup v2; the lab's hosts are
 *     processes sharing this machine, so workers are kwok-managed nodes (simulated, kwok);
 *   - kube-proxy on loopback: it would rewrite this machine's own iptables/nftables rules. In
 *     --netns mode each host has its own network namespace; there it runs for real when `nft` is
 *     installed.
 */
import {
  chmodSync,
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  readdirSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { type Static, Type } from '@sinclair/typebox';
import {
  findK8sBinaries,
  K8S_CONTROL_PLANE_BINARIES,
  K8sBinDirError,
  type K8sBinLookup,
} from '../lib/k8s-bins.js';
import { labError } from './errors.js';
import { findProgram } from './preflight.js';

export const LabK8sState = Type.Object({
  /** DIR/bin, first on every host's PATH (absent: stand-ins only) */
  binDir: Type.Optional(Type.String()),
  source: Type.String(),
  version: Type.Optional(Type.String()),
  /** component → the binary it runs */
  real: Type.Record(Type.String(), Type.String()),
  /** component → why it is simulated */
  simulated: Type.Record(Type.String(), Type.String()),
});
export type LabK8sState = Static<typeof LabK8sState>;

/** The components a lab host runs, by role binary. */
const COMPONENTS = [...K8S_CONTROL_PLANE_BINARIES, 'kube-proxy', 'kubelet'] as const;
/** Tools the hosts use besides: kubectl registers kwok nodes, etcdctl/etcdutl run etcd commands. */
const TOOLS = ['kubectl', 'kwok', 'etcd', 'etcdctl', 'etcdutl'] as const;

export interface LabK8sChoice {
  /** force stand-ins for every Kubernetes component (`lab up --simulated`) */
  simulated?: boolean;
  k8sBinDir?: string;
  netns: boolean;
}

/** Decides (purely, from a lookup) what runs for real; `linkK8sBinaries` acts on it. */
export function chooseK8sComponents(l: K8sBinLookup, o: LabK8sChoice, hasNft: boolean): LabK8sState {
  const real: Record<string, string> = {};
  const simulated: Record<string, string> = {};
  const none =
    l.source === 'none'
      ? 'no real binary: build them with bash scripts/k8s-binaries.sh (needs Go 1.26), or pass --k8s-bin-dir'
      : undefined;
  for (const c of COMPONENTS) {
    if (o.simulated) simulated[c] = 'lab up --simulated';
    else if (c === 'kubelet')
      simulated[c] = l.found.kwok
        ? 'kwok node (simulated, kwok): a real kubelet needs a container runtime and cgroup v2, which the lab does not give its hosts'
        : 'stand-in: no kwok binary either';
    else if (c === 'kube-proxy' && !o.netns)
      simulated[c] =
        "stand-in: on loopback a real kube-proxy would rewrite this machine's own iptables rules (use --netns)";
    else if (c === 'kube-proxy' && !hasNft)
      simulated[c] = 'stand-in: a real kube-proxy needs nft (Debian package nftables)';
    else if (l.found[c]) real[c] = l.found[c]!;
    else simulated[c] = none ?? `stand-in: no ${c} in ${l.dir ?? 'PATH'}`;
  }
  if (!o.simulated) for (const t of TOOLS) if (l.found[t]) real[t] = l.found[t]!;
  return {
    source: o.simulated ? 'simulated' : l.source,
    ...(l.version && !o.simulated ? { version: l.version } : {}),
    real,
    simulated,
  };
}

/** Looks the binaries up for `lab up`; a bad --k8s-bin-dir is a usage error that starts nothing. */
export function resolveLabK8s(o: LabK8sChoice): { state: LabK8sState; lookup: K8sBinLookup } {
  let lookup: K8sBinLookup;
  try {
    lookup = findK8sBinaries(o.k8sBinDir ? { explicit: o.k8sBinDir } : {});
  } catch (err) {
    if (err instanceof K8sBinDirError) throw labError('DROVER_ERR_LAB_USAGE', err.message);
    throw err;
  }
  const hasNft = !!findProgram('nft');
  return { state: chooseK8sComponents(lookup, o, hasNft), lookup };
}

/** Links the chosen binaries into DIR/bin (emptied first) and records it in the state. */
export function linkK8sBinaries(labDir: string, k: LabK8sState): LabK8sState {
  const binDir = join(labDir, 'bin');
  if (existsSync(binDir)) for (const f of readdirSync(binDir)) rmSync(join(binDir, f), { force: true });
  mkdirSync(binDir, { recursive: true });
  for (const [name, target] of Object.entries(k.real)) {
    const at = join(binDir, name);
    // etcd runs as the etcd user: a binary it cannot reach (the build cache under /root, 0700)
    // is copied next to the lab rather than linked
    if (othersCanExecute(target)) symlinkSync(target, at);
    else placeReachable(target, at);
  }
  return { ...k, binDir };
}

/**
 * Puts a copy of `target` at `at` that other users can execute: a hard link when the file itself
 * is executable by others and on the same filesystem (no 500 MB copy per lab), else a real copy.
 */
function placeReachable(target: string, at: string): void {
  const real = realpathSync(target);
  if ((statSync(real).mode & 0o001) !== 0)
    try {
      linkSync(real, at);
      return;
    } catch {
      // another filesystem: copy
    }
  copyFileSync(real, at);
  chmodSync(at, 0o755);
}

/** Whether a user other than the owner can reach and execute `path` (every parent searchable). */
function othersCanExecute(path: string): boolean {
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    return true; // missing: the agent reports it when it starts
  }
  if ((statSync(real).mode & 0o001) === 0) return false;
  for (let d = dirname(real); ; d = dirname(d)) {
    if ((statSync(d).mode & 0o001) === 0) return false;
    if (d === dirname(d)) return true;
  }
}

/** The lines `lab up` prints: what is real, what is simulated and why. */
export function k8sSummary(k: LabK8sState): string[] {
  const comps = Object.keys(k.real).filter((c) => (COMPONENTS as readonly string[]).includes(c));
  const lines: string[] = [];
  if (k.source === 'simulated')
    lines.push('kubernetes      SIMULATED (lab up --simulated): every component is a stand-in');
  else if (comps.length === 0)
    lines.push(
      'kubernetes      WARNING: no real Kubernetes binaries, falling back to SIMULATED stand-ins (the reasons follow)',
    );
  else
    lines.push(
      `kubernetes      real ${k.version ?? ''} (${k.source}): ${comps.join(', ')}`.replace('  ', ' '),
    );
  for (const [c, why] of Object.entries(k.simulated)) lines.push(`  simulated     ${c}: ${why}`);
  return lines;
}

/**
 * The PATH a lab host (agent) and the coordinator run with: DIR/bin first, then the usual dirs
 * minus any that hold a Kubernetes component, so what `chooseK8sComponents` left out stays out.
 */
export function hostPath(k: LabK8sState | undefined, base: string): string {
  const parts = base.split(':').filter(Boolean);
  const clean = parts.filter((d) => !COMPONENTS.some((c) => existsSync(join(d, c))));
  return [...(k?.binDir ? [k.binDir] : []), ...clean].join(':');
}
