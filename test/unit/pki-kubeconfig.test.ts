import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  ClusterPki,
  DAY_MS,
  firstServiceIp,
  needsRenewal,
  type PkiNode,
  renderKubeconfig,
} from '../../coordinator/pki/index.js';
import { ManualClock } from '../../lib/clock.js';
import { x509 } from '../../lib/x509.js';
import { issueViaCsr, openssl, opensslSubject, opensslVerify } from '../helpers/pki.js';
import { rmrf, tempDir } from '../helpers/proc.js';

const node: PkiNode = { id: 'n1', hostname: 'w-1', addresses: ['10.0.0.21'] };
let dir: string;
let pki: ClusterPki;
beforeAll(async () => {
  dir = tempDir('pki-kc');
  pki = await ClusterPki.open({ dir, clusterName: 'lab' });
});
afterAll(() => rmrf(dir));

interface Kubeconfig {
  clusters: Array<{ name: string; cluster: Record<string, string> }>;
  users: Array<{ name: string; user: Record<string, string> }>;
  contexts: Array<{ name: string; context: Record<string, string> }>;
  'current-context': string;
}

describe('renderKubeconfig', () => {
  it('points node components at their on-node key by path', () => {
    const text = renderKubeconfig({
      clusterName: 'lab',
      server: 'https://10.0.0.100:6443',
      user: 'system:kube-scheduler',
      caPath: '/etc/kubernetes/pki/ca.crt',
      certPath: '/etc/kubernetes/pki/scheduler.crt',
      keyPath: '/etc/kubernetes/pki/scheduler.key',
    });
    expect(text).toBe(`apiVersion: v1
kind: Config
clusters:
  - name: lab
    cluster:
      server: https://10.0.0.100:6443
      certificate-authority: /etc/kubernetes/pki/ca.crt
users:
  - name: system:kube-scheduler
    user:
      client-certificate: /etc/kubernetes/pki/scheduler.crt
      client-key: /etc/kubernetes/pki/scheduler.key
contexts:
  - name: system:kube-scheduler@lab
    context:
      cluster: lab
      user: system:kube-scheduler
current-context: system:kube-scheduler@lab
preferences: {}
`);
  });

  it('embeds PEM as base64 data', () => {
    const kc = parse(
      renderKubeconfig({
        clusterName: 'c',
        server: 'https://h:6443',
        user: 'u',
        caPem: 'CA',
        certPem: 'CERT\n',
        keyPem: 'KEY',
      }),
    ) as Kubeconfig;
    expect(Buffer.from(kc.clusters[0]!.cluster['certificate-authority-data']!, 'base64').toString()).toBe(
      'CA\n',
    );
    expect(Buffer.from(kc.users[0]!.user['client-certificate-data']!, 'base64').toString()).toBe('CERT\n');
    expect(Buffer.from(kc.users[0]!.user['client-key-data']!, 'base64').toString()).toBe('KEY\n');
  });

  it.each([
    [{ keyPem: 'K', keyPath: '/k' }, /exactly one of keyPem or keyPath/],
    [{}, /exactly one of keyPem or keyPath/],
    [{ keyPath: 'relative/k' }, /keyPath must be absolute/],
    [{ keyPath: '/k', server: 'h:6443:x' }, /is not a URL|must be http/],
    [{ keyPath: '/k', server: 'ftp://h' }, /must be http/],
    [{ keyPath: '/k', user: '' }, /user is required/],
  ])('refuses bad input %j', (over, msg) => {
    expect(() =>
      renderKubeconfig({
        clusterName: 'c',
        server: 'https://h:6443',
        user: 'u',
        caPem: 'CA',
        certPem: 'C',
        ...over,
      }),
    ).toThrow(msg);
  });
});

describe('adminKubeconfig', () => {
  it('embeds a system:masters cert that openssl verifies, and a key that matches it', async () => {
    const kc = parse(await pki.adminKubeconfig({ server: 'https://10.0.0.100:6443' })) as Kubeconfig;
    expect(kc['current-context']).toBe('drover-admin@lab');
    const ca = Buffer.from(kc.clusters[0]!.cluster['certificate-authority-data']!, 'base64').toString();
    const cert = Buffer.from(kc.users[0]!.user['client-certificate-data']!, 'base64').toString();
    const key = Buffer.from(kc.users[0]!.user['client-key-data']!, 'base64').toString();
    expect(ca).toBe(pki.caPem('cluster'));
    expect(opensslVerify(ca, cert, 'sslclient').code).toBe(0);
    expect(opensslSubject(cert)).toBe('subject=CN=drover-admin,O=system:masters');
    const fromKey = openssl(['pkey', '-pubout'], key);
    const fromCert = openssl(['x509', '-noout', '-pubkey'], cert);
    expect(fromKey.code).toBe(0);
    expect(fromKey.out).toBe(fromCert.out);
  });

  it('keeps no admin key on disk', async () => {
    await pki.adminKubeconfig({ server: 'https://10.0.0.100:6443' });
    const { readdirSync } = await import('node:fs');
    expect(readdirSync(dir).sort()).toEqual(
      ['ca.crt', 'ca.key', 'etcd', 'front-proxy-ca.crt', 'front-proxy-ca.key', 'sa.key', 'sa.pub'].sort(),
    );
  });
});

describe('needsRenewal', () => {
  it('renews a 1-year leaf in its last 30 days, and when expired or not yet valid', async () => {
    const { certPem } = await issueViaCsr(pki, 'kubelet-client', node, 'kubelet');
    const c = new x509.X509Certificate(certPem);
    const end = c.notAfter.getTime();
    expect(needsRenewal(certPem, c.notBefore.getTime() + DAY_MS)).toBe(false);
    expect(needsRenewal(certPem, end - 31 * DAY_MS)).toBe(false);
    expect(needsRenewal(certPem, end - 30 * DAY_MS)).toBe(true);
    expect(needsRenewal(certPem, end + 1)).toBe(true);
    expect(needsRenewal(certPem, c.notBefore.getTime() - 1)).toBe(true);
    expect(pki.leafNeedsRenewal(certPem, end - 29 * DAY_MS)).toBe(true);
  });

  it('caps the window at a third of a short lifetime', async () => {
    const d = tempDir('pki-short');
    try {
      const short = await ClusterPki.open({ dir: d, leafLifetime: '3h' });
      const { certPem } = await issueViaCsr(short, 'kube-proxy', node, 'kube-proxy');
      const end = new x509.X509Certificate(certPem).notAfter.getTime();
      // valid 3h plus the 5 min back-dating; the window is a third of the 3h as issued: 60m
      expect(needsRenewal(certPem, end - 61 * 60_000)).toBe(false);
      expect(needsRenewal(certPem, end - 59 * 60_000)).toBe(true);
    } finally {
      rmrf(d);
    }
  });
});

describe('rotateIfNeeded', () => {
  it('re-signs a CA near expiry with the same key, so old leaves keep verifying', async () => {
    const d = tempDir('pki-rot');
    try {
      const now = Date.now();
      const clock = new ManualClock(now - 2.5 * 3_600_000);
      const p = await ClusterPki.open({ dir: d, caLifetime: '3h', clock });
      const oldCa = p.caPem('etcd');
      const leaf = await issueViaCsr(p, 'etcd-server', node, 'etcd');
      // leaves never outlive their CA
      expect(new x509.X509Certificate(leaf.certPem).notAfter.getTime()).toBeLessThanOrEqual(
        new x509.X509Certificate(oldCa).notAfter.getTime(),
      );
      expect(await p.rotateIfNeeded(now - 2.4 * 3_600_000)).toEqual({ renewed: [] });
      const r = await p.rotateIfNeeded(now);
      expect(r.renewed.sort()).toEqual(['cluster', 'etcd', 'front-proxy']);
      const newCa = p.caPem('etcd');
      expect(newCa).not.toBe(oldCa);
      expect(readFileSync(join(d, 'etcd/ca.crt'), 'utf8')).toBe(newCa);
      expect(new x509.X509Certificate(newCa).notAfter.getTime()).toBeGreaterThan(now + 2.9 * 3_600_000);
      expect(opensslVerify(newCa, leaf.certPem).code).toBe(0);
      expect(await p.rotateIfNeeded(now)).toEqual({ renewed: [] });
      const reopened = await ClusterPki.open({ dir: d, caLifetime: '3h' });
      expect(reopened.caPem('etcd')).toBe(newCa);
    } finally {
      rmrf(d);
    }
  });
});

describe('firstServiceIp', () => {
  it.each([
    ['10.96.0.0/12', '10.96.0.1'],
    ['10.96.5.7/12', '10.96.0.1'],
    ['172.16.0.0/16', '172.16.0.1'],
    ['fd00:10:96::/112', 'fd00:10:96::1'],
  ])('%s → %s', (cidr, ip) => expect(firstServiceIp(cidr)).toBe(ip));
  it.each(['10.96.0.0', '10.96.0.0/31', 'nope/12', '10.96.0.0/x'])('refuses %s', (cidr) =>
    expect(() => firstServiceIp(cidr)).toThrow(/serviceCidr/),
  );
});
