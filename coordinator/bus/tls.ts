/**
 * The bus's TLS: a CA of its own (`<dataDir>/bus/ca.crt`, ten years) that signs the nats-server
 * certificate for the addresses agents dial. Agents verify the server against this CA, which the
 * join token carries and `drover-agent join` writes next to the agent's config.
 */
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { writeFileAtomic } from '../../lib/atomic-file.js';
import { nodeCrypto, x509 } from '../../lib/x509.js';
import {
  generateKeyPair,
  importPrivateKeyPem,
  privateKeyToPem,
  SIGNING_ALGORITHM,
} from '../../lib/x509-keys.js';

const DAY_MS = 86_400_000;
const CA_LIFETIME_MS = 3650 * DAY_MS;
const SERVER_LIFETIME_MS = 365 * DAY_MS;
/** a server certificate this close to its end, or naming other hosts, is issued again */
const SERVER_RENEW_BEFORE_MS = 30 * DAY_MS;

export interface BusTlsFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
  /** the CA certificate (PEM) */
  caPem: string;
  /** sha256 of the CA certificate's DER, hex: the CA pin */
  caFingerprint: string;
}

function serial(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f;
  return b.toString('hex');
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export function certFingerprint(pem: string): string {
  return createHash('sha256').update(new X509Certificate(pem).raw).digest('hex');
}

async function ensureCa(
  dir: string,
  now: number,
): Promise<{ cert: x509.X509Certificate; keys: CryptoKeyPair; pem: string }> {
  const certPath = join(dir, 'ca.crt');
  const keyPath = join(dir, 'ca.key');
  const [certPem, keyPem] = await Promise.all([readIfExists(certPath), readIfExists(keyPath)]);
  if (certPem && keyPem) {
    try {
      return {
        cert: new x509.X509Certificate(certPem),
        keys: await importPrivateKeyPem(keyPem),
        pem: certPem,
      };
    } catch (err) {
      throw new Error(
        `bus CA ${certPath} / ${keyPath} is unreadable (${(err as Error).message}); restore it from a backup`,
      );
    }
  }
  if (certPem || keyPem)
    throw new Error(`bus CA: one of ${certPath} and ${keyPath} is missing; restore both from a backup`);
  const keys = await generateKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serial(),
      name: 'CN=drover-bus-ca',
      keys,
      notBefore: new Date(now - 5 * 60_000),
      notAfter: new Date(now + CA_LIFETIME_MS),
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, nodeCrypto),
      ],
    },
    nodeCrypto,
  );
  await writeFileAtomic(keyPath, await privateKeyToPem(keys.privateKey), 0o600);
  await writeFileAtomic(certPath, cert.toString('pem'), 0o644);
  return { cert, keys, pem: cert.toString('pem') };
}

function sansOf(cert: x509.X509Certificate): string[] {
  const ext = cert.getExtension(x509.SubjectAlternativeNameExtension);
  return (ext?.names.items ?? []).map((n) => `${n.type}:${n.value}`).sort();
}

function wantedSans(hosts: readonly string[]): string[] {
  return [...new Set(['localhost', '127.0.0.1', ...hosts])]
    .map((h) => (isIP(h) ? `ip:${h}` : `dns:${h}`))
    .sort();
}

/**
 * Makes (once) the bus CA and (when missing, near its end, or for other hosts) the nats-server
 * certificate for `hosts` plus localhost. Returns the file paths for nats-server and the CA pin.
 */
export async function ensureBusTls(
  dir: string,
  hosts: readonly string[],
  now = Date.now(),
): Promise<BusTlsFiles> {
  for (const h of hosts)
    if (
      !isIP(h) &&
      !/^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(h)
    )
      throw new Error(`bus TLS: ${JSON.stringify(h)} is neither an IP address nor a host name`);
  const ca = await ensureCa(dir, now);
  const certFile = join(dir, 'server.crt');
  const keyFile = join(dir, 'server.key');
  const want = wantedSans(hosts);
  const existing = await readIfExists(certFile);
  let fresh = false;
  if (existing && (await readIfExists(keyFile))) {
    try {
      const c = new x509.X509Certificate(existing);
      fresh =
        c.notAfter.getTime() - now > SERVER_RENEW_BEFORE_MS &&
        JSON.stringify(sansOf(c)) === JSON.stringify(want) &&
        (await c.verify({ publicKey: ca.cert.publicKey, signatureOnly: true }, nodeCrypto));
    } catch {
      fresh = false;
    }
  }
  if (!fresh) {
    const keys = await generateKeyPair();
    const cert = await x509.X509CertificateGenerator.create(
      {
        serialNumber: serial(),
        subject: 'CN=drover-nats',
        issuer: ca.cert.subject,
        publicKey: keys.publicKey,
        signingKey: ca.keys.privateKey,
        notBefore: new Date(now - 5 * 60_000),
        notAfter: new Date(now + SERVER_LIFETIME_MS),
        signingAlgorithm: SIGNING_ALGORITHM,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(
            x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
            true,
          ),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
          new x509.SubjectAlternativeNameExtension(
            want.map((s) => {
              const [type, ...rest] = s.split(':');
              return { type: type as 'dns' | 'ip', value: rest.join(':') };
            }),
            false,
          ),
          await x509.AuthorityKeyIdentifierExtension.create(ca.cert, false, nodeCrypto),
        ],
      },
      nodeCrypto,
    );
    await writeFileAtomic(keyFile, await privateKeyToPem(keys.privateKey), 0o600);
    await writeFileAtomic(certFile, `${cert.toString('pem')}\n${ca.pem}`, 0o644);
  }
  return {
    caFile: join(dir, 'ca.crt'),
    certFile,
    keyFile,
    caPem: ca.pem,
    caFingerprint: certFingerprint(ca.pem),
  };
}
