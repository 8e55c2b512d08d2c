/**
 * CSR checks. The policy is *reject, don't rewrite*: a CSR must name exactly the subject and
 * subjectAltNames its profile issues for the node (see profiles.ts). Silently substituting our own
 * names would also be safe, but refusing a mismatch surfaces a misconfigured or compromised agent
 * instead of papering over it. Extensions other than subjectAltName in the request are ignored: the
 * issued certificate's key usages, basic constraints and lifetime are always the profile's.
 */
import { createPublicKey } from 'node:crypto';
import { nodeCrypto, x509 } from '../../lib/x509.js';
import { pkiError } from './errors.js';
import { type CertSpec, canonicalIp } from './profiles.js';

const SAN_OID = '2.5.29.17';
const MAX_CSR_BYTES = 64 * 1024;

/** Parses and self-verifies a CSR; checks its key type. */
export async function parseCsr(csrPem: string): Promise<x509.Pkcs10CertificateRequest> {
  if (typeof csrPem !== 'string' || !csrPem.includes('-----BEGIN CERTIFICATE REQUEST-----'))
    throw pkiError('DROVER_ERR_CSR_PARSE', 'csrPem is not a PEM "CERTIFICATE REQUEST" block');
  if (csrPem.length > MAX_CSR_BYTES)
    throw pkiError('DROVER_ERR_CSR_PARSE', `csrPem is larger than ${MAX_CSR_BYTES} bytes`);
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(csrPem);
  } catch (err) {
    throw pkiError(
      'DROVER_ERR_CSR_PARSE',
      `csrPem cannot be decoded: ${(err as Error).message}`,
      undefined,
      err,
    );
  }
  checkKey(csr);
  let ok = false;
  try {
    ok = await csr.verify(nodeCrypto);
  } catch (err) {
    throw pkiError('DROVER_ERR_CSR_SIGNATURE', `CSR signature cannot be checked: ${(err as Error).message}`);
  }
  if (!ok) throw pkiError('DROVER_ERR_CSR_SIGNATURE', 'CSR signature does not verify against its public key');
  return csr;
}

function checkKey(csr: x509.Pkcs10CertificateRequest): void {
  let type: string | undefined;
  let details: { namedCurve?: string; modulusLength?: number } | undefined;
  try {
    const k = createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: 'der', type: 'spki' });
    type = k.asymmetricKeyType;
    details = k.asymmetricKeyDetails;
  } catch (err) {
    throw pkiError('DROVER_ERR_CSR_KEY', `CSR public key cannot be read: ${(err as Error).message}`);
  }
  if (type === 'ec' && (details?.namedCurve === 'prime256v1' || details?.namedCurve === 'secp384r1')) return;
  if (type === 'rsa' && (details?.modulusLength ?? 0) >= 2048) return;
  throw pkiError(
    'DROVER_ERR_CSR_KEY',
    `CSR key ${type ?? '?'} ${details?.namedCurve ?? details?.modulusLength ?? ''} is not accepted (ECDSA P-256/P-384 or RSA >= 2048)`,
    { keyType: type },
  );
}

/** Refuses a CSR whose subject or SANs are not exactly the spec's. */
export function checkCsrMatches(csr: x509.Pkcs10CertificateRequest, spec: CertSpec): void {
  const cn: string[] = [];
  const o: string[] = [];
  const other: string[] = [];
  for (const rdn of csr.subjectName.toJSON()) {
    for (const [type, values] of Object.entries(rdn)) {
      if (type === 'CN') cn.push(...values);
      else if (type === 'O') o.push(...values);
      else other.push(`${type}=${values.join('+')}`);
    }
  }
  const wantO = [...spec.organizations].sort();
  const gotO = [...o].sort();
  if (cn.length !== 1 || cn[0] !== spec.commonName || other.length || gotO.join('\n') !== wantO.join('\n')) {
    throw pkiError(
      'DROVER_ERR_CSR_SUBJECT',
      `CSR subject "${csr.subject}" does not match profile ${spec.profile}: want CN=${spec.commonName}` +
        (wantO.length ? ` O=${wantO.join(',')}` : ' and no O') +
        (other.length ? `; unexpected ${other.join(', ')}` : ''),
      {
        profile: spec.profile,
        want: { commonName: spec.commonName, organizations: wantO },
        got: csr.subject,
      },
    );
  }

  const sanExts = csr.extensions.filter((e) => e.type === SAN_OID);
  if (sanExts.length > 1)
    throw pkiError('DROVER_ERR_CSR_SAN', 'CSR carries more than one subjectAltName extension');
  const got = new Set<string>();
  const unsupported: string[] = [];
  if (sanExts[0]) {
    const san = new x509.SubjectAlternativeNameExtension(sanExts[0].rawData);
    for (const n of san.names.items) {
      if (n.type === 'dns') got.add(`dns:${n.value.toLowerCase()}`);
      else if (n.type === 'ip') got.add(`ip:${canonicalIp(n.value) ?? n.value}`);
      else unsupported.push(`${n.type}:${n.value}`);
    }
  }
  const want = new Set([...spec.dnsNames.map((d) => `dns:${d}`), ...spec.ipAddresses.map((i) => `ip:${i}`)]);
  const missing = [...want].filter((w) => !got.has(w)).sort();
  const extra = [...[...got].filter((g) => !want.has(g)), ...unsupported].sort();
  if (missing.length || extra.length) {
    throw pkiError(
      'DROVER_ERR_CSR_SAN',
      `CSR subjectAltNames do not match profile ${spec.profile}` +
        (missing.length ? `; missing ${missing.join(', ')}` : '') +
        (extra.length ? `; not allowed ${extra.join(', ')}` : ''),
      { profile: spec.profile, missing, extra },
    );
  }
}
