/**
 * The agent's certificates (InstanceSpec.certificates). Before an instance starts, and on every
 * drift check after, each certificate it needs is checked on disk: present, readable, issued for
 * exactly the names the plan lists, matching its key, and not due for renewal. Anything else is
 * (re)obtained: a fresh key made here (it never leaves the node), a CSR sent to the coordinator,
 * and key (0600), certificate and issuing CA written atomically under the root dir.
 *
 * With the coordinator away, valid certificates on disk are enough (static stability); a missing
 * one fails the instance's start with DROVER_ERR_CERTIFICATE and the agent retries.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { writeFileAtomic } from '../lib/atomic-file.js';
import { DEFAULT_RENEW_BEFORE_MS, needsRenewal } from '../lib/cert-renewal.js';
import { type Clock, systemClock } from '../lib/clock.js';
import { generateCsr } from '../lib/csr.js';
import { silentLogger } from '../lib/logger.js';
import { x509 } from '../lib/x509.js';
import type {
  CertificateReply,
  CertificateRequest,
  InstanceSpec,
  PlanCertificate,
} from '../protocol/index.js';
import { AgentError } from './errors.js';
import { filePathUnderRoot } from './root-path.js';

/** Sends one CSR to the coordinator (the Session does, over NATS). */
export type CsrTransport = (
  req: Omit<CertificateRequest, 'v' | 'type' | 'nodeId'>,
) => Promise<CertificateReply>;

export interface CertManagerOptions {
  rootDir: string;
  /** undefined while there is no session (the agent is starting) */
  transport: () => CsrTransport | undefined;
  clock?: Clock;
  logger?: Logger;
  renewBeforeMs?: number;
}

/** Why a certificate on disk cannot be used as it is; undefined when it can. */
export type CertProblem = 'missing' | 'unreadable' | 'names' | 'key' | 'renew' | 'ca';

export class CertManager {
  private readonly log: Logger;
  private readonly clock: Clock;
  /** one request at a time per certificate path: two callers never write different keys */
  private readonly inflight = new Map<string, Promise<boolean>>();

  constructor(private readonly opts: CertManagerOptions) {
    this.log = opts.logger ?? silentLogger;
    this.clock = opts.clock ?? systemClock;
  }

  /**
   * Makes every certificate of `spec` usable; returns true when any was (re)issued, so a running
   * instance must restart to load it. Throws DROVER_ERR_CERTIFICATE naming the certificate.
   */
  async ensure(spec: InstanceSpec): Promise<boolean> {
    let changed = false;
    for (const c of spec.certificates ?? []) if (await this.ensureOne(spec.id, c)) changed = true;
    return changed;
  }

  private ensureOne(instanceId: string, c: PlanCertificate): Promise<boolean> {
    const key = c.certPath;
    let p = this.inflight.get(key);
    if (!p) {
      p = this.check(c)
        .then(async (problem) => {
          if (!problem) return false;
          await this.obtain(instanceId, c, problem);
          return true;
        })
        .finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  /** What is wrong with the certificate on disk, if anything. */
  async check(c: PlanCertificate): Promise<CertProblem | undefined> {
    const read = (p: string) =>
      readFile(filePathUnderRoot(this.opts.rootDir, p), 'utf8').catch(() => undefined);
    const [certPem, keyPem, caPem] = await Promise.all([read(c.certPath), read(c.keyPath), read(c.caPath)]);
    if (certPem === undefined || keyPem === undefined || caPem === undefined) return 'missing';
    let cert: x509.X509Certificate;
    let ca: x509.X509Certificate;
    try {
      cert = new x509.X509Certificate(certPem);
      ca = new x509.X509Certificate(caPem);
    } catch {
      return 'unreadable';
    }
    if (!sameNames(cert, c)) return 'names';
    try {
      const spki = createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'der' });
      if (!Buffer.from(cert.publicKey.rawData).equals(spki)) return 'key';
    } catch {
      return 'key';
    }
    if (cert.issuer !== ca.subject) return 'ca';
    // the coordinator's renewal, rolled through its rollout gate: this very certificate is replaced
    if (c.renewSerial && sameSerial(cert.serialNumber, c.renewSerial)) return 'renew';
    if (needsRenewal(certPem, this.clock.now(), this.opts.renewBeforeMs ?? DEFAULT_RENEW_BEFORE_MS))
      return 'renew';
    return undefined;
  }

  private async obtain(instanceId: string, c: PlanCertificate, why: CertProblem): Promise<void> {
    const fail = (message: string, cause?: unknown) =>
      new AgentError(
        'DROVER_ERR_CERTIFICATE',
        `${instanceId}: ${c.profile} certificate ${c.certPath}: ${message}`,
        {
          details: { instanceId, profile: c.profile, reason: why },
          cause,
        },
      );
    const send = this.opts.transport();
    if (!send)
      throw fail(
        `it is ${PROBLEM_TEXT[why]}, and the coordinator cannot be asked for a new one (not connected)`,
      );
    const { keyPem, csrPem } = await generateCsr({
      commonName: c.commonName,
      organizations: c.organizations,
      dnsNames: c.dnsNames,
      ipAddresses: c.ipAddresses,
    });
    let reply: CertificateReply;
    try {
      reply = await send({ instanceId, profile: c.profile, csrPem });
    } catch (err) {
      throw fail(`the coordinator did not answer the CSR: ${(err as Error).message}`, err);
    }
    if (!reply.ok || !reply.certPem || !reply.caPem)
      throw fail(
        `the coordinator refused the CSR: ${reply.error?.code ?? '?'}: ${reply.error?.message ?? 'no reason'}`,
      );
    const at = (p: string) => filePathUnderRoot(this.opts.rootDir, p);
    // key first: a crash before the certificate is written leaves a mismatch the next check catches
    await writeFileAtomic(at(c.keyPath), keyPem, 0o600);
    await writeFileAtomic(at(c.certPath), reply.certPem, 0o644);
    await writeFileAtomic(at(c.caPath), reply.caPem, 0o644);
    this.log.info(
      { instance: instanceId, profile: c.profile, reason: why },
      'certificate issued by the coordinator',
    );
  }
}

/** What each problem means, for the reason an operator reads. */
const PROBLEM_TEXT: Record<CertProblem, string> = {
  missing: 'missing',
  unreadable: 'not a readable PEM certificate',
  names: 'issued for other names than the plan lists',
  key: 'not matching its key',
  renew: 'expired or inside its renewal window',
  ca: 'not issued by the CA beside it',
};

/** Are the certificate's subject and subjectAltNames exactly the plan's? */
function sameNames(cert: x509.X509Certificate, c: PlanCertificate): boolean {
  const cn: string[] = [];
  const o: string[] = [];
  for (const rdn of cert.subjectName.toJSON())
    for (const [type, values] of Object.entries(rdn)) {
      if (type === 'CN') cn.push(...values);
      else if (type === 'O') o.push(...values);
    }
  if (cn.length !== 1 || cn[0] !== c.commonName) return false;
  if ([...o].sort().join('\n') !== [...c.organizations].sort().join('\n')) return false;
  const dns: string[] = [];
  const ips: string[] = [];
  const ext = cert.getExtension(x509.SubjectAlternativeNameExtension);
  for (const n of ext?.names.items ?? []) {
    if (n.type === 'dns') dns.push(n.value.toLowerCase());
    else if (n.type === 'ip') ips.push(n.value);
  }
  const same = (a: string[], b: string[]) => [...a].sort().join('\n') === [...b].sort().join('\n');
  return same(dns, c.dnsNames) && same(ips.map(canonical), c.ipAddresses.map(canonical));
}

/** IPv6 text forms differ (`::1` vs `0:0:…:1`); compare canonical forms. */
function canonical(ip: string): string {
  if (!ip.includes(':')) return ip;
  try {
    return new URL(`http://[${ip}]`).hostname.slice(1, -1);
  } catch {
    return ip;
  }
}

/** Serial numbers as hex, compared without case or leading zeros. */
export function sameSerial(a: string, b: string): boolean {
  const norm = (s: string) => s.toLowerCase().replace(/^0+/, '');
  return norm(a) === norm(b);
}
