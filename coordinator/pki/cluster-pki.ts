/**
 * The cluster PKI the coordinator keeps: a cluster CA (Kubernetes identities), an etcd CA, a
 * front-proxy CA (API aggregation) and the service-account key pair. It replaces kubeadm's
 * certificate phases (seed 003) and Arktos' create-kubeconfig.sh (seeds 000/001).
 *
 * Layout of `dir` (kubeadm's, so operators find what they expect; keys mode 0600, dir 0700):
 *   ca.crt ca.key  etcd/ca.crt etcd/ca.key  front-proxy-ca.crt front-proxy-ca.key  sa.key sa.pub
 *
 * Nodes' private keys never come here: a node sends a CSR and `signCsr` checks it against the
 * node and the role assigned to it. Two keys do leave the coordinator by design: `sa.key`, which
 * every API server and controller-manager needs to sign and verify service-account tokens (kubeadm
 * copies it the same way), and the operator's admin key, which `adminKubeconfig` generates here
 * because the operator *is* the coordinator's user (the key goes straight into admin.conf and is
 * not kept).
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../lib/atomic-file.js';
import { type Clock, systemClock } from '../../lib/clock.js';
import { subjectName } from '../../lib/csr.js';
import { parseDuration } from '../../lib/duration.js';
import type { Logger } from '../../lib/logger.js';
import { nodeCrypto, x509 } from '../../lib/x509.js';
import {
  generateKeyPair,
  importPrivateKeyPem,
  privateKeyToPem,
  publicKeyToPem,
  SIGNING_ALGORITHM,
} from '../../lib/x509-keys.js';
import { checkCsrMatches, parseCsr } from './csr-check.js';
import { pkiError } from './errors.js';
import { renderKubeconfig } from './kubeconfig.js';
import {
  type CaName,
  type CertProfile,
  type CertSpec,
  certSpecFor,
  DEFAULT_PROFILE_ROLES,
  isCertProfile,
  type PkiClusterContext,
  type PkiNode,
} from './profiles.js';
import {
  DAY_MS,
  DEFAULT_CA_LIFETIME_MS,
  DEFAULT_LEAF_LIFETIME_MS,
  DEFAULT_RENEW_BEFORE_MS,
  ISSUE_BACKDATE_MS,
  needsRenewal,
} from './renewal.js';

export interface ClusterPkiOptions {
  /** directory holding the CAs and the service-account keys (created 0700 if missing) */
  dir: string;
  /** used in CA names; default `drover` */
  clusterName?: string;
  /** CA lifetime; default 10 years (`87600h`) */
  caLifetime?: string | number;
  /** leaf certificate lifetime; default 1 year (`8760h`) */
  leafLifetime?: string | number;
  /** renew leaves this long before expiry at most (capped at 1/3 of lifetime); default 30 days */
  renewBefore?: string | number;
  /** re-sign a CA certificate (same key) this long before it expires; default 365 days */
  caRenewBefore?: string | number;
  /** which roles may obtain each profile; merged over DEFAULT_PROFILE_ROLES */
  profileRoles?: Partial<Record<CertProfile, string[]>>;
  clock?: Clock;
  logger?: Logger;
}

export interface CompiledClusterPkiOptions {
  readonly dir: string;
  readonly clusterName: string;
  readonly caLifetimeMs: number;
  readonly leafLifetimeMs: number;
  readonly renewBeforeMs: number;
  readonly caRenewBeforeMs: number;
  readonly profileRoles: Readonly<Record<CertProfile, readonly string[]>>;
  readonly clock: Clock;
  readonly logger: Logger | undefined;
}

export const DEFAULT_CA_RENEW_BEFORE_MS = 365 * DAY_MS;
/** Leaves are back-dated this much so a node whose clock is slightly behind accepts them at once. */
export const CLOCK_SKEW_MS = ISSUE_BACKDATE_MS;

const OPTION_KEYS = new Set([
  'dir',
  'clusterName',
  'caLifetime',
  'leafLifetime',
  'renewBefore',
  'caRenewBefore',
  'profileRoles',
  'clock',
  'logger',
]);

export function compileClusterPkiOptions(opts: ClusterPkiOptions): CompiledClusterPkiOptions {
  for (const k of Object.keys(opts))
    if (!OPTION_KEYS.has(k)) throw pkiError('DROVER_ERR_PKI_OPTIONS', `unknown PKI option "${k}"`);
  if (typeof opts.dir !== 'string' || !opts.dir)
    throw pkiError('DROVER_ERR_PKI_OPTIONS', 'PKI option "dir" is required');
  const dur = (name: string, v: string | number | undefined, def: number) => {
    if (v === undefined) return def;
    const ms = parseDuration(v);
    if (ms === undefined || ms <= 0)
      throw pkiError('DROVER_ERR_PKI_OPTIONS', `PKI option "${name}": "${v}" is not a positive duration`);
    return ms;
  };
  const profileRoles = { ...DEFAULT_PROFILE_ROLES } as Record<CertProfile, readonly string[]>;
  for (const [p, roles] of Object.entries(opts.profileRoles ?? {})) {
    if (!isCertProfile(p)) throw pkiError('DROVER_ERR_PKI_OPTIONS', `profileRoles: unknown profile "${p}"`);
    profileRoles[p] = Object.freeze([...(roles ?? [])]);
  }
  const clusterName = opts.clusterName ?? 'drover';
  if (!/^[A-Za-z0-9._-]{1,63}$/.test(clusterName))
    throw pkiError(
      'DROVER_ERR_PKI_OPTIONS',
      `PKI option "clusterName": "${clusterName}" must match [A-Za-z0-9._-]{1,63}`,
    );
  return Object.freeze({
    dir: opts.dir,
    clusterName,
    caLifetimeMs: dur('caLifetime', opts.caLifetime, DEFAULT_CA_LIFETIME_MS),
    leafLifetimeMs: dur('leafLifetime', opts.leafLifetime, DEFAULT_LEAF_LIFETIME_MS),
    renewBeforeMs: dur('renewBefore', opts.renewBefore, DEFAULT_RENEW_BEFORE_MS),
    caRenewBeforeMs: dur('caRenewBefore', opts.caRenewBefore, DEFAULT_CA_RENEW_BEFORE_MS),
    profileRoles: Object.freeze(profileRoles),
    clock: opts.clock ?? systemClock,
    logger: opts.logger,
  });
}

export const CA_FILES: Readonly<Record<CaName, { cert: string; key: string; commonName: string }>> =
  Object.freeze({
    cluster: { cert: 'ca.crt', key: 'ca.key', commonName: 'drover-ca' },
    etcd: { cert: 'etcd/ca.crt', key: 'etcd/ca.key', commonName: 'drover-etcd-ca' },
    'front-proxy': {
      cert: 'front-proxy-ca.crt',
      key: 'front-proxy-ca.key',
      commonName: 'drover-front-proxy-ca',
    },
  });
export const SA_FILES = Object.freeze({ key: 'sa.key', pub: 'sa.pub' });
const CA_NAMES = Object.keys(CA_FILES) as CaName[];

interface LoadedCa {
  cert: x509.X509Certificate;
  certPem: string;
  keys: CryptoKeyPair;
}

export interface SignCsrRequest {
  csrPem: string;
  nodeId: string;
  hostname: string;
  /** every address of the node, as the coordinator knows them (never taken from the CSR) */
  nodeAddresses: string[];
  profile: string;
  /** role of the instance asking, from its assignment */
  instanceRole: string;
  /** roles the coordinator's assignments bind to this node; `instanceRole` must be one of them */
  assignedRoles: readonly string[];
  context: PkiClusterContext;
}

export interface IssuedCertificate {
  profile: CertProfile;
  certPem: string;
  /** the issuing CA's certificate: the trust anchor for this leaf */
  caPem: string;
  serialNumber: string;
  notBefore: string;
  notAfter: string;
}

export class ClusterPki {
  private constructor(
    readonly options: CompiledClusterPkiOptions,
    private readonly cas: Record<CaName, LoadedCa>,
    private readonly sa: { keyPem: string; pubPem: string },
  ) {}

  /** Loads the PKI from `dir`, creating whatever is missing. Never overwrites an existing key or cert. */
  static async open(opts: ClusterPkiOptions): Promise<ClusterPki> {
    const o = compileClusterPkiOptions(opts);
    await mkdir(o.dir, { recursive: true, mode: 0o700 });
    await mkdir(join(o.dir, 'etcd'), { recursive: true, mode: 0o700 });
    // the CA keys live here: private even when the dir existed before (mkdir keeps its mode)
    await chmod(o.dir, 0o700);
    await chmod(join(o.dir, 'etcd'), 0o700);
    const cas = {} as Record<CaName, LoadedCa>;
    for (const name of CA_NAMES) cas[name] = await loadOrCreateCa(o, name);
    const sa = await loadOrCreateSa(o);
    return new ClusterPki(o, cas, sa);
  }

  caPem(ca: CaName = 'cluster'): string {
    return this.cas[ca].certPem;
  }

  /** Each CA's validity (its current certificate: a rotation re-signs the same key). */
  caValidity(): Array<{ ca: CaName; notBefore: string; notAfter: string; serialNumber: string }> {
    return (Object.keys(this.cas) as CaName[]).map((ca) => ({
      ca,
      notBefore: this.cas[ca].cert.notBefore.toISOString(),
      notAfter: this.cas[ca].cert.notAfter.toISOString(),
      serialNumber: this.cas[ca].cert.serialNumber,
    }));
  }

  /** `sa.pub` for `--service-account-key-file`; `sa.key` for the signing-key flags (control plane only). */
  serviceAccountKeys(): { publicKeyPem: string; privateKeyPem: string } {
    return { publicKeyPem: this.sa.pubPem, privateKeyPem: this.sa.keyPem };
  }

  /** The exact certificate a profile issues; renderers put it in the plan so the agent's CSR matches. */
  specFor(
    profile: CertProfile,
    input: { node: PkiNode; role: string; context: PkiClusterContext },
  ): CertSpec {
    return certSpecFor(profile, input);
  }

  /** May an instance of `role` obtain `profile`? */
  allowed(profile: CertProfile, role: string): boolean {
    return this.options.profileRoles[profile].includes(role);
  }

  /**
   * Signs a node's CSR after checking, in order: the profile exists, the role is assigned to this
   * node, the profile is allowed for the role, the CSR decodes, its key is acceptable, its
   * signature verifies, and its subject and SANs are exactly the profile's for this node.
   * Throws a TerminalError with a DROVER_ERR_CSR_* code otherwise; nothing is written.
   */
  async signCsr(req: SignCsrRequest): Promise<IssuedCertificate> {
    if (!isCertProfile(req.profile))
      throw pkiError('DROVER_ERR_CSR_PROFILE_UNKNOWN', `unknown certificate profile "${req.profile}"`, {
        profile: req.profile,
      });
    const profile = req.profile;
    if (!req.assignedRoles.includes(req.instanceRole))
      throw pkiError(
        'DROVER_ERR_CSR_ROLE_NOT_ASSIGNED',
        `node ${req.nodeId} has no ${req.instanceRole} assignment (assigned: ${req.assignedRoles.join(', ') || 'none'})`,
        { nodeId: req.nodeId, role: req.instanceRole },
      );
    if (!this.allowed(profile, req.instanceRole))
      throw pkiError(
        'DROVER_ERR_CSR_PROFILE_NOT_ALLOWED',
        `profile ${profile} is not issued to role ${req.instanceRole} (allowed: ${this.options.profileRoles[profile].join(', ') || 'operator only'})`,
        { profile, role: req.instanceRole },
      );
    const csr = await parseCsr(req.csrPem);
    const spec = certSpecFor(profile, {
      node: { id: req.nodeId, hostname: req.hostname, addresses: req.nodeAddresses },
      role: req.instanceRole,
      context: req.context,
    });
    checkCsrMatches(csr, spec);
    const cert = await this.issue(spec, csr.publicKey);
    this.options.logger?.info(
      {
        nodeId: req.nodeId,
        profile,
        role: req.instanceRole,
        serial: cert.serialNumber,
        notAfter: cert.notAfter,
      },
      'certificate issued',
    );
    return cert;
  }

  /**
   * Issues a certificate for a key generated here, on the coordinator. Only for credentials whose
   * holder is the coordinator's own user (the operator's admin.conf) and for tests; node
   * certificates always go through `signCsr`.
   */
  async issueWithGeneratedKey(spec: CertSpec): Promise<IssuedCertificate & { keyPem: string }> {
    const keys = await generateKeyPair();
    const cert = await this.issue(spec, keys.publicKey);
    return { ...cert, keyPem: await privateKeyToPem(keys.privateKey) };
  }

  /**
   * The coordinator's own admin credentials for a cluster's API (it applies Drover's bootstrap
   * objects with them): a fresh key and certificate, held in memory by the caller, never written.
   */
  async adminCredentials(): Promise<{ caPem: string; certPem: string; keyPem: string }> {
    const spec = certSpecFor('admin', {
      node: { id: 'coordinator', hostname: 'coordinator', addresses: [] },
      role: 'coordinator',
      context: { clusterDomain: 'unused', serviceCidr: '10.96.0.0/12' },
    });
    const issued = await this.issueWithGeneratedKey({ ...spec, commonName: 'drover-coordinator' });
    return { caPem: issued.caPem, certPem: issued.certPem, keyPem: issued.keyPem };
  }

  /**
   * The coordinator's own etcd client credentials (its etcd membership client): an `etcd-client`
   * certificate from the etcd CA, CN `drover-coordinator-etcd-client`, and the etcd CA to verify
   * members with. Fresh key, held in memory by the caller, never written.
   */
  async etcdClientCredentials(): Promise<{ caPem: string; certPem: string; keyPem: string }> {
    const spec = certSpecFor('etcd-client', {
      node: { id: 'coordinator', hostname: 'coordinator', addresses: [] },
      role: 'drover-coordinator',
      context: { clusterDomain: 'unused', serviceCidr: '10.96.0.0/12' },
    });
    const issued = await this.issueWithGeneratedKey(spec);
    return { caPem: issued.caPem, certPem: issued.certPem, keyPem: issued.keyPem };
  }

  /** A fresh admin.conf (CN drover-admin, O system:masters) with its key embedded; nothing is kept. */
  async adminKubeconfig(input: { server: string; clusterName?: string; user?: string }): Promise<string> {
    const spec = certSpecFor('admin', {
      node: { id: 'coordinator', hostname: 'coordinator', addresses: [] },
      role: 'operator',
      context: { clusterDomain: 'unused', serviceCidr: '10.96.0.0/12' },
    });
    const issued = await this.issueWithGeneratedKey(spec);
    return renderKubeconfig({
      clusterName: input.clusterName ?? this.options.clusterName,
      server: input.server,
      user: input.user ?? spec.commonName,
      caPem: issued.caPem,
      certPem: issued.certPem,
      keyPem: issued.keyPem,
    });
  }

  /**
   * Re-signs any CA certificate inside its renewal window with the *same* key and subject, so every
   * leaf it issued keeps verifying against the new CA certificate. Returns the CAs renewed; the
   * engine must then re-render plans that carry that CA (their checksums change). Node leaves are
   * renewed by their agents asking again when `needsRenewal(cert)` says so.
   */
  async rotateIfNeeded(now = this.options.clock.now()): Promise<{ renewed: CaName[] }> {
    const renewed: CaName[] = [];
    for (const name of CA_NAMES) {
      const ca = this.cas[name];
      if (!needsRenewal(ca.certPem, now, this.options.caRenewBeforeMs)) continue;
      const cert = await createCaCert(this.options, ca.cert.subjectName, ca.keys, now);
      const certPem = pem(cert);
      await writeFileAtomic(join(this.options.dir, CA_FILES[name].cert), certPem, 0o644);
      this.cas[name] = { cert, certPem, keys: ca.keys };
      renewed.push(name);
      this.options.logger?.warn(
        { ca: name, notAfter: cert.notAfter.toISOString() },
        'CA certificate renewed',
      );
    }
    return { renewed };
  }

  /** True when a leaf is due for renewal under this PKI's window. */
  leafNeedsRenewal(certPem: string, now = this.options.clock.now()): boolean {
    return needsRenewal(certPem, now, this.options.renewBeforeMs);
  }

  private async issue(spec: CertSpec, publicKey: x509.PublicKeyType): Promise<IssuedCertificate> {
    const ca = this.cas[spec.issuer];
    const now = this.options.clock.now();
    const notBefore = new Date(now - CLOCK_SKEW_MS);
    // a leaf never outlives its CA; the CA renews a year ahead, and the leaf renews in its window
    const notAfter = new Date(Math.min(now + this.options.leafLifetimeMs, ca.cert.notAfter.getTime()));
    const pub = await x509.PublicKey.create(publicKey, nodeCrypto);
    const isRsa = (await pub.export(nodeCrypto)).algorithm.name.startsWith('RSA');
    const names: x509.JsonGeneralNames = [
      ...spec.dnsNames.map((value) => ({ type: 'dns' as const, value })),
      ...spec.ipAddresses.map((value) => ({ type: 'ip' as const, value })),
    ];
    const eku = spec.usages.map((u) => x509.ExtendedKeyUsage[u]);
    const cert = await x509.X509CertificateGenerator.create(
      {
        serialNumber: serial(),
        subject: subjectName(spec),
        issuer: ca.cert.subjectName,
        notBefore,
        notAfter,
        publicKey: pub,
        signingKey: ca.keys.privateKey,
        signingAlgorithm: SIGNING_ALGORITHM,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(
            isRsa
              ? x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment
              : x509.KeyUsageFlags.digitalSignature,
            true,
          ),
          new x509.ExtendedKeyUsageExtension(eku, false),
          await x509.SubjectKeyIdentifierExtension.create(pub, false, nodeCrypto),
          new x509.AuthorityKeyIdentifierExtension(skiOf(ca.cert), false),
          ...(names.length ? [new x509.SubjectAlternativeNameExtension(names, false)] : []),
        ],
      },
      nodeCrypto,
    );
    return {
      profile: spec.profile,
      certPem: pem(cert),
      caPem: ca.certPem,
      serialNumber: cert.serialNumber,
      notBefore: cert.notBefore.toISOString(),
      notAfter: cert.notAfter.toISOString(),
    };
  }
}

function pem(cert: x509.X509Certificate): string {
  return `${cert.toString('pem').trim()}\n`;
}

/** 16 random bytes, top bit cleared so the DER INTEGER stays positive (RFC 5280 §4.1.2.2). */
function serial(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x01;
  return b.toString('hex');
}

function skiOf(cert: x509.X509Certificate): string {
  const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension);
  if (!ski) throw pkiError('DROVER_ERR_PKI_STORE', `CA ${cert.subject} has no subjectKeyIdentifier`);
  return ski.keyId;
}

async function createCaCert(
  o: CompiledClusterPkiOptions,
  name: x509.Name | x509.JsonName,
  keys: CryptoKeyPair,
  now: number,
): Promise<x509.X509Certificate> {
  return x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serial(),
      name,
      keys,
      notBefore: new Date(now - CLOCK_SKEW_MS),
      notAfter: new Date(now + o.caLifetimeMs),
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
          true,
        ),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, nodeCrypto),
      ],
    },
    nodeCrypto,
  );
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw pkiError('DROVER_ERR_PKI_STORE', `cannot read ${path}: ${(err as Error).message}`, { path }, err);
  }
}

async function warnIfLoose(o: CompiledClusterPkiOptions, path: string): Promise<void> {
  const st = await stat(path).catch(() => undefined);
  if (st && (st.mode & 0o077) !== 0)
    o.logger?.warn(
      { path, mode: (st.mode & 0o777).toString(8) },
      'private key is readable by group or others',
    );
}

async function loadOrCreateCa(o: CompiledClusterPkiOptions, name: CaName): Promise<LoadedCa> {
  const files = CA_FILES[name];
  const certPath = join(o.dir, files.cert);
  const keyPath = join(o.dir, files.key);
  const certPem = await readIfExists(certPath);
  const keyPem = await readIfExists(keyPath);
  if (certPem === undefined && keyPem === undefined) {
    const keys = await generateKeyPair();
    const cert = await createCaCert(
      o,
      [{ O: ['drover'] }, { CN: [`${files.commonName}:${o.clusterName}`] }],
      keys,
      o.clock.now(),
    );
    // key first: a crash between the two writes leaves a key without a cert, which open() refuses
    // loudly rather than minting a second CA behind the operator's back
    await writeFileAtomic(keyPath, await privateKeyToPem(keys.privateKey), 0o600);
    await writeFileAtomic(certPath, pem(cert), 0o644);
    o.logger?.info({ ca: name, notAfter: cert.notAfter.toISOString() }, 'CA created');
    return { cert, certPem: pem(cert), keys };
  }
  if (certPem === undefined || keyPem === undefined) {
    const [has, lacks] = certPem === undefined ? [keyPath, certPath] : [certPath, keyPath];
    throw pkiError(
      'DROVER_ERR_PKI_STORE',
      `${has} exists but ${lacks} does not: restore ${lacks}, or remove ${has} to create a new ${name} CA (every certificate it issued becomes invalid)`,
      { ca: name },
    );
  }
  await warnIfLoose(o, keyPath);
  let cert: x509.X509Certificate;
  let keys: CryptoKeyPair;
  try {
    cert = new x509.X509Certificate(certPem);
    keys = await importPrivateKeyPem(keyPem);
  } catch (err) {
    throw pkiError(
      'DROVER_ERR_PKI_STORE',
      `${name} CA in ${o.dir} cannot be read: ${(err as Error).message}`,
      { ca: name },
      err,
    );
  }
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  if (!bc?.ca) throw pkiError('DROVER_ERR_PKI_STORE', `${certPath} is not a CA certificate`, { ca: name });
  const spki = Buffer.from(await nodeCrypto.subtle.exportKey('spki', keys.publicKey));
  if (!spki.equals(Buffer.from(cert.publicKey.rawData)))
    throw pkiError('DROVER_ERR_PKI_STORE', `${keyPath} does not match ${certPath}`, { ca: name });
  return { cert, certPem: pem(cert), keys };
}

async function loadOrCreateSa(o: CompiledClusterPkiOptions): Promise<{ keyPem: string; pubPem: string }> {
  const keyPath = join(o.dir, SA_FILES.key);
  const pubPath = join(o.dir, SA_FILES.pub);
  let keyPem = await readIfExists(keyPath);
  const pubPem = await readIfExists(pubPath);
  if (keyPem === undefined) {
    if (pubPem !== undefined)
      throw pkiError(
        'DROVER_ERR_PKI_STORE',
        `${pubPath} exists but ${keyPath} does not: restore it, or remove ${pubPath} to create a new pair (existing service-account tokens become invalid)`,
      );
    const keys = await generateKeyPair();
    keyPem = await privateKeyToPem(keys.privateKey);
    await writeFileAtomic(keyPath, keyPem, 0o600);
  } else {
    await warnIfLoose(o, keyPath);
  }
  let derived: string;
  try {
    derived = await publicKeyToPem((await importPrivateKeyPem(keyPem)).publicKey);
  } catch (err) {
    throw pkiError(
      'DROVER_ERR_PKI_STORE',
      `${keyPath} cannot be read: ${(err as Error).message}`,
      undefined,
      err,
    );
  }
  // sa.pub is derived from sa.key, so rewriting a missing or stale one loses nothing
  if (pubPem?.trim() !== derived.trim()) await writeFileAtomic(pubPath, `${derived.trim()}\n`, 0o644);
  return { keyPem: `${keyPem.trim()}\n`, pubPem: `${derived.trim()}\n` };
}
