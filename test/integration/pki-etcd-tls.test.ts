import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterPki, type PkiNode } from '../../coordinator/pki/index.js';
import { type EtcdTlsHandle, startPkiEtcd, tlsHealthy } from '../helpers/etcd-tls.js';
import { issueViaCsr } from '../helpers/pki.js';
import { requireBinary, rmrf, tempDir } from '../helpers/proc.js';

/**
 * A real 3-member etcd whose server and peer certificates were issued through the node flow
 * (key + CSR on the "node", ClusterPki.signCsr on the coordinator), with client-cert auth on both
 * sides. etcdctl with a Drover-issued etcd-client certificate reads and writes; without one, or
 * with a certificate from the wrong CA, it is refused.
 */
let dir: string;
let pki: ClusterPki;
let etcd: EtcdTlsHandle;
let client: { ca: string; cert: string; key: string };
let good: { caPem: string; certPem: string; keyPem: string };

function etcdctl(args: string[], commandTimeout = '8s') {
  const r = spawnSync(
    requireBinary('etcdctl'),
    [`--endpoints=${etcd.endpoints}`, '--dial-timeout=2s', `--command-timeout=${commandTimeout}`, ...args],
    { encoding: 'utf8', env: { ...process.env, ETCDCTL_API: '3' }, timeout: 20_000 },
  );
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

beforeAll(async () => {
  dir = tempDir('pki-etcd');
  pki = await ClusterPki.open({ dir: join(dir, 'pki'), clusterName: 'etcd-tls' });
  const apiserver: PkiNode = { id: 'cp-1', hostname: 'cp-1', addresses: ['127.0.0.1'] };
  const c = await issueViaCsr(pki, 'etcd-client', apiserver, 'kube-apiserver');
  client = {
    ca: join(dir, 'etcd-ca.crt'),
    cert: join(dir, 'apiserver-etcd-client.crt'),
    key: join(dir, 'apiserver-etcd-client.key'),
  };
  writeFileSync(client.ca, c.caPem);
  writeFileSync(client.cert, c.certPem);
  writeFileSync(client.key, c.keyPem, { mode: 0o600 });
  good = { caPem: c.caPem, certPem: c.certPem, keyPem: c.keyPem };
  etcd = await startPkiEtcd(pki, { caPem: c.caPem, certPem: c.certPem, keyPem: c.keyPem });
});
afterAll(() => rmrf(dir));

describe('etcd with Drover-issued TLS certificates', () => {
  it('forms a 3-member cluster over TLS peer links', () => {
    const r = etcdctl([
      `--cacert=${client.ca}`,
      `--cert=${client.cert}`,
      `--key=${client.key}`,
      'member',
      'list',
    ]);
    expect(r.code, r.out).toBe(0);
    const lines = r.out.trim().split('\n');
    expect(lines).toHaveLength(3);
    for (const l of lines) expect(l).toMatch(/started, etcd-\d, https:\/\/127\.0\.0\.1:\d+, https:\/\//);
  });

  it('etcdctl with a Drover client cert puts and gets', () => {
    const tls = [`--cacert=${client.ca}`, `--cert=${client.cert}`, `--key=${client.key}`];
    const put = etcdctl([...tls, 'put', '/drover/test', 'hello-tls']);
    expect(put.code, put.out).toBe(0);
    expect(put.out.trim()).toBe('OK');
    // read through each member, so every peer link replicated it
    for (const m of etcd.members) {
      const r = spawnSync(
        requireBinary('etcdctl'),
        [
          `--endpoints=${m.clientUrl}`,
          ...tls,
          'get',
          '/drover/test',
          '--print-value-only',
          '--consistency=s',
        ],
        { encoding: 'utf8', env: { ...process.env, ETCDCTL_API: '3' }, timeout: 20_000 },
      );
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe('hello-tls');
    }
  });

  it('refuses a client without a certificate', async () => {
    const url = etcd.members[0]!.clientUrl;
    // same server, same moment: the Drover cert is accepted and no cert is refused at the TLS layer
    expect(await tlsHealthy(url, good)).toBe(true);
    expect(await tlsHealthy(url, { caPem: good.caPem })).toBe(false);
    const r = etcdctl([`--cacert=${client.ca}`, 'get', '/drover/test'], '2s');
    expect(r.code).not.toBe(0);
    expect(r.out).not.toContain('hello-tls');
  });

  it('refuses a client certificate from the cluster CA instead of the etcd CA', async () => {
    const node: PkiNode = { id: 'w1', hostname: 'w1', addresses: ['127.0.0.1'] };
    const wrong = await issueViaCsr(pki, 'kubelet-client', node, 'kubelet');
    writeFileSync(join(dir, 'wrong.crt'), wrong.certPem);
    writeFileSync(join(dir, 'wrong.key'), wrong.keyPem, { mode: 0o600 });
    const url = etcd.members[1]!.clientUrl;
    expect(await tlsHealthy(url, good)).toBe(true);
    expect(await tlsHealthy(url, { caPem: good.caPem, certPem: wrong.certPem, keyPem: wrong.keyPem })).toBe(
      false,
    );
    const r = etcdctl(
      [
        `--cacert=${client.ca}`,
        `--cert=${join(dir, 'wrong.crt')}`,
        `--key=${join(dir, 'wrong.key')}`,
        'get',
        '/drover/test',
      ],
      '2s',
    );
    expect(r.code).not.toBe(0);
    expect(r.out).not.toContain('hello-tls');
  });
});
