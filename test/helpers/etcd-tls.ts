/**
 * A real N-member etcd cluster on loopback with TLS on both the client and peer sides, and client
 * certificate authentication on both (`--client-cert-auth`, `--peer-client-cert-auth`). The caller
 * supplies each member's certificates, so tests can prove that certificates issued by Drover's PKI
 * are what etcd actually accepts.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { ClusterPki, type PkiNode } from '../../coordinator/pki/index.js';
import { issueViaCsr } from './pki.js';
import {
  autoCleanup,
  freePort,
  killAndWait,
  requireBinary,
  rmrf,
  type Spawned,
  spawnLogged,
  tempDir,
  waitFor,
} from './proc.js';

export interface PemPair {
  certPem: string;
  keyPem: string;
}

export interface EtcdMemberCerts {
  caPem: string;
  server: PemPair;
  peer: PemPair;
}

export interface EtcdTlsOptions {
  size?: number;
  host?: string;
  /** certificates for member `name` (also its hostname) listening on `host` */
  certsFor(name: string, host: string): Promise<EtcdMemberCerts>;
  /** a client certificate the harness uses for its health check */
  healthClient: PemPair & { caPem: string };
}

export interface EtcdTlsMember {
  name: string;
  clientUrl: string;
  peerUrl: string;
  dir: string;
  stop(): Promise<void>;
  output(): string;
}

export interface EtcdTlsHandle {
  members: EtcdTlsMember[];
  endpoints: string;
  dir: string;
  stop(): Promise<void>;
}

function write(path: string, data: string, mode = 0o644): string {
  writeFileSync(path, data, { mode });
  return path;
}

/**
 * GET /health over TLS (mutual when a client cert is given); true when etcd answers
 * `{"health":"true"}`, false on any refusal (a TLS alert for a missing or untrusted client cert).
 */
export function tlsHealthy(url: string, client: Partial<PemPair> & { caPem: string }): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      `${url}/health`,
      { ca: client.caPem, cert: client.certPem, key: client.keyPem, timeout: 1000 },
      (res) => {
        let body = '';
        res.on('data', (b) => {
          body += b;
        });
        res.on('end', () => resolve(res.statusCode === 200 && /"health":\s*"true"/.test(body)));
      },
    );
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

export async function startEtcdTls(opts: EtcdTlsOptions): Promise<EtcdTlsHandle> {
  const bin = requireBinary('etcd');
  const size = opts.size ?? 3;
  const host = opts.host ?? '127.0.0.1';
  const dir = tempDir('etcd-tls');
  const specs: Array<{ name: string; client: number; peer: number }> = [];
  for (let i = 0; i < size; i++)
    specs.push({ name: `etcd-${i}`, client: await freePort(host), peer: await freePort(host) });
  const initialCluster = specs.map((s) => `${s.name}=https://${host}:${s.peer}`).join(',');
  const procs: Spawned[] = [];
  const members: EtcdTlsMember[] = [];
  for (const s of specs) {
    const mdir = join(dir, s.name);
    mkdirSync(mdir, { recursive: true, mode: 0o700 });
    const certs = await opts.certsFor(s.name, host);
    const ca = write(join(mdir, 'ca.crt'), certs.caPem);
    const cert = write(join(mdir, 'server.crt'), certs.server.certPem);
    const key = write(join(mdir, 'server.key'), certs.server.keyPem, 0o600);
    const peerCert = write(join(mdir, 'peer.crt'), certs.peer.certPem);
    const peerKey = write(join(mdir, 'peer.key'), certs.peer.keyPem, 0o600);
    const clientUrl = `https://${host}:${s.client}`;
    const peerUrl = `https://${host}:${s.peer}`;
    const proc = spawnLogged(bin, [
      `--name=${s.name}`,
      `--data-dir=${join(mdir, 'data')}`,
      `--listen-client-urls=${clientUrl}`,
      `--advertise-client-urls=${clientUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=${initialCluster}`,
      `--initial-cluster-token=drover-tls-${specs[0]!.client}`,
      '--initial-cluster-state=new',
      `--cert-file=${cert}`,
      `--key-file=${key}`,
      `--trusted-ca-file=${ca}`,
      '--client-cert-auth',
      `--peer-cert-file=${peerCert}`,
      `--peer-key-file=${peerKey}`,
      `--peer-trusted-ca-file=${ca}`,
      '--peer-client-cert-auth',
      '--heartbeat-interval=50',
      '--election-timeout=500',
      '--logger=zap',
      '--log-level=warn',
    ]);
    procs.push(proc);
    members.push({
      name: s.name,
      clientUrl,
      peerUrl,
      dir: mdir,
      stop: () => killAndWait(proc),
      output: () => proc.output(),
    });
  }
  const handle: EtcdTlsHandle = {
    members,
    endpoints: members.map((m) => m.clientUrl).join(','),
    dir,
    async stop() {
      await Promise.all(members.map((m) => m.stop()));
    },
  };
  autoCleanup(async () => {
    await handle.stop();
    rmrf(dir);
  });
  await waitFor(
    `TLS etcd cluster of ${size} healthy`,
    async () => {
      for (const p of procs)
        if (p.child.exitCode !== null)
          throw new Error(`etcd exited (${p.child.exitCode}): ${p.output().slice(-2000)}`);
      return (await Promise.all(members.map((m) => tlsHealthy(m.clientUrl, opts.healthClient)))).every(
        Boolean,
      );
    },
    { timeoutMs: 30_000, intervalMs: 200 },
  );
  return handle;
}

const operatorClients = new Map<string, Promise<string[]>>();

/**
 * etcdctl's TLS flags for a test acting as the operator on a Drover cluster: an `etcd-client`
 * certificate from the coordinator's etcd CA (`<coordinator data dir>/pki`), the way an operator
 * with access to the coordinator's host reaches etcd. Issued once per PKI dir, written 0600 to a
 * temp dir.
 */
export function etcdctlTlsFlags(pkiDir: string): Promise<string[]> {
  let p = operatorClients.get(pkiDir);
  if (!p) {
    p = (async () => {
      const c = await (await ClusterPki.open({ dir: pkiDir })).etcdClientCredentials();
      const dir = tempDir('etcdctl-client');
      return [
        `--cacert=${write(join(dir, 'etcd-ca.crt'), c.caPem)}`,
        `--cert=${write(join(dir, 'client.crt'), c.certPem)}`,
        `--key=${write(join(dir, 'client.key'), c.keyPem, 0o600)}`,
      ];
    })();
    operatorClients.set(pkiDir, p);
  }
  return p;
}

/**
 * A real etcd of `size` members whose server and peer certificates `pki` issued through the node
 * flow (key and CSR on the "node", ClusterPki.signCsr), as Drover renders etcd; `client` is the
 * harness's own health-check client (an etcd-client certificate of the same PKI).
 */
export function startPkiEtcd(
  pki: ClusterPki,
  client: { caPem: string; certPem: string; keyPem: string },
  size = 3,
): Promise<EtcdTlsHandle> {
  return startEtcdTls({
    size,
    healthClient: client,
    async certsFor(name, host) {
      const node: PkiNode = { id: name, hostname: name, addresses: [host] };
      const server = await issueViaCsr(pki, 'etcd-server', node, 'etcd');
      const peer = await issueViaCsr(pki, 'etcd-peer', node, 'etcd');
      return { caPem: server.caPem, server, peer };
    },
  });
}
