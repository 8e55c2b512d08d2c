/**
 * Key handling shared by the agent (which makes its own key and CSR) and the coordinator's PKI.
 * Everything goes through Node's WebCrypto so @peculiar/x509 can sign with the same keys.
 * Private keys are written as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), which etcd, Kubernetes
 * components, haproxy and openssl all read.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { nodeCrypto, x509 } from './x509.js';

export { nodeCrypto };

/** ECDSA P-256 with SHA-256: small, fast, and accepted by every Kubernetes component and etcd. */
export const EC_P256: EcKeyGenParams & EcKeyImportParams = { name: 'ECDSA', namedCurve: 'P-256' };
export const SIGNING_ALGORITHM: EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };

export async function generateKeyPair(): Promise<CryptoKeyPair> {
  return (await nodeCrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify'])) as CryptoKeyPair;
}

export async function privateKeyToPem(key: CryptoKey): Promise<string> {
  const der = await nodeCrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

export async function publicKeyToPem(key: CryptoKey): Promise<string> {
  const der = await nodeCrypto.subtle.exportKey('spki', key);
  return x509.PemConverter.encode(der, 'PUBLIC KEY');
}

/**
 * Imports a PEM private key (PKCS#8, SEC1 "EC PRIVATE KEY" or PKCS#1 "RSA PRIVATE KEY") as a
 * WebCrypto signing key plus its public half. Throws a plain Error naming the problem.
 */
export async function importPrivateKeyPem(pem: string): Promise<CryptoKeyPair> {
  let ko: ReturnType<typeof createPrivateKey>;
  try {
    ko = createPrivateKey(pem);
  } catch (err) {
    throw new Error(`not a readable PEM private key: ${(err as Error).message}`);
  }
  const pkcs8 = ko.export({ format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(ko).export({ format: 'der', type: 'spki' });
  let alg: EcKeyImportParams | RsaHashedImportParams;
  if (ko.asymmetricKeyType === 'ec') {
    const curve = ko.asymmetricKeyDetails?.namedCurve;
    const namedCurve = curve === 'prime256v1' ? 'P-256' : curve === 'secp384r1' ? 'P-384' : undefined;
    if (!namedCurve) throw new Error(`unsupported EC curve ${curve ?? '?'} (P-256 or P-384 only)`);
    alg = { name: 'ECDSA', namedCurve };
  } else if (ko.asymmetricKeyType === 'rsa') {
    alg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  } else {
    throw new Error(`unsupported key type ${ko.asymmetricKeyType ?? '?'} (ECDSA or RSA only)`);
  }
  const privateKey = await nodeCrypto.subtle.importKey('pkcs8', pkcs8, alg, true, ['sign']);
  const publicKey = await nodeCrypto.subtle.importKey('spki', spki, alg, true, ['verify']);
  return { privateKey, publicKey };
}
