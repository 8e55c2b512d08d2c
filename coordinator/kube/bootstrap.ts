/**
 * Cluster bootstrap objects: the few Kubernetes API objects Drover itself needs in a cluster, which
 * the coordinator applies through the cluster's API endpoint once it answers. The channel is mTLS:
 * the API server's certificate is verified against the cluster CA, and the coordinator presents a
 * short-lived admin certificate it issues for itself (never written to disk).
 *
 * The API server's kubelet client (`kube-apiserver-kubelet-client`, no group: not system:masters)
 * bound to the built-in `system:kubelet-api-admin` ClusterRole, as kubeadm's guidance has it:
 * the API server reaches kubelets (logs, exec, metrics) and nothing else with that certificate.
 *
 * And the RBAC for kwok-simulated workers. A real kubelet authenticates as system:node:<name>,
 * which the Node authorizer limits to its own Node; kwok lists every Node, so a simulated worker
 * gets its own identity (group drover:kwok-nodes, profile `kwok-node`) and this ClusterRole.
 *
 * `decideBootstrap` is pure (which clusters need which objects); `applyObjects` acts.
 */
import { request } from 'node:https';
import { ROLE_CATALOG } from '../catalog/catalog.js';
import { simulatorPaths } from '../catalog/render.js';
import type { Assignment, NodeRecord } from '../model.js';
import { APISERVER_KUBELET_CLIENT_USER } from '../pki/profiles.js';
import type { Topology } from '../topology/index.js';

export const KWOK_NODE_GROUP = 'drover:kwok-nodes';
export const KWOK_CLUSTER_ROLE = 'drover:kwok-node';

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; resourceVersion?: string };
  [k: string]: unknown;
}

const MANAGED = { 'app.kubernetes.io/managed-by': 'drover' };

/** What kwok does to the one Node it manages and the pods bound to it (kwok's own kwok.yaml RBAC, narrowed). */
export const KWOK_RBAC: readonly KubeObject[] = Object.freeze([
  {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: KWOK_CLUSTER_ROLE, labels: MANAGED },
    rules: [
      { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch'] },
      { apiGroups: [''], resources: ['nodes/status'], verbs: ['update', 'patch'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch', 'update', 'patch', 'delete'] },
      { apiGroups: [''], resources: ['pods/status'], verbs: ['update', 'patch'] },
      { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch', 'update'] },
      {
        apiGroups: ['coordination.k8s.io'],
        resources: ['leases'],
        verbs: ['get', 'list', 'watch', 'create', 'update', 'patch'],
      },
    ],
  },
  {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: KWOK_CLUSTER_ROLE, labels: MANAGED },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: KWOK_CLUSTER_ROLE },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: KWOK_NODE_GROUP }],
  },
]);

export const KUBELET_API_BINDING = 'drover:kube-apiserver-kubelet-client';

/** The API server's kubelet client may use the kubelet API (built-in role), nothing more. */
export const KUBELET_API_RBAC: readonly KubeObject[] = Object.freeze([
  {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: KUBELET_API_BINDING, labels: MANAGED },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:kubelet-api-admin' },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: APISERVER_KUBELET_CLIENT_USER }],
  },
]);

/**
 * The objects a cluster needs: the kubelet-API binding when it runs an API server, and the kwok
 * RBAC when any of its kubelets runs as a kwok node.
 */
export function decideBootstrap(
  t: Topology,
  assignments: readonly Assignment[],
  nodes: ReadonlyMap<string, NodeRecord>,
): readonly KubeObject[] {
  const apiserver = assignments.some((a) => a.role === 'kube-apiserver');
  const kwok = assignments.some((a) => {
    const n = nodes.get(a.nodeId);
    return a.role === 'kubelet' && n !== undefined && !!simulatorPaths(ROLE_CATALOG.kubelet, t, n);
  });
  return [...(apiserver ? KUBELET_API_RBAC : []), ...(kwok ? KWOK_RBAC : [])];
}

/** Where an object lives in the API (cluster-scoped RBAC only, for now). */
export function objectPath(o: KubeObject): { collection: string; item: string } {
  const plural: Record<string, string> = {
    ClusterRole: 'clusterroles',
    ClusterRoleBinding: 'clusterrolebindings',
  };
  const p = plural[o.kind];
  if (!p || o.apiVersion !== 'rbac.authorization.k8s.io/v1')
    throw new Error(`cannot apply ${o.apiVersion} ${o.kind}: not a bootstrap kind`);
  const collection = `/apis/rbac.authorization.k8s.io/v1/${p}`;
  return { collection, item: `${collection}/${encodeURIComponent(o.metadata.name)}` };
}

export interface KubeCredentials {
  server: string;
  caPem: string;
  certPem: string;
  keyPem: string;
}

interface KubeResponse {
  status: number;
  body: unknown;
}

function call(
  c: KubeCredentials,
  method: string,
  path: string,
  body: unknown,
  timeoutMs: number,
): Promise<KubeResponse> {
  const url = new URL(path, c.server);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        ca: c.caPem,
        cert: c.certPem,
        key: c.keyPem,
        timeout: timeoutMs,
        headers: {
          accept: 'application/json',
          ...(payload
            ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
            : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // not JSON: keep the text for the error
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${url.href}: no answer within ${timeoutMs}ms`)));
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}

function failure(what: string, r: KubeResponse): Error {
  const msg =
    r.body && typeof r.body === 'object' && typeof (r.body as { message?: unknown }).message === 'string'
      ? (r.body as { message: string }).message
      : String(r.body).slice(0, 300);
  return new Error(`${what}: HTTP ${r.status}: ${msg}`);
}

/** Every field of `want` (except resourceVersion) equals `have`'s. */
function deepEqualSubset(want: unknown, have: unknown): boolean {
  if (Array.isArray(want))
    return (
      Array.isArray(have) && want.length === have.length && want.every((w, i) => deepEqualSubset(w, have[i]))
    );
  if (want && typeof want === 'object') {
    if (!have || typeof have !== 'object') return false;
    return Object.entries(want as Record<string, unknown>).every(
      ([k, v]) => k === 'resourceVersion' || deepEqualSubset(v, (have as Record<string, unknown>)[k]),
    );
  }
  return want === have;
}

export interface ApplyResult {
  created: string[];
  updated: string[];
  unchanged: string[];
}

/** Creates what is missing and replaces what differs; idempotent. Throws on the first failure. */
export async function applyObjects(
  c: KubeCredentials,
  objects: readonly KubeObject[],
  timeoutMs = 10_000,
): Promise<ApplyResult> {
  const out: ApplyResult = { created: [], updated: [], unchanged: [] };
  for (const o of objects) {
    const { collection, item } = objectPath(o);
    const name = `${o.kind}/${o.metadata.name}`;
    const got = await call(c, 'GET', item, undefined, timeoutMs);
    if (got.status === 404) {
      const r = await call(c, 'POST', collection, o, timeoutMs);
      if (r.status !== 201 && r.status !== 200) throw failure(`create ${name}`, r);
      out.created.push(name);
    } else if (got.status === 200 && got.body && typeof got.body === 'object') {
      const have = got.body as Record<string, unknown>;
      if (deepEqualSubset(o, have)) {
        out.unchanged.push(name);
        continue;
      }
      const rv = (have.metadata as { resourceVersion?: string } | undefined)?.resourceVersion;
      const r = await call(
        c,
        'PUT',
        item,
        { ...o, metadata: { ...o.metadata, resourceVersion: rv } },
        timeoutMs,
      );
      if (r.status !== 200) throw failure(`update ${name}`, r);
      out.updated.push(name);
    } else throw failure(`read ${name}`, got);
  }
  return out;
}
