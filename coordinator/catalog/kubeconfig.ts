import { posix } from 'node:path';
import type { PlanFile } from '../../protocol/index.js';
import { CERTS, CLIENT_CERT, certRelative, configDir } from './paths.js';
import type { RenderContext } from './types.js';

export const KUBECONFIG_FILE = 'kubeconfig';

/** Path of an instance's kubeconfig on the node (absolute, before `${DROVER_ROOT}`). */
export const kubeconfigPath = (ctx: RenderContext): string =>
  `${configDir(ctx.assignment)}/${KUBECONFIG_FILE}`;

/** A YAML scalar: plain when that is unambiguous, else a JSON string (YAML reads it double-quoted). */
export function yamlScalar(s: string): string {
  const plain = /^[A-Za-z0-9./][A-Za-z0-9._/:@-]*$/.test(s) && !s.includes(': ') && !/[:]$/.test(s);
  const reserved =
    /^(true|false|yes|no|on|off|null|~|[-+]?[0-9._]+(e[-+]?[0-9]+)?|0x[0-9a-f]+|0o[0-7]+)$/i.test(s);
  return plain && !reserved ? s : JSON.stringify(s);
}

/**
 * A kubeconfig for an API client role pointing at the API endpoint. Certificates are referenced
 * relative to the kubeconfig (client-go resolves them against its directory) because the node's
 * root dir is only known on the node; the private key never leaves the node (see the PKI).
 */
export function kubeconfigFile(
  ctx: RenderContext,
  opts: { path?: string; server?: string; contextName?: string; cert?: string } = {},
): PlanFile {
  const path = opts.path ?? kubeconfigPath(ctx);
  const dir = posix.dirname(path);
  const t = ctx.topology;
  const cert = opts.cert ?? CLIENT_CERT[ctx.role] ?? ctx.role;
  const user = `drover-${ctx.role}`;
  // Written out by hand rather than with a YAML library: it is rendered for every API client on
  // every reconcile (10,000 times for 5,000 nodes), and the library made rendering 10x slower.
  const q = yamlScalar;
  const content = [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `  - name: ${q(t.cluster.name)}`,
    '    cluster:',
    `      server: ${q(opts.server ?? ctx.api.url)}`,
    `      certificate-authority: ${q(certRelative(t, dir, ctx.assignment, CERTS.ca))}`,
    'users:',
    `  - name: ${q(user)}`,
    '    user:',
    `      client-certificate: ${q(certRelative(t, dir, ctx.assignment, `${cert}.crt`))}`,
    `      client-key: ${q(certRelative(t, dir, ctx.assignment, `${cert}.key`))}`,
    'contexts:',
    `  - name: ${q(opts.contextName ?? 'default')}`,
    '    context:',
    `      cluster: ${q(t.cluster.name)}`,
    `      user: ${q(user)}`,
    `current-context: ${q(opts.contextName ?? 'default')}`,
    '',
  ].join('\n');
  return { path, mode: 0o600, content };
}
