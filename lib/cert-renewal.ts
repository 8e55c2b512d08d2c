/**
 * When to renew a certificate, shared by the coordinator's PKI and the agent (which renews its
 * node certificates by sending a new CSR).
 */
import { x509 } from './x509.js';

export const DAY_MS = 86_400_000;
/** Renew this long before expiry at the latest (capped at a third of the lifetime, see needsRenewal). */
export const DEFAULT_RENEW_BEFORE_MS = 30 * DAY_MS;

/** How far back the cluster PKI dates a certificate's notBefore, for hosts whose clocks lag. */
export const ISSUE_BACKDATE_MS = 5 * 60_000;

/**
 * A certificate's lifetime as issued: notBefore to notAfter without the backdating (for a short
 * test lifetime the five minutes would otherwise dominate the renewal windows).
 */
export function issuedLifetime(notBefore: number, notAfter: number): number {
  const full = notAfter - notBefore;
  return full > ISSUE_BACKDATE_MS ? full - ISSUE_BACKDATE_MS : full;
}

/**
 * True when a certificate should be renewed at `now`: inside its renewal window or already
 * expired, or not yet valid (a clock that jumped back). The window is `renewBeforeMs`
 * (default 30 days) but never more than a third of the certificate's lifetime, so a 1-year leaf
 * renews 30 days before expiry and a 3-hour test certificate renews in its last hour.
 */
export function needsRenewal(certPem: string, now: number, renewBeforeMs = DEFAULT_RENEW_BEFORE_MS): boolean {
  const cert = new x509.X509Certificate(certPem);
  const notBefore = cert.notBefore.getTime();
  const notAfter = cert.notAfter.getTime();
  const window = Math.min(renewBeforeMs, issuedLifetime(notBefore, notAfter) / 3);
  return now < notBefore || now >= notAfter - window;
}
