import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Applier } from '../../agent/applier.js';
import { CertManager, type CsrTransport } from '../../agent/certs.js';
import { ProcessRuntime } from '../../agent/runtime/process.js';
import { buildInstanceStatus } from '../../agent/status.js';
import { planCertificates } from '../../coordinator/catalog/index.js';
import { ClusterPki } from '../../coordinator/pki/index.js';
import { ManualClock } from '../../lib/clock.js';
import { generateCsr } from '../../lib/csr.js';
import { x509 } from '../../lib/x509.js';
import { type InstanceSpec, PROTOCOL_VERSION } from '../../protocol/index.js';
import { makeNode } from '../helpers/cluster-fixtures.js';
import { opensslVerify } from '../helpers/pki.js';
import { rmrf, tempDir } from '../helpers/proc.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmrf(d);
});

const START = Date.parse('2026-11-23T08:00:00Z');
const node = makeNode({ id: 'n1', address: '10.0.0.21' });
const context = { clusterDomain: 'cluster.local', serviceCidr: '10.0.0.0/24' };

/** A kube-proxy instance as the catalog renders it with a PKI. */
function proxySpec(): InstanceSpec {
  const topology = {
    cluster: { certDir: '/etc/kubernetes/pki', clusterDomain: 'cluster.local', serviceCIDR: '10.0.0.0/24' },
  };
  const certificates = planCertificates(
    {
      topology,
      role: 'kube-proxy',
      node,
      assignment: { role: 'kube-proxy', ordinal: 0 },
      api: { host: '10.0.0.10', port: 6443, url: 'https://10.0.0.10:6443', via: 'load-balancer' },
    } as never,
    { serviceAccount: { publicKeyPem: '', privateKeyPem: '' } },
  );
  return {
    id: 'kube-proxy#0',
    role: 'kube-proxy',
    epoch: 1,
    checksum: '0'.repeat(64),
    simulated: false,
    files: [],
    run: { command: 'kube-proxy', args: [], env: {} },
    restart: {
      policy: 'always',
      initialBackoffMs: 1,
      maxBackoffMs: 1,
      resetAfterMs: 1,
      crashLoopThreshold: 1,
    },
    certificates,
  };
}

async function setup(leafLifetime = '3h') {
  const clock = new ManualClock(START);
  const pkiDir = tempDir('certs-pki');
  const rootDir = tempDir('certs-root');
  dirs.push(pkiDir, rootDir);
  const pki = await ClusterPki.open({ dir: pkiDir, leafLifetime, clock });
  const asked: string[] = [];
  // the coordinator's side, minus NATS: signCsr with the node and role it knows
  const transport: CsrTransport = async (req) => {
    asked.push(req.profile);
    try {
      const c = await pki.signCsr({
        csrPem: req.csrPem,
        nodeId: node.id,
        hostname: node.hostname,
        nodeAddresses: [node.address],
        profile: req.profile,
        instanceRole: 'kube-proxy',
        assignedRoles: ['kube-proxy'],
        context: { ...context, apiEndpointAddresses: ['10.0.0.10'] },
      });
      return { v: PROTOCOL_VERSION, type: 'csr-reply', ok: true, certPem: c.certPem, caPem: c.caPem };
    } catch (err) {
      const e = err as { code: string; message: string };
      return {
        v: PROTOCOL_VERSION,
        type: 'csr-reply',
        ok: false,
        error: { code: e.code, message: e.message },
      };
    }
  };
  let connected = true;
  const certs = new CertManager({ rootDir, clock, transport: () => (connected ? transport : undefined) });
  return {
    clock,
    pki,
    rootDir,
    certs,
    asked,
    disconnect: () => {
      connected = false;
    },
  };
}

describe('agent certificates (CertManager)', () => {
  it('obtains the key and certificate once, keeps them while valid, and renews in the renewal window', async () => {
    const { clock, pki, rootDir, certs, asked } = await setup('3h');
    const spec = proxySpec();
    const c = spec.certificates![0]!;
    expect(await certs.ensure(spec)).toBe(true);
    const certFile = join(rootDir, c.certPath);
    const first = readFileSync(certFile, 'utf8');
    expect(opensslVerify(pki.caPem('cluster'), first, 'sslclient', clock.now()).code).toBe(0);
    expect(statSync(join(rootDir, c.keyPath)).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(rootDir, c.caPath), 'utf8')).toBe(pki.caPem('cluster'));
    expect(await certs.ensure(spec)).toBe(false);
    clock.advance(90 * 60_000); // 1.5 h of 3 h: not yet in the last third
    expect(await certs.check(c)).toBeUndefined();
    clock.advance(40 * 60_000); // inside the last hour
    expect(await certs.check(c)).toBe('renew');
    expect(await certs.ensure(spec)).toBe(true);
    expect(readFileSync(certFile, 'utf8')).not.toBe(first);
    expect(await certs.check(c)).toBeUndefined();
    expect(asked).toEqual(['kube-proxy', 'kube-proxy']);
  });

  it("renews early when the plan names the serial on disk (the coordinator's renewal), and only that one", async () => {
    const { rootDir, certs, asked } = await setup('3h');
    const spec = proxySpec();
    const c = spec.certificates![0]!;
    await certs.ensure(spec);
    const first = new x509.X509Certificate(readFileSync(join(rootDir, c.certPath), 'utf8'));
    expect(await certs.check({ ...c, renewSerial: 'ffff' })).toBeUndefined();
    const asking = { ...spec, certificates: [{ ...c, renewSerial: first.serialNumber.toUpperCase() }] };
    expect(await certs.check(asking.certificates[0]!)).toBe('renew');
    expect(await certs.ensure(asking)).toBe(true);
    const second = new x509.X509Certificate(readFileSync(join(rootDir, c.certPath), 'utf8'));
    expect(second.serialNumber).not.toBe(first.serialNumber);
    // the same plan again: the serial it names is gone, nothing more to do
    expect(await certs.ensure(asking)).toBe(false);
    expect(asked).toEqual(['kube-proxy', 'kube-proxy']);
  });

  it('replaces a certificate for other names or another key', async () => {
    const { rootDir, certs } = await setup();
    const spec = proxySpec();
    const c = spec.certificates![0]!;
    await certs.ensure(spec);
    const keyFile = join(rootDir, c.keyPath);
    writeFileSync(keyFile, (await generateCsr({ commonName: 'x' })).keyPem);
    expect(await certs.check(c)).toBe('key');
    expect(await certs.ensure(spec)).toBe(true);
    expect(await certs.check({ ...c, commonName: 'system:kube-proxy-other' })).toBe('names');
    expect(await certs.check({ ...c, organizations: [] })).toBe('names');
  });

  it('with the coordinator away, valid certificates are enough; a missing one fails naming why', async () => {
    const { rootDir, certs, disconnect } = await setup();
    const spec = proxySpec();
    await certs.ensure(spec);
    disconnect();
    expect(await certs.ensure(spec)).toBe(false);
    rmrf(join(rootDir, spec.certificates![0]!.certPath));
    await expect(certs.ensure(spec)).rejects.toMatchObject({
      code: 'DROVER_ERR_CERTIFICATE',
      message: expect.stringMatching(
        /kube-proxy#0: kube-proxy certificate \/etc\/kubernetes\/pki\/kube-proxy-0\/kube-proxy\.crt: it is missing, and the coordinator cannot be asked/,
      ),
    });
  });

  it('a refused CSR fails with the coordinator’s code and leaves nothing behind', async () => {
    const { rootDir, certs } = await setup();
    const spec = proxySpec();
    // the plan asks for a name the coordinator will not issue to this node
    spec.certificates![0]!.commonName = 'system:kube-scheduler';
    await expect(certs.ensure(spec)).rejects.toMatchObject({
      code: 'DROVER_ERR_CERTIFICATE',
      message: expect.stringMatching(/refused the CSR: DROVER_ERR_CSR_SUBJECT/),
    });
    expect(() => statSync(join(rootDir, spec.certificates![0]!.keyPath))).toThrow();
  });
});

describe('an instance whose certificate cannot be used shows CrashLoop, naming the certificate', () => {
  it.each([
    ['does not match its key', 'not matching its key'],
    ['has expired', 'expired or inside its renewal window'],
  ])('a certificate that %s, with the coordinator away', async (what, reason) => {
    const { rootDir, certs, disconnect, clock } = await setup('3h');
    const spec = { ...proxySpec(), run: { command: '/bin/sleep', args: ['1000'], env: {} } };
    await certs.ensure(spec);
    const c = spec.certificates![0]!;
    if (what === 'does not match its key')
      writeFileSync(join(rootDir, c.keyPath), (await generateCsr({ commonName: 'x' })).keyPem);
    else clock.advance(4 * 3600_000); // past its 3 h lifetime
    disconnect();
    const dataDir = tempDir('certs-agent');
    dirs.push(dataDir);
    const runtime = new ProcessRuntime({ dataDir, pollIntervalMs: 100 });
    const applier = new Applier({ runtime, rootDir, dataDir, certs });
    const plan = {
      v: PROTOCOL_VERSION,
      type: 'plan' as const,
      nodeId: 'n1',
      generation: 1,
      coordinatorEpoch: 1,
      issuedAt: new Date(START).toISOString(),
      checksum: '0'.repeat(64),
      instances: [spec],
    };
    const out = await applier.apply(plan as never);
    try {
      // nothing was started on a certificate that cannot work
      expect(runtime.status(spec.id)).toBeUndefined();
      expect(out.errors[0]).toMatchObject({ id: spec.id, code: 'DROVER_ERR_CERTIFICATE' });
      const st = buildInstanceStatus(
        spec,
        undefined,
        undefined,
        false,
        undefined,
        applier.startFailure(spec.id),
      );
      expect(st.phase).toBe('CrashLoop');
      expect(st.lastError).toContain(c.certPath);
      expect(st.lastError).toContain(reason);
    } finally {
      await runtime.close?.();
    }
  });
});
