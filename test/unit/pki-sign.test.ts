import { readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COORDINATOR_ERRORS } from '../../coordinator/errors.js';
import {
  CERT_PROFILES,
  type CertProfile,
  ClusterPki,
  DEFAULT_PROFILE_ROLES,
  PKI_ERRORS,
  type PkiNode,
} from '../../coordinator/pki/index.js';
import { generateCsr } from '../../lib/csr.js';
import { x509 } from '../../lib/x509.js';
import {
  issueViaCsr,
  openssl,
  opensslSans,
  opensslSubject,
  opensslVerify,
  testContext,
} from '../helpers/pki.js';
import { rmrf, tempDir } from '../helpers/proc.js';

const node: PkiNode = { id: 'n1', hostname: 'cp-1', addresses: ['10.0.0.11', '127.0.0.2'] };
let dir: string;
let pki: ClusterPki;

beforeAll(async () => {
  dir = tempDir('pki');
  pki = await ClusterPki.open({ dir, clusterName: 'test' });
});
afterAll(() => rmrf(dir));

const nodeProfiles = CERT_PROFILES.filter((p) => p !== 'admin');

function signReq(over: Partial<Parameters<ClusterPki['signCsr']>[0]> & { csrPem: string }) {
  return {
    nodeId: node.id,
    hostname: node.hostname,
    nodeAddresses: node.addresses,
    profile: 'kubelet-client',
    instanceRole: 'kubelet',
    assignedRoles: ['kubelet'],
    context: testContext,
    ...over,
  };
}

describe('ClusterPki storage', () => {
  it('creates the kubeadm layout with private keys 0600', () => {
    for (const f of ['ca.key', 'etcd/ca.key', 'front-proxy-ca.key', 'sa.key'])
      expect((statSync(join(dir, f)).mode & 0o777).toString(8), f).toBe('600');
    for (const f of ['ca.crt', 'etcd/ca.crt', 'front-proxy-ca.crt', 'sa.pub'])
      expect(readFileSync(join(dir, f), 'utf8')).toMatch(/^-----BEGIN /);
    expect((statSync(dir).mode & 0o777).toString(8)).toBe('700');
  });

  it('reopens the same CAs and service-account key instead of minting new ones', async () => {
    const again = await ClusterPki.open({ dir, clusterName: 'test' });
    expect(again.caPem('cluster')).toBe(pki.caPem('cluster'));
    expect(again.caPem('etcd')).toBe(pki.caPem('etcd'));
    expect(again.serviceAccountKeys()).toEqual(pki.serviceAccountKeys());
    // a leaf issued by the first instance verifies against the reopened CA
    const leaf = await issueViaCsr(pki, 'scheduler', node, 'kube-scheduler');
    expect(opensslVerify(again.caPem(), leaf.certPem).code).toBe(0);
  });

  it('uses three distinct CAs', () => {
    const cas = new Set([pki.caPem('cluster'), pki.caPem('etcd'), pki.caPem('front-proxy')]);
    expect(cas.size).toBe(3);
    const ca = new x509.X509Certificate(pki.caPem('cluster'));
    const years = (ca.notAfter.getTime() - ca.notBefore.getTime()) / (365 * 86_400_000);
    expect(years).toBeGreaterThan(9.99);
    expect(years).toBeLessThan(10.01);
  });

  it('refuses a key without its cert, naming both files, and changes nothing', async () => {
    const d = tempDir('pki-half');
    try {
      await ClusterPki.open({ dir: d });
      unlinkSync(join(d, 'etcd/ca.crt'));
      const before = readFileSync(join(d, 'etcd/ca.key'), 'utf8');
      await expect(ClusterPki.open({ dir: d })).rejects.toMatchObject({
        code: 'DROVER_ERR_PKI_STORE',
        message: expect.stringContaining('etcd/ca.key exists but'),
      });
      expect(readFileSync(join(d, 'etcd/ca.key'), 'utf8')).toBe(before);
    } finally {
      rmrf(d);
    }
  });

  it('refuses a CA key that does not match its cert', async () => {
    const d = tempDir('pki-swap');
    try {
      await ClusterPki.open({ dir: d });
      writeFileSync(join(d, 'ca.key'), readFileSync(join(d, 'etcd/ca.key')));
      await expect(ClusterPki.open({ dir: d })).rejects.toMatchObject({
        code: 'DROVER_ERR_PKI_STORE',
        message: expect.stringContaining('does not match'),
      });
    } finally {
      rmrf(d);
    }
  });

  it('rejects unknown options and bad durations', async () => {
    await expect(ClusterPki.open({ dir, bogus: 1 } as never)).rejects.toMatchObject({
      code: 'DROVER_ERR_PKI_OPTIONS',
    });
    await expect(ClusterPki.open({ dir, leafLifetime: 'soon' })).rejects.toThrow(/leafLifetime/);
  });
});

describe('signCsr issues chains openssl accepts', () => {
  it.each(nodeProfiles)(
    '%s verifies with openssl against its CA, with the right purpose',
    async (profile) => {
      const role = DEFAULT_PROFILE_ROLES[profile][0]!;
      const issued = await issueViaCsr(pki, profile, node, role);
      const spec = pki.specFor(profile, { node, role, context: testContext });
      expect(issued.caPem).toBe(pki.caPem(spec.issuer));
      const v = opensslVerify(issued.caPem, issued.certPem);
      expect(v.out).toContain('OK');
      expect(v.code).toBe(0);
      for (const u of spec.usages) {
        const purpose = u === 'serverAuth' ? 'sslserver' : 'sslclient';
        expect(opensslVerify(issued.caPem, issued.certPem, purpose).code, purpose).toBe(0);
      }
      // a leaf from one CA must not verify against another
      const other = spec.issuer === 'etcd' ? pki.caPem('cluster') : pki.caPem('etcd');
      expect(opensslVerify(other, issued.certPem).code).not.toBe(0);
    },
  );

  it('apiserver-serving carries every SAN the API needs', async () => {
    const issued = await issueViaCsr(pki, 'apiserver-serving', node, 'kube-apiserver');
    const sans = opensslSans(issued.certPem);
    for (const want of [
      'DNS:cp-1',
      'DNS:kubernetes',
      'DNS:kubernetes.default',
      'DNS:kubernetes.default.svc',
      'DNS:kubernetes.default.svc.cluster.local',
      'DNS:api.example.test',
      'IP Address:10.0.0.11',
      'IP Address:127.0.0.2',
      'IP Address:10.0.0.100',
      'IP Address:10.96.0.1',
    ])
      expect(sans).toContain(want);
    expect(sans).toHaveLength(10);
    const leaf = new x509.X509Certificate(issued.certPem);
    const days = (leaf.notAfter.getTime() - leaf.notBefore.getTime()) / 86_400_000;
    expect(days).toBeGreaterThan(364.9);
    expect(days).toBeLessThan(365.1);
  });

  it('kubelet-client is system:node:<hostname> in system:nodes', async () => {
    const issued = await issueViaCsr(pki, 'kubelet-client', node, 'kubelet');
    expect(opensslSubject(issued.certPem)).toBe('subject=CN=system:node:cp-1,O=system:nodes');
  });

  it.each<[CertProfile, string]>([
    ['scheduler', 'CN=system:kube-scheduler'],
    ['controller-manager', 'CN=system:kube-controller-manager'],
    ['kube-proxy', 'CN=system:kube-proxy,O=system:node-proxier'],
    ['etcd-client', 'CN=kube-apiserver-etcd-client'],
  ])('%s subject is %s', async (profile, subject) => {
    const role = DEFAULT_PROFILE_ROLES[profile][0]!;
    const issued = await issueViaCsr(pki, profile, node, role);
    expect(opensslSubject(issued.certPem)).toBe(`subject=${subject}`);
  });

  it('etcd server and peer certs name the host and its addresses', async () => {
    const server = opensslSans((await issueViaCsr(pki, 'etcd-server', node, 'etcd')).certPem);
    expect(server).toEqual(
      expect.arrayContaining(['DNS:cp-1', 'DNS:localhost', 'IP Address:10.0.0.11', 'IP Address:127.0.0.1']),
    );
    const peer = opensslSans((await issueViaCsr(pki, 'etcd-peer', node, 'etcd')).certPem);
    // loopback too: with --peer-client-cert-auth etcd checks the dialing peer's source address,
    // which is 127.0.0.1 for members on one host
    expect(peer.sort()).toEqual([
      'DNS:cp-1',
      'DNS:localhost',
      'IP Address:0:0:0:0:0:0:0:1',
      'IP Address:10.0.0.11',
      'IP Address:127.0.0.1',
      'IP Address:127.0.0.2',
    ]);
  });
});

describe('signCsr refuses CSRs that do not match the node and role', () => {
  it('refuses a SAN the node does not have, listing it', async () => {
    const spec = pki.specFor('apiserver-serving', { node, role: 'kube-apiserver', context: testContext });
    const { csrPem } = await generateCsr({ ...spec, dnsNames: [...spec.dnsNames, 'evil.example'] });
    const err = await pki
      .signCsr(
        signReq({
          csrPem,
          profile: 'apiserver-serving',
          instanceRole: 'kube-apiserver',
          assignedRoles: ['kube-apiserver'],
        }),
      )
      .catch((e) => e);
    expect(err.code).toBe('DROVER_ERR_CSR_SAN');
    expect(err.name).toBe('TerminalError');
    expect(err.details.extra).toEqual(['dns:evil.example']);
  });

  it('refuses a CSR missing a SAN, listing it', async () => {
    const spec = pki.specFor('etcd-peer', { node, role: 'etcd', context: testContext });
    const { csrPem } = await generateCsr({
      ...spec,
      ipAddresses: spec.ipAddresses.filter((ip) => ip !== '127.0.0.2'),
    });
    const err = await pki
      .signCsr(signReq({ csrPem, profile: 'etcd-peer', instanceRole: 'etcd', assignedRoles: ['etcd'] }))
      .catch((e) => e);
    expect(err.code).toBe('DROVER_ERR_CSR_SAN');
    expect(err.details.missing).toEqual(['ip:127.0.0.2']);
  });

  it('refuses another node’s identity (subject mismatch)', async () => {
    const { csrPem } = await generateCsr({ commonName: 'system:node:cp-2', organizations: ['system:nodes'] });
    await expect(pki.signCsr(signReq({ csrPem }))).rejects.toMatchObject({
      code: 'DROVER_ERR_CSR_SUBJECT',
      message: expect.stringContaining('want CN=system:node:cp-1'),
    });
  });

  it('refuses an added O=system:masters', async () => {
    const { csrPem } = await generateCsr({
      commonName: 'system:node:cp-1',
      organizations: ['system:nodes', 'system:masters'],
    });
    await expect(pki.signCsr(signReq({ csrPem }))).rejects.toMatchObject({ code: 'DROVER_ERR_CSR_SUBJECT' });
  });

  it('refuses a profile the role may not have (kubelet asking for apiserver-serving)', async () => {
    const spec = pki.specFor('apiserver-serving', { node, role: 'kubelet', context: testContext });
    const { csrPem } = await generateCsr(spec);
    await expect(pki.signCsr(signReq({ csrPem, profile: 'apiserver-serving' }))).rejects.toMatchObject({
      code: 'DROVER_ERR_CSR_PROFILE_NOT_ALLOWED',
      message: expect.stringContaining('not issued to role kubelet'),
    });
  });

  it('refuses admin to any node role', async () => {
    const { csrPem } = await generateCsr({ commonName: 'drover-admin', organizations: ['system:masters'] });
    for (const role of ['kube-apiserver', 'etcd', 'kubelet'])
      await expect(
        pki.signCsr(signReq({ csrPem, profile: 'admin', instanceRole: role, assignedRoles: [role] })),
      ).rejects.toMatchObject({ code: 'DROVER_ERR_CSR_PROFILE_NOT_ALLOWED' });
  });

  it('refuses a role that is not assigned to the node', async () => {
    const { csrPem } = await generateCsr({ commonName: 'system:kube-scheduler' });
    await expect(
      pki.signCsr(
        signReq({ csrPem, profile: 'scheduler', instanceRole: 'kube-scheduler', assignedRoles: ['kubelet'] }),
      ),
    ).rejects.toMatchObject({ code: 'DROVER_ERR_CSR_ROLE_NOT_ASSIGNED' });
  });

  it('refuses an unknown profile', async () => {
    const { csrPem } = await generateCsr({ commonName: 'x' });
    await expect(pki.signCsr(signReq({ csrPem, profile: 'root-ca' }))).rejects.toMatchObject({
      code: 'DROVER_ERR_CSR_PROFILE_UNKNOWN',
    });
  });

  it('refuses a CSR whose signature does not verify (subject altered after signing)', async () => {
    const { csrPem } = await generateCsr({ commonName: 'system:node:cp-9', organizations: ['system:nodes'] });
    const der = Buffer.from(new x509.Pkcs10CertificateRequest(csrPem).rawData);
    const at = der.indexOf(Buffer.from('system:node:cp-9'));
    expect(at).toBeGreaterThan(0);
    der.write('system:node:cp-1', at); // same length: still decodes, now claims cp-1
    const tampered = x509.PemConverter.encode(der, 'CERTIFICATE REQUEST');
    await expect(pki.signCsr(signReq({ csrPem: tampered }))).rejects.toMatchObject({
      code: 'DROVER_ERR_CSR_SIGNATURE',
    });
  });

  it('refuses garbage and non-CSR PEM', async () => {
    await expect(pki.signCsr(signReq({ csrPem: 'hello' }))).rejects.toMatchObject({
      code: 'DROVER_ERR_CSR_PARSE',
    });
    await expect(
      pki.signCsr(
        signReq({ csrPem: '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n' }),
      ),
    ).rejects.toMatchObject({ code: 'DROVER_ERR_CSR_PARSE' });
  });

  it('refuses a bad service CIDR with a context error, not a crash', async () => {
    const spec = pki.specFor('kubelet-client', { node, role: 'kubelet', context: testContext });
    const { csrPem } = await generateCsr(spec);
    await expect(
      pki.signCsr(
        signReq({
          csrPem,
          profile: 'apiserver-serving',
          instanceRole: 'kube-apiserver',
          assignedRoles: ['kube-apiserver'],
          context: { ...testContext, serviceCidr: '10.96.0.0' },
        }),
      ),
    ).rejects.toMatchObject({ code: 'DROVER_ERR_CSR_CONTEXT' });
  });
});

describe('lib/csr generateCsr (agent side)', () => {
  it('makes an ECDSA P-256 key and a CSR openssl verifies, with the requested names', async () => {
    const { keyPem, csrPem } = await generateCsr({
      commonName: 'system:node:cp-1',
      organizations: ['system:nodes'],
      dnsNames: ['cp-1'],
      ipAddresses: ['10.0.0.11'],
    });
    const req = openssl(['req', '-noout', '-verify', '-text'], csrPem);
    expect(req.code).toBe(0);
    expect(req.out).toMatch(/verify OK/i);
    expect(req.out).toContain('DNS:cp-1, IP Address:10.0.0.11');
    expect(openssl(['pkey', '-noout', '-text'], keyPem).out).toContain('prime256v1');
    expect(keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
  });

  it('requires a common name', async () => {
    await expect(generateCsr({ commonName: '' })).rejects.toThrow(/commonName/);
  });
});

describe('PKI error registry', () => {
  it('every PKI code is in COORDINATOR_ERRORS, documented and has a status', () => {
    for (const [code, spec] of Object.entries(PKI_ERRORS)) {
      expect(COORDINATOR_ERRORS[code], code).toBe(spec);
      expect(spec.description.length).toBeGreaterThan(10);
      expect(spec.status).toBeGreaterThanOrEqual(400);
      expect(code).toMatch(/^DROVER_ERR_(CSR|PKI)_[A-Z_]+$/);
    }
  });
});
