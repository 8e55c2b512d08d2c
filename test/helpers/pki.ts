/**
 * Test helpers for the cluster PKI: run openssl against issued certificates, and go through the
 * real node flow (key + CSR made "on the node" with lib/csr.ts, signed by ClusterPki.signCsr).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CertProfile, ClusterPki, PkiClusterContext, PkiNode } from '../../coordinator/pki/index.js';
import { generateCsr } from '../../lib/csr.js';
import { requireBinary, rmrf, tempDir } from './proc.js';

export const testContext: PkiClusterContext = {
  clusterDomain: 'cluster.local',
  serviceCidr: '10.96.0.0/12',
  apiEndpointAddresses: ['10.0.0.100', 'api.example.test'],
};

export function openssl(args: string[], input?: string): { code: number; out: string } {
  const r = spawnSync(requireBinary('openssl'), args, { input, encoding: 'utf8' });
  return { code: r.status ?? -1, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

/** `openssl verify -CAfile ca [-purpose p] leaf`; returns openssl's exit code and output. */
/** Verifies `certPem` against `caPem` with openssl; `atMs` checks validity at that instant (a test's clock) instead of now. */
export function opensslVerify(
  caPem: string,
  certPem: string,
  purpose?: 'sslserver' | 'sslclient',
  atMs?: number,
) {
  const dir = tempDir('verify');
  try {
    writeFileSync(join(dir, 'ca.crt'), caPem);
    writeFileSync(join(dir, 'leaf.crt'), certPem);
    return openssl([
      'verify',
      '-CAfile',
      join(dir, 'ca.crt'),
      ...(purpose ? ['-purpose', purpose] : []),
      ...(atMs === undefined ? [] : ['-attime', String(Math.floor(atMs / 1000))]),
      join(dir, 'leaf.crt'),
    ]);
  } finally {
    rmrf(dir);
  }
}

/** subjectAltName as openssl prints it, e.g. `DNS:h1, IP Address:10.0.0.1`. */
export function opensslSans(certPem: string): string[] {
  const out = execFileSync(requireBinary('openssl'), ['x509', '-noout', '-ext', 'subjectAltName'], {
    input: certPem,
    encoding: 'utf8',
  });
  return out
    .split('\n')
    .slice(1)
    .join(',')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

export function opensslSubject(certPem: string): string {
  return execFileSync(requireBinary('openssl'), ['x509', '-noout', '-subject', '-nameopt', 'RFC2253'], {
    input: certPem,
    encoding: 'utf8',
  }).trim();
}

/** The whole node flow: the node makes its key and a CSR for the profile's spec; the coordinator signs. */
export async function issueViaCsr(
  pki: ClusterPki,
  profile: CertProfile,
  node: PkiNode,
  role: string,
  context: PkiClusterContext = testContext,
) {
  const spec = pki.specFor(profile, { node, role, context });
  const { keyPem, csrPem } = await generateCsr(spec);
  const issued = await pki.signCsr({
    csrPem,
    nodeId: node.id,
    hostname: node.hostname,
    nodeAddresses: node.addresses,
    profile,
    instanceRole: role,
    assignedRoles: [role],
    context,
  });
  return { ...issued, keyPem };
}
