/**
 * CSR generation for the agent. The node makes its own key pair and sends only the CSR, so
 * private keys never leave the node. The subject and subjectAltNames must be exactly what the
 * coordinator's profile issues for this node and role (the coordinator refuses anything else);
 * the plan tells the agent which names to ask for.
 */
import { x509 } from './x509.js';
import { generateKeyPair, nodeCrypto, privateKeyToPem, SIGNING_ALGORITHM } from './x509-keys.js';

export interface CsrSubject {
  commonName: string;
  /** `O=` values, e.g. `system:nodes` */
  organizations?: string[];
  dnsNames?: string[];
  ipAddresses?: string[];
}

export interface GeneratedCsr {
  /** PKCS#8 PEM; write it with mode 0600 and never send it anywhere */
  keyPem: string;
  csrPem: string;
}

/** Builds an X.500 name with the given CN and O values (order: O…, CN, as kubeadm does). */
export function subjectName(s: Pick<CsrSubject, 'commonName' | 'organizations'>): x509.JsonName {
  const name: x509.JsonName = (s.organizations ?? []).map((o) => ({ O: [o] }));
  name.push({ CN: [s.commonName] });
  return name;
}

export function sanEntries(s: Pick<CsrSubject, 'dnsNames' | 'ipAddresses'>): x509.JsonGeneralNames {
  return [
    ...(s.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(s.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
}

/** Generates an ECDSA P-256 key pair on this host and a CSR for it. */
export async function generateCsr(subject: CsrSubject, keys?: CryptoKeyPair): Promise<GeneratedCsr> {
  if (!subject.commonName) throw new Error('generateCsr: commonName is required');
  const pair = keys ?? (await generateKeyPair());
  const sans = sanEntries(subject);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    {
      name: subjectName(subject),
      keys: pair,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: sans.length ? [new x509.SubjectAlternativeNameExtension(sans)] : [],
    },
    nodeCrypto,
  );
  return { keyPem: await privateKeyToPem(pair.privateKey), csrPem: csr.toString('pem') };
}
