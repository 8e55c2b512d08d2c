import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { createMetrics } from '../../coordinator/api/metrics.js';
import { type RenderedInstance, renderPlans } from '../../coordinator/catalog/index.js';
import { CertificateBook } from '../../coordinator/pki/cert-book.js';
import { ClusterPki, type CsrEngine, csrSigner } from '../../coordinator/pki/index.js';
import { MemoryStore } from '../../coordinator/store/index.js';
import { parseTopology } from '../../coordinator/topology/index.js';
import { generateCsr } from '../../lib/csr.js';
import { silentLogger } from '../../lib/logger.js';
import { PROTOCOL_VERSION, sealPlan } from '../../protocol/index.js';
import { haAssignments, haNodes, nodeMap } from '../helpers/cluster-fixtures.js';
import { expectGolden } from '../helpers/golden.js';
import { opensslVerify } from '../helpers/pki.js';
import { rmrf, tempDir } from '../helpers/proc.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmrf(d);
});

// fixed stand-ins for the service-account pair, so the golden files are stable
const SA = {
  publicKeyPem: '-----BEGIN PUBLIC KEY-----\nTEST\n-----END PUBLIC KEY-----\n',
  privateKeyPem: '-----BEGIN PRIVATE KEY-----\nTEST\n-----END PRIVATE KEY-----\n',
};
const topology = () => parseTopology(readFileSync('examples/ha.yaml', 'utf8'));

function render() {
  return renderPlans({
    topology: topology(),
    assignments: haAssignments(),
    nodes: nodeMap(haNodes()),
    options: { pki: { serviceAccount: SA } },
  });
}

function instance(plans: Map<string, RenderedInstance[]>, id: string): RenderedInstance {
  for (const list of plans.values()) for (const i of list) if (i.id === id) return i;
  throw new Error(`no instance ${id}`);
}

describe('plans with a cluster PKI (golden)', () => {
  const plans = render();
  it.each([
    ['kube-apiserver', 'kube-apiserver#0'],
    ['kube-controller-manager', 'kube-controller-manager#0'],
    ['kubelet', 'kubelet#0'],
  ])('%s', (name, id) => {
    expectGolden(`pki/${name}`, instance(plans, id));
  });

  it('flags and kubeconfigs point at the paths the certificates are written to', () => {
    const api = instance(plans, 'kube-apiserver#0');
    const byProfile = new Map(api.certificates!.map((c) => [c.profile, c]));
    const R = ['$', '{DROVER_ROOT}'].join('');
    expect(api.run.args).toContain(`--tls-cert-file=${R}${byProfile.get('apiserver-serving')!.certPath}`);
    expect(api.run.args).toContain(
      `--tls-private-key-file=${R}${byProfile.get('apiserver-serving')!.keyPath}`,
    );
    expect(api.run.args).toContain(`--client-ca-file=${R}${byProfile.get('apiserver-serving')!.caPath}`);
    // the API endpoint (the load balancer, 10.0.0.10) and the first service IP are SANs
    expect(byProfile.get('apiserver-serving')!.ipAddresses).toEqual(['10.0.0.1', '10.0.0.10', '10.0.0.11']);
    // no instance is ever given the cluster CA key
    for (const list of plans.values())
      for (const i of list) for (const f of i.files) expect(f.content).not.toMatch(/ca\.key/);
    const sched = instance(plans, 'kube-scheduler#0');
    // its client identity, and a serving cert for its secure port (probes verify it against the CA)
    expect(sched.certificates!.map((c) => c.commonName)).toEqual(['system:kube-scheduler', 'kube-scheduler']);
    expect(sched.run.args).toContain(`--tls-cert-file=${R}${sched.certificates![1]!.certPath}`);
    expect(sched.health).toMatchObject({ kind: 'https', caFile: `${R}${sched.certificates![1]!.caPath}` });
    expect(sched.health!.insecure).toBeUndefined();
    expect(sched.files[0]!.content).toMatch(
      /client-certificate: \.\.\/\.\.\/kubernetes\/pki\/kube-scheduler-0\/scheduler\.crt/,
    );
    // roles without certificates get none
    expect(instance(plans, 'load-balancer#0').certificates).toBeUndefined();
  });

  it('etcd runs mutual TLS from the etcd CA, and the API server presents apiserver-etcd-client', () => {
    const R = ['$', '{DROVER_ROOT}'].join('');
    const etcd = instance(plans, 'etcd#0');
    const by = new Map(etcd.certificates!.map((c) => [c.profile, c]));
    expect([...by.keys()]).toEqual(['etcd-server', 'etcd-peer', 'etcd-client']);
    // every etcd certificate is stored beside the etcd CA, never the cluster CA
    for (const c of etcd.certificates!) expect(c.caPath).toMatch(/\/etcd-ca\.crt$/);
    const args = etcd.run.args;
    expect(args).toContain('--client-cert-auth=true');
    expect(args).toContain('--peer-client-cert-auth=true');
    expect(args).toContain(`--cert-file=${R}${by.get('etcd-server')!.certPath}`);
    expect(args).toContain(`--trusted-ca-file=${R}${by.get('etcd-server')!.caPath}`);
    expect(args).toContain(`--peer-cert-file=${R}${by.get('etcd-peer')!.certPath}`);
    expect(args).toContain('--listen-client-urls=https://10.0.0.11:2379');
    expect(args.find((a) => a.startsWith('--initial-cluster='))).toMatch(
      /^--initial-cluster=etcd-0=https:\/\/10\.0\.0\.11:2380,etcd-1=https:/,
    );
    // the probe reads /health on the loopback metrics listener, which serves nothing else
    expect(args).toContain('--listen-metrics-urls=http://127.0.0.1:2381');
    expect(etcd.health).toMatchObject({ kind: 'http', host: '127.0.0.1', port: 2381, path: '/health' });
    expect(etcd.commands!['endpoint-health']!.args).toContain(
      `--cert=${R}${by.get('etcd-client')!.certPath}`,
    );
    const api = instance(plans, 'kube-apiserver#0');
    const ec = api.certificates!.find((c) => c.profile === 'etcd-client')!;
    expect(ec).toMatchObject({ commonName: 'kube-apiserver-etcd-client', organizations: [] });
    expect(ec.certPath).toMatch(/\/apiserver-etcd-client\.crt$/);
    expect(api.run.args).toContain(`--etcd-certfile=${R}${ec.certPath}`);
    expect(api.run.args).toContain(`--etcd-keyfile=${R}${ec.keyPath}`);
    expect(api.run.args).toContain(`--etcd-cafile=${R}${ec.caPath}`);
    expect(api.run.args.find((a) => a.startsWith('--etcd-servers='))).toBe(
      '--etcd-servers=https://10.0.0.11:2379,https://10.0.0.12:2379,https://10.0.0.13:2379',
    );
  });

  it('a legacy plain-HTTP cluster keeps plain etcd URLs and lists no etcd certificates', () => {
    const plain = renderPlans({
      topology: topology(),
      assignments: haAssignments(),
      nodes: nodeMap(haNodes()),
      options: { pki: { serviceAccount: SA }, etcdTransport: 'plain' },
    });
    const etcd = instance(plain, 'etcd#0');
    expect(etcd.certificates).toBeUndefined();
    expect(etcd.run.args).toContain('--listen-client-urls=http://10.0.0.11:2379');
    expect(etcd.run.args.some((a) => a.startsWith('--client-cert-auth'))).toBe(false);
    const api = instance(plain, 'kube-apiserver#0');
    expect(api.certificates!.map((c) => c.profile)).not.toContain('etcd-client');
    expect(api.run.args.some((a) => a.startsWith('--etcd-certfile'))).toBe(false);
  });

  it('the service-account private key goes only to API servers and controller managers', () => {
    const holders = new Set<string>();
    for (const list of plans.values())
      for (const i of list)
        if (i.files.some((f) => f.content === SA.privateKeyPem || f.path.endsWith('/sa.key')))
          holders.add(i.role);
    expect([...holders].sort()).toEqual(['kube-apiserver', 'kube-controller-manager']);
    // and no kubelet client identity is system:masters
    const api = instance(plans, 'kube-apiserver#0');
    const kc = api.certificates!.find((c) => c.profile === 'apiserver-kubelet-client')!;
    expect(kc).toMatchObject({ commonName: 'kube-apiserver-kubelet-client', organizations: [] });
  });

  it('the signer issues exactly what the plan asks for (renderer and signer cannot disagree)', async () => {
    const dir = tempDir('pki-render');
    dirs.push(dir);
    const pki = await ClusterPki.open({ dir });
    const nodes = haNodes();
    const plansByNode = render();
    const engine: CsrEngine = {
      nodes: { get: (id) => nodes.find((n) => n.id === id) },
      clusterOf: () => 'ha',
      topology: () => topology(),
      currentAssignments: () => haAssignments(),
      placementNodes: () => nodes,
      desiredPlan: (nodeId) =>
        sealPlan({
          v: PROTOCOL_VERSION,
          type: 'plan',
          nodeId,
          generation: 1,
          coordinatorEpoch: 1,
          issuedAt: new Date().toISOString(),
          instances: plansByNode.get(nodeId) ?? [],
        }),
    };
    const book = new CertificateBook({
      store: new MemoryStore(),
      cas: () => pki.caValidity(),
      emit: () => {},
      log: silentLogger,
    });
    const sign = csrSigner(pki, engine, { onIssued: (l) => void book.issued(l) });
    let issued = 0;
    for (const [nodeId, list] of plansByNode)
      for (const inst of list)
        for (const c of inst.certificates ?? []) {
          const { csrPem } = await generateCsr(c);
          const r = await sign({
            v: PROTOCOL_VERSION,
            type: 'csr',
            nodeId,
            instanceId: inst.id,
            profile: c.profile,
            csrPem,
          });
          expect(r.ok, `${inst.id} ${c.profile}: ${r.error?.message}`).toBe(true);
          expect(opensslVerify(r.caPem!, r.certPem!).code).toBe(0);
          // the CA the agent writes beside the certificate is the one that issued it
          expect(r.caPem).toBe(pki.caPem(c.caPath.endsWith('/etcd-ca.crt') ? 'etcd' : 'cluster'));
          issued++;
        }
    // 3 API servers × 3 (serving, kubelet client, etcd client), 3 schedulers × 2, 3 controller
    // managers × 2, 2 kubelets × 2, 2 kube-proxies, 3 etcd members × 3 (server, peer, client)
    expect(issued).toBe(36);
    // every one is in the certificate book (newest per holder and profile), beside the 3 CAs
    const rows = book.rows();
    expect(rows.filter((r) => r.kind === 'ca').map((r) => r.profile)).toEqual([
      'ca:cluster',
      'ca:etcd',
      'ca:front-proxy',
    ]);
    expect(rows.filter((r) => r.kind === 'leaf')).toHaveLength(36);
    const etcdServer = rows.find((r) => r.instance === 'etcd#0' && r.profile === 'etcd-server')!;
    expect(etcdServer).toMatchObject({ cluster: 'ha', kind: 'leaf' });
    // renewed by the coordinator 37 days before expiry (a year's leaf; the agent's own is at 30)
    expect(Date.parse(etcdServer.notAfter) - Date.parse(etcdServer.renewAt)).toBe(37 * 86_400_000);
    // and in the metrics, in seconds until expiry
    const metrics = createMetrics();
    metrics.observe({ engine: fakeMetricsEngine(), certificates: () => book.rows() });
    const text = await metrics.render();
    const line = text
      .split('\n')
      .find(
        (l) =>
          l.startsWith('drover_certificate_expiry_seconds{') &&
          l.includes('instance="etcd#0"') &&
          l.includes('profile="etcd-server"'),
      )!;
    expect(line).toMatch(/cluster="ha",node="cp-\d"/);
    const secs = Number(line.split(' ').at(-1));
    expect(Math.abs(secs - (Date.parse(etcdServer.notAfter) - Date.now()) / 1000)).toBeLessThan(60);
    expect(text).toMatch(
      /drover_certificate_expiry_seconds\{cluster="",node="",profile="ca:etcd",instance=""\} \d+/,
    );
    // another node cannot have cp-1's API-server certificate
    const c = instance(plansByNode, 'kube-apiserver#0').certificates![0]!;
    const { csrPem } = await generateCsr(c);
    const stolen = await sign({
      v: PROTOCOL_VERSION,
      type: 'csr',
      nodeId: 'w-1',
      instanceId: 'kube-apiserver#0',
      profile: 'apiserver-serving',
      csrPem,
    });
    expect(stolen).toMatchObject({ ok: false, error: { code: 'DROVER_ERR_CSR_ROLE_NOT_ASSIGNED' } });
  });
});

/** The engine reads the other gauges make: nothing here. */
function fakeMetricsEngine() {
  return {
    nodes: { all: () => [], liveness: () => undefined, effectiveState: () => 'Ready' },
    converged: () => true,
    clusterNames: () => [],
    unplacedFor: () => [],
    events: { lastSeq: 0 },
  } as never;
}
