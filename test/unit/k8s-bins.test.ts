import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chooseK8sComponents, hostPath, k8sSummary, resolveLabK8s } from '../../lab/k8s.js';
import {
  findK8sBinaries,
  K8S_PINS,
  k8sCacheBinDir,
  k8sCacheStamp,
  requireK8sBinaries,
} from '../../lib/k8s-bins.js';
import { tempDir } from '../helpers/proc.js';

function binDir(names: string[]): string {
  const d = tempDir('k8s-bins');
  for (const n of names) {
    writeFileSync(join(d, n), '#!/bin/sh\necho v0\n');
    chmodSync(join(d, n), 0o755);
  }
  return d;
}

describe('the pinned versions', () => {
  it('are the ones scripts/k8s-binaries.sh builds', () => {
    const sh = readFileSync('scripts/k8s-binaries.sh', 'utf8');
    expect(sh).toContain(`K8S_VERSION=\${DROVER_K8S_VERSION:-${K8S_PINS.kubernetes}}`);
    expect(sh).toContain(`ETCD_VERSION=\${DROVER_ETCD_VERSION:-${K8S_PINS.etcd}}`);
    expect(sh).toContain(`KWOK_VERSION=\${DROVER_KWOK_VERSION:-${K8S_PINS.kwok}}`);
    expect(sh).toContain('.built-$K8S_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION');
  });
});

describe('findK8sBinaries', () => {
  const noCache = { DROVER_K8S_CACHE: tempDir('k8s-cache-empty'), PATH: '' };

  it('takes --k8s-bin-dir first, and refuses a directory without kube-apiserver by name', () => {
    const d = binDir(['kube-apiserver', 'kube-scheduler', 'kubectl']);
    const l = findK8sBinaries({ explicit: d, env: noCache });
    expect(l.source).toBe('flag');
    expect(l.found['kube-apiserver']).toBe(join(d, 'kube-apiserver'));
    expect(l.missing).toEqual(['kube-controller-manager']);
    expect(() => findK8sBinaries({ explicit: join(d, 'nope'), env: noCache })).toThrow(/no such directory/);
    const empty = binDir(['kubectl']);
    expect(() => findK8sBinaries({ explicit: empty, env: noCache })).toThrow(
      /holds no executable kube-apiserver/,
    );
  });

  it('then the build cache once its stamp is there, then PATH, else none', () => {
    const cache = tempDir('k8s-cache');
    const env = { DROVER_K8S_CACHE: cache, PATH: '' };
    expect(findK8sBinaries({ env }).source).toBe('none');
    const onPath = binDir(['kube-apiserver']);
    expect(findK8sBinaries({ env: { ...env, PATH: onPath } }).source).toBe('path');
    mkdirSync(k8sCacheBinDir(env), { recursive: true });
    writeFileSync(k8sCacheStamp(env), '');
    for (const n of ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler']) {
      writeFileSync(join(k8sCacheBinDir(env), n), '');
      chmodSync(join(k8sCacheBinDir(env), n), 0o755);
    }
    const l = findK8sBinaries({ env: { ...env, PATH: onPath } });
    expect(l).toMatchObject({ source: 'cache', version: K8S_PINS.kubernetes, missing: [] });
  });

  it('requireK8sBinaries fails loudly, naming what is missing and how to build it', () => {
    expect(() => requireK8sBinaries(noCache)).toThrow(
      /needs the real Kubernetes binaries.*scripts\/k8s-binaries\.sh/,
    );
  });
});

describe('what a lab runs for real', () => {
  const all = {
    'kube-apiserver': '/c/kube-apiserver',
    'kube-controller-manager': '/c/kube-controller-manager',
    'kube-scheduler': '/c/kube-scheduler',
    'kube-proxy': '/c/kube-proxy',
    kubelet: '/c/kubelet',
    kubectl: '/c/kubectl',
    kwok: '/c/kwok',
    etcd: '/c/etcd',
  };
  const lookup = { dir: '/c', source: 'cache' as const, found: all, missing: [], version: 'v1.37.2' };

  it('the control plane real; the kubelet a kwok node; kube-proxy a stand-in on loopback, real with --netns and nft', () => {
    const loop = chooseK8sComponents(lookup, { netns: false }, true);
    expect(Object.keys(loop.real).sort()).toEqual(
      ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kubectl', 'kwok'].sort(),
    );
    expect(loop.simulated.kubelet).toMatch(/kwok node \(simulated, kwok\)/);
    expect(loop.simulated['kube-proxy']).toMatch(/iptables/);
    const ns = chooseK8sComponents(lookup, { netns: true }, true);
    expect(ns.real['kube-proxy']).toBe('/c/kube-proxy');
    expect(chooseK8sComponents(lookup, { netns: true }, false).simulated['kube-proxy']).toMatch(/nftables/);
  });

  it('--simulated and a machine without binaries: every component a stand-in, with the reason', () => {
    const sim = chooseK8sComponents(lookup, { netns: false, simulated: true }, true);
    expect(sim.real).toEqual({});
    expect(sim.simulated['kube-apiserver']).toBe('lab up --simulated');
    const none = chooseK8sComponents({ source: 'none', found: {}, missing: [] }, { netns: false }, true);
    expect(none.simulated['kube-apiserver']).toMatch(/build them with bash scripts\/k8s-binaries\.sh/);
    // lab up says loudly that it fell back
    expect(k8sSummary(none)[0]).toMatch(
      /WARNING: no real Kubernetes binaries, falling back to SIMULATED stand-ins/,
    );
    expect(k8sSummary(chooseK8sComponents(lookup, { netns: false }, true))[0]).toMatch(
      /real v1\.37\.2 \(cache\): kube-apiserver, kube-controller-manager, kube-scheduler/,
    );
  });

  it('a host PATH leaves out directories holding components the lab chose not to run', () => {
    const other = binDir(['kube-proxy']);
    const tools = binDir(['jq']);
    expect(
      hostPath({ binDir: '/lab/bin', source: 'cache', real: {}, simulated: {} }, `${other}:${tools}`),
    ).toBe(`/lab/bin:${tools}`);
  });

  it('a bad --k8s-bin-dir is a lab usage error that starts nothing', () => {
    expect(() => resolveLabK8s({ netns: false, k8sBinDir: '/nonexistent/bin' })).toThrow(
      expect.objectContaining({ code: 'DROVER_ERR_LAB_USAGE' }),
    );
  });
});
