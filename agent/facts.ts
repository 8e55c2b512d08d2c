import { accessSync, constants } from 'node:fs';
import { hostname } from 'node:os';
import { delimiter, join } from 'node:path';
import { execa } from 'execa';
import type { Logger } from 'pino';
import si from 'systeminformation';
import { canonicalJson, type Facts, isIpAddress } from '../protocol/index.js';

type Disk = Facts['disks'][number];

/** The systeminformation calls facts use: a narrow port so tests can feed edge cases (VMs without partitions). */
export interface FactsSource {
  cpu(): Promise<{
    cores: number;
    physicalCores: number;
    manufacturer: string;
    brand: string;
    speed: number;
  }>;
  mem(): Promise<{ total: number }>;
  diskLayout(): Promise<Array<{ device?: string; name?: string; type?: string; size: number }>>;
  blockDevices(): Promise<
    Array<{ name: string; type: string; size: number; mount?: string; device?: string }>
  >;
  fsSize(): Promise<Array<{ fs: string; type: string; size: number; mount: string }>>;
  osInfo(): Promise<{
    platform: string;
    distro: string;
    release: string;
    kernel: string;
    arch: string;
    hostname?: string;
  }>;
  networkInterfaces(): Promise<
    Array<{ iface: string; mac: string; ip4: string; ip6: string; internal: boolean; virtual: boolean }>
  >;
  graphics(): Promise<{ controllers: Array<{ vendor: string; model: string; vram?: number | null }> }>;
  system(): Promise<{ virtual: boolean; virtualHost?: string }>;
}

export const systeminformationSource: FactsSource = {
  cpu: () => si.cpu(),
  mem: () => si.mem(),
  diskLayout: () => si.diskLayout(),
  blockDevices: () => si.blockDevices(),
  fsSize: () => si.fsSize(),
  osInfo: () => si.osInfo(),
  networkInterfaces: async () => {
    const r = await si.networkInterfaces();
    return Array.isArray(r) ? r : [r];
  },
  graphics: () => si.graphics(),
  system: () => si.system(),
};

/** Role binaries the agent looks for, and how each prints its version. */
export const ROLE_BINARIES: Readonly<Record<string, readonly string[]>> = {
  etcd: ['--version'],
  etcdctl: ['version'],
  haproxy: ['-v'],
  'kube-apiserver': ['--version'],
  'kube-controller-manager': ['--version'],
  'kube-scheduler': ['--version'],
  kubelet: ['--version'],
  'kube-proxy': ['--version'],
  kubectl: ['version', '--client'],
  // the kubelet role's simulator on workers without a container runtime (simulated, kwok)
  kwok: ['--version'],
  containerd: ['--version'],
  'nats-server': ['--version'],
};

const SBIN = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

export function findBinary(name: string, pathEnv = process.env.PATH ?? ''): string | undefined {
  for (const d of [...pathEnv.split(delimiter).filter(Boolean), ...SBIN]) {
    const p = join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {}
  }
  return undefined;
}

/** Pulls the first dotted version out of a `--version` banner (`etcd Version: 3.4.23`, `HAProxy version 2.6.12-1`). */
export function parseVersion(text: string): string {
  const m = /v?(\d+\.\d+(?:\.\d+)?(?:[-+][0-9A-Za-z.+-]*)?)/.exec(text);
  return m ? m[1]! : 'unknown';
}

export interface BinaryProbeOptions {
  binaries?: Readonly<Record<string, readonly string[]>>;
  timeoutMs?: number;
  pathEnv?: string;
}

/** Which role binaries are installed and their versions. Each probe runs with a timeout; a hung binary reports `unknown`. */
export async function probeBinaries(opts: BinaryProbeOptions = {}): Promise<Facts['binaries']> {
  const table = opts.binaries ?? ROLE_BINARIES;
  const out: Facts['binaries'] = {};
  await Promise.all(
    Object.entries(table).map(async ([name, args]) => {
      const path = findBinary(name, opts.pathEnv);
      if (!path) return;
      try {
        const r = await execa(path, [...args], {
          timeout: opts.timeoutMs ?? 5000,
          reject: false,
          all: true,
          stdin: 'ignore',
          env: { ETCDCTL_API: '3' },
        });
        out[name] = { path, version: r.timedOut ? 'unknown' : parseVersion(r.all ?? '') };
      } catch {
        out[name] = { path, version: 'unknown' };
      }
    }),
  );
  return out;
}

async function safe<T>(what: string, fn: () => Promise<T>, fallback: T, log?: Logger): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    log?.warn({ err, what }, 'fact collection failed; reporting a fallback');
    return fallback;
  }
}

/**
 * Disks from `diskLayout()`; on VMs whose disk has no partition table that is `[]`, so fall back to
 * `blockDevices()` (type disk), and if that is empty too, to mounted filesystems from `fsSize()`.
 * A host never reports "no disks" while it has a root filesystem.
 */
export async function collectDisks(src: FactsSource, log?: Logger): Promise<Disk[]> {
  const layout = await safe('diskLayout', () => src.diskLayout(), [], log);
  const fromLayout: Disk[] = layout
    .filter((d) => d.size > 0)
    .map((d) => ({
      name: d.device || d.name || '?',
      type: d.type || 'disk',
      sizeBytes: d.size,
      source: 'diskLayout',
    }));
  if (fromLayout.length) return fromLayout;
  const blocks = await safe('blockDevices', () => src.blockDevices(), [], log);
  const fromBlocks: Disk[] = blocks
    .filter((b) => b.type === 'disk' && b.size > 0)
    .map((b) => ({
      name: b.device || `/dev/${b.name}`,
      type: 'disk',
      sizeBytes: b.size,
      ...(b.mount ? { mount: b.mount } : {}),
      source: 'blockDevices',
    }));
  if (fromBlocks.length) return fromBlocks;
  const fs = await safe('fsSize', () => src.fsSize(), [], log);
  return fs
    .filter((f) => f.size > 0)
    .map((f) => ({ name: f.fs, type: 'fs', sizeBytes: f.size, mount: f.mount, source: 'fsSize' }));
}

export interface CollectFactsOptions {
  source?: FactsSource;
  machineId: string;
  binaries?: BinaryProbeOptions;
  logger?: Logger;
  now?: () => number;
}

export async function collectFacts(opts: CollectFactsOptions): Promise<Facts> {
  const src = opts.source ?? systeminformationSource;
  const log = opts.logger;
  const [cpu, mem, disks, os, nics, gfx, sys, binaries] = await Promise.all([
    safe(
      'cpu',
      () => src.cpu(),
      { cores: 1, physicalCores: 0, manufacturer: '', brand: 'unknown', speed: 0 },
      log,
    ),
    safe('mem', () => src.mem(), { total: 0 }, log),
    collectDisks(src, log),
    safe(
      'osInfo',
      () => src.osInfo(),
      { platform: process.platform, distro: 'unknown', release: '', kernel: '', arch: process.arch },
      log,
    ),
    safe('networkInterfaces', () => src.networkInterfaces(), [], log),
    safe('graphics', () => src.graphics(), { controllers: [] }, log),
    safe('system', () => src.system(), { virtual: false }, log),
    probeBinaries(opts.binaries),
  ]);
  const model = [cpu.manufacturer, cpu.brand].filter(Boolean).join(' ') || 'unknown';
  return {
    // host names are case-insensitive; the coordinator refuses anything not RFC 1123
    hostname: (os.hostname || hostname() || 'localhost').slice(0, 253).toLowerCase(),
    machineId: opts.machineId.slice(0, 128),
    cpu: {
      cores: Math.max(1, cpu.cores || 1),
      physicalCores: Math.max(0, cpu.physicalCores || 0),
      model,
      ...(cpu.speed > 0 ? { speedGHz: cpu.speed } : {}),
    },
    memory: { totalBytes: mem.total },
    disks,
    os: { platform: os.platform, distro: os.distro, release: os.release, kernel: os.kernel, arch: os.arch },
    // only what the Facts schema takes: an interface name without whitespace or `/`, a hex MAC
    network: nics
      .filter((n) => /^[^\s/]{1,64}$/.test(n.iface ?? ''))
      .map((n) => ({
        name: n.iface,
        mac: /^[0-9A-Fa-f:.-]{0,64}$/.test(n.mac ?? '') ? n.mac : '',
        // a link-local IPv6 may come with its zone (`fe80::1%eth0`): the address alone is reported
        addresses: [n.ip4, n.ip6].map((a) => (a ?? '').split('%')[0]!).filter(isIpAddress),
        internal: n.internal,
        virtual: n.virtual,
      })),
    gpus: gfx.controllers.map((c) => ({
      vendor: c.vendor || 'unknown',
      model: c.model || 'unknown',
      ...(c.vram && c.vram > 0 ? { vramMb: c.vram } : {}),
    })),
    virtualization: { virtual: !!sys.virtual, ...(sys.virtualHost ? { host: sys.virtualHost } : {}) },
    binaries,
    collectedAt: new Date(opts.now?.() ?? Date.now()).toISOString(),
  };
}

/** Facts compare equal when everything but the collection time is equal: "send only when they change". */
export function factsKey(f: Facts): string {
  const { collectedAt: _t, ...rest } = f;
  return canonicalJson(rest);
}
