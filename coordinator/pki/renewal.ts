import { DAY_MS, DEFAULT_RENEW_BEFORE_MS, needsRenewal } from '../../lib/cert-renewal.js';

export { ISSUE_BACKDATE_MS } from '../../lib/cert-renewal.js';
export { DAY_MS, DEFAULT_RENEW_BEFORE_MS, needsRenewal };
/** Lifetimes Drover issues with. CAs: 10 years. Leaf certificates: 1 year. */
export const DEFAULT_CA_LIFETIME_MS = 3650 * DAY_MS;
export const DEFAULT_LEAF_LIFETIME_MS = 365 * DAY_MS;
