import { stringify } from 'yaml';
import { pkiError } from './errors.js';

/**
 * Input for one kubeconfig. Credentials are either embedded (`*Pem`, for the operator's
 * admin.conf) or referenced by path (`*Path`, for node components: their key was generated on
 * the node and never leaves it, so the plan can only point at it).
 */
export interface KubeconfigInput {
  clusterName: string;
  /** API endpoint URL, e.g. `https://10.0.0.10:6443`; Arktos renders one kubeconfig per partition's server */
  server: string;
  user: string;
  caPem?: string;
  caPath?: string;
  certPem?: string;
  certPath?: string;
  keyPem?: string;
  keyPath?: string;
  namespace?: string;
}

function oneOf(
  input: KubeconfigInput,
  pemKey: 'caPem' | 'certPem' | 'keyPem',
  pathKey: 'caPath' | 'certPath' | 'keyPath',
) {
  const pem = input[pemKey];
  const path = input[pathKey];
  if ((pem === undefined) === (path === undefined))
    throw pkiError('DROVER_ERR_PKI_KUBECONFIG', `kubeconfig: give exactly one of ${pemKey} or ${pathKey}`, {
      field: pemKey,
    });
  if (path !== undefined && !path.startsWith('/'))
    throw pkiError('DROVER_ERR_PKI_KUBECONFIG', `kubeconfig: ${pathKey} must be absolute, got "${path}"`, {
      field: pathKey,
    });
  return pem !== undefined ? { data: Buffer.from(ensureNewline(pem)).toString('base64') } : { path: path! };
}

function ensureNewline(s: string): string {
  return s.endsWith('\n') ? s : `${s}\n`;
}

/** Renders a kubeconfig (one cluster, one user, one current context) as YAML text. */
export function renderKubeconfig(input: KubeconfigInput): string {
  for (const f of ['clusterName', 'user', 'server'] as const) {
    if (typeof input[f] !== 'string' || !input[f])
      throw pkiError('DROVER_ERR_PKI_KUBECONFIG', `kubeconfig: ${f} is required`, { field: f });
  }
  let url: URL;
  try {
    url = new URL(input.server);
  } catch {
    throw pkiError('DROVER_ERR_PKI_KUBECONFIG', `kubeconfig: server "${input.server}" is not a URL`, {
      field: 'server',
    });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw pkiError('DROVER_ERR_PKI_KUBECONFIG', `kubeconfig: server "${input.server}" must be http(s)`, {
      field: 'server',
    });
  const ca = oneOf(input, 'caPem', 'caPath');
  const cert = oneOf(input, 'certPem', 'certPath');
  const key = oneOf(input, 'keyPem', 'keyPath');
  const context = `${input.user}@${input.clusterName}`;
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: input.clusterName,
        cluster: {
          server: input.server,
          ...('data' in ca
            ? { 'certificate-authority-data': ca.data }
            : { 'certificate-authority': ca.path }),
        },
      },
    ],
    users: [
      {
        name: input.user,
        user: {
          ...('data' in cert
            ? { 'client-certificate-data': cert.data }
            : { 'client-certificate': cert.path }),
          ...('data' in key ? { 'client-key-data': key.data } : { 'client-key': key.path }),
        },
      },
    ],
    contexts: [
      {
        name: context,
        context: {
          cluster: input.clusterName,
          user: input.user,
          ...(input.namespace ? { namespace: input.namespace } : {}),
        },
      },
    ],
    'current-context': context,
    preferences: {},
  };
  return stringify(doc, { lineWidth: 0 });
}
