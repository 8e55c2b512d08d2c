export { CertificateBook, type CertificateRow, type IssuedLeaf } from './cert-book.js';
export {
  CA_FILES,
  CLOCK_SKEW_MS,
  ClusterPki,
  type ClusterPkiOptions,
  type CompiledClusterPkiOptions,
  compileClusterPkiOptions,
  DEFAULT_CA_RENEW_BEFORE_MS,
  type IssuedCertificate,
  SA_FILES,
  type SignCsrRequest,
} from './cluster-pki.js';
export { checkCsrMatches, parseCsr } from './csr-check.js';
export { type CsrEngine, type CsrSigner, csrSigner } from './csr-service.js';
export { PKI_ERRORS, type PkiErrorCode, pkiError } from './errors.js';
export { type KubeconfigInput, renderKubeconfig } from './kubeconfig.js';
export {
  type CaName,
  CERT_PROFILES,
  type CertProfile,
  type CertSpec,
  canonicalIp,
  certSpecFor,
  DEFAULT_PROFILE_ROLES,
  firstServiceIp,
  isCertProfile,
  type KeyPurpose,
  type PkiClusterContext,
  type PkiNode,
  splitNames,
} from './profiles.js';
export {
  DAY_MS,
  DEFAULT_CA_LIFETIME_MS,
  DEFAULT_LEAF_LIFETIME_MS,
  DEFAULT_RENEW_BEFORE_MS,
  needsRenewal,
} from './renewal.js';
