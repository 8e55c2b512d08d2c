import { stringify } from 'yaml';
import type { PlanFile } from '../../protocol/index.js';
import { CERTS, CLIENT_CERT, certRelative, configDir } from './paths.js';
import type { RenderContext } from './types.js';

export const KUBECONFIG_FILE = 'kubeconfig';

/** Path of an instance's kubeconfig on the node (absolute, before `${DROVER_ROOT}`). */
export const kubeconfigPath = (ctx: RenderContext): string =>
  `${configDir(ctx.assignment)}/${KUBECONFIG_FILE}`;

/**
 * A kubeconfig for an API client role pointing at the API endpoint. Certificates are referenced
 * relative to the kubeconfig (client-go resolves them against its directory) because the node's
 * root dir is only known on the node; the private key never leaves the node (see the PKI).
 */
export function kubeconfigFile(ctx: RenderContext): PlanFile {
  const dir = configDir(ctx.assignment);
  const t = ctx.topology;
  const cert = CLIENT_CERT[ctx.role] ?? ctx.role;
  const user = `drover-${ctx.role}`;
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: t.cluster.name,
        cluster: { server: ctx.api.url, 'certificate-authority': certRelative(t, dir, CERTS.ca) },
      },
    ],
    users: [
      {
        name: user,
        user: {
          'client-certificate': certRelative(t, dir, `${cert}.crt`),
          'client-key': certRelative(t, dir, `${cert}.key`),
        },
      },
    ],
    contexts: [{ name: 'default', context: { cluster: t.cluster.name, user } }],
    'current-context': 'default',
  };
  return { path: kubeconfigPath(ctx), mode: 0o600, content: stringify(doc) };
}
