import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { parse } from 'yaml';
import type { LbClientTls } from './lab-client.js';
import { labDroverSync } from './lab-e2e.js';

/**
 * A lab's Kubernetes API as a user reaches it: the admin kubeconfig `drover kubeconfig admin`
 * writes, the real kubectl with it, the leader-election Leases it reads, and `/readyz` asked
 * straight of one API server. No vitest import (bench/failover.bench.ts uses it too).
 */

/** The Lease objects of the two leader-elected components (named as their roles). */
export const LEASES = ['kube-scheduler', 'kube-controller-manager'] as const;
export type LeaseName = (typeof LEASES)[number];

export interface AdminKubeconfig extends LbClientTls {
  path: string;
  server: string;
}

/** `drover kubeconfig admin -f DIR/admin.conf --force`, read back (PEM strings decoded). */
export function writeAdminKubeconfig(dir: string): AdminKubeconfig {
  const path = join(dir, 'admin.conf');
  labDroverSync(dir, 'kubeconfig', 'admin', '-f', path, '--force');
  return readKubeconfig(path);
}

export function readKubeconfig(path: string): AdminKubeconfig {
  const kc = parse(readFileSync(path, 'utf8')) as {
    clusters?: Array<{ cluster?: Record<string, string> }>;
    users?: Array<{ user?: Record<string, string> }>;
  };
  const cluster = kc.clusters?.[0]?.cluster ?? {};
  const user = kc.users?.[0]?.user ?? {};
  const b64 = (field: string, v: string | undefined) => {
    if (!v) throw new Error(`${path}: no ${field}`);
    return Buffer.from(v, 'base64').toString('utf8');
  };
  if (!cluster.server) throw new Error(`${path}: no clusters[0].cluster.server`);
  return {
    path,
    server: cluster.server,
    ca: b64('certificate-authority-data', cluster['certificate-authority-data']),
    cert: b64('client-certificate-data', user['client-certificate-data']),
    key: b64('client-key-data', user['client-key-data']),
  };
}

/** The real kubectl with one kubeconfig. */
export class Kubectl {
  constructor(
    readonly bin: string,
    readonly kubeconfig: string,
  ) {}

  /** stdout; throws with kubectl's stderr when it exits non-zero */
  run(args: string[], timeoutMs = 30_000): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(
        this.bin,
        ['--kubeconfig', this.kubeconfig, '--request-timeout=10s', ...args],
        { timeout: timeoutMs, maxBuffer: 8 << 20 },
        (err, stdout, stderr) =>
          err
            ? reject(new Error(`kubectl ${args.join(' ')}: ${stderr.trim() || err.message}`))
            : resolve(stdout),
      );
    });
  }

  async json<T>(args: string[]): Promise<T> {
    return JSON.parse(await this.run([...args, '-o', 'json'])) as T;
  }

  /** holderIdentity of both leader-election Leases in kube-system ('' for one nobody holds) */
  async leaseHolders(): Promise<Record<LeaseName, string>> {
    const out = await this.run([
      '-n',
      'kube-system',
      'get',
      'lease',
      ...LEASES,
      '-o',
      'jsonpath={range .items[*]}{.metadata.name}={.spec.holderIdentity}{"\\n"}{end}',
    ]);
    const by = Object.fromEntries(
      out.split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    return {
      'kube-scheduler': by['kube-scheduler'] ?? '',
      'kube-controller-manager': by['kube-controller-manager'] ?? '',
    };
  }
}

/** The host in a holderIdentity (`HOSTNAME_uuid`; each lab host has its own hostname). */
export function holderHost(identity: string): string {
  const i = identity.indexOf('_');
  return i > 0 ? identity.slice(0, i) : identity;
}

/** `GET https://ADDRESS:6443/readyz` straight to one API server, checked against the cluster CA. */
export function apiReadyz(address: string, tls: LbClientTls, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: address,
        port: 6443,
        path: '/readyz',
        ca: tls.ca,
        cert: tls.cert,
        key: tls.key,
        rejectUnauthorized: true,
        agent: false,
        timeout: timeoutMs,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => resolve(res.statusCode === 200 && body.trim() === 'ok'));
        res.on('error', () => resolve(false));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(false));
    req.end();
  });
}
