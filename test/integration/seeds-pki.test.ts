/**
 * Certificates through the real flow (issue 8, PKI in plans): a coordinator with its ClusterPki,
 * three real agents and a real nats-server. The topology is Arktos-partitioned (two API-server
 * service groups) behind a real haproxy, with lab stand-ins for the Kubernetes binaries. Every
 * instance's key is made on its node; only CSRs travel. The test checks the files with openssl,
 * dials the API servers over TLS with the cluster CA (directly and through the load balancer), and
 * checks that CSRs the coordinator must refuse are refused.
 */
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import type { NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { Agent } from '../../agent/agent.js';
import type { CoordinatorHandle } from '../../coordinator/daemon.js';
import { parseTopology } from '../../coordinator/topology/index.js';
import { generateCsr } from '../../lib/csr.js';
import { decodeMessage, encode, PROTOCOL_VERSION, subjects } from '../../protocol/index.js';
import { readyNodes, startJoinedAgents, startTestDaemon } from '../helpers/daemons.js';
import { opensslSans, opensslSubject, opensslVerify } from '../helpers/pki.js';
import { rmrf } from '../helpers/proc.js';
import { natsByUrl, waitFor } from '../helpers/servers.js';

const NODES = [
  { id: 'pk1', addr: '127.0.9.1' },
  { id: 'pk2', addr: '127.0.9.2' },
  { id: 'pk3', addr: '127.0.9.3' },
];

let coord: CoordinatorHandle;
let dir: string;
let natsUrl: string;
const agents: Agent[] = [];

const TOPOLOGY = `apiVersion: drover.dev/v1
kind: Topology
metadata: { name: ark }
cluster:
  name: ark
  apiEndpoint: { mode: haproxy, port: 6443 }
  partitions:
    - { id: "1", rangeStart: "A", isRangeStartValid: false, rangeEnd: "m", isRangeEndValid: true }
    - { id: "2", rangeStart: "m", isRangeStartValid: true, rangeEnd: "", isRangeEndValid: false }
roles:
  load-balancer: { pins: [pk3] }
  etcd: { pins: [pk1] }
  kube-apiserver: { pins: [pk1, pk2] }
  kube-scheduler: { pins: [pk1] }
  kube-controller-manager: { pins: [pk2] }
  workload-controller-manager: { pins: [pk3] }
  kubelet: { everywhere: true }
  kube-proxy: { everywhere: true }
`;

const root = (i: number) => agents[i]!.options.rootDir;
/** `kubelet-2`: the instance of `role` on node `i`, as file names spell it. */
const on = (role: string, i: number): string => {
  const a = coord.engine.currentAssignments('ark').find((x) => x.role === role && x.nodeId === NODES[i]!.id);
  if (!a) throw new Error(`no ${role} on ${NODES[i]!.id}`);
  return a.instanceId.replace('#', '-');
};
const pkiFile = (i: number, inst: string, f: string) => join(root(i), 'etc/kubernetes/pki', inst, f);

function healthyRoles(): Map<string, number> {
  const out = new Map<string, number>();
  for (const n of coord.engine.nodes.all())
    for (const i of coord.engine.nodes.liveness(n.id)?.status?.instances ?? [])
      if (i.phase === 'Healthy') out.set(i.role, (out.get(i.role) ?? 0) + 1);
  return out;
}

/** GET over TLS, verifying the server certificate against `ca` for hostname `host`. */
function tlsGet(host: string, port: number, ca: string): Promise<{ status: number; subject: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host, port, path: '/livez', ca, servername: undefined, rejectUnauthorized: true, timeout: 3000 },
      (res) => {
        const peer = (res.socket as import('node:tls').TLSSocket).getPeerCertificate();
        res.resume();
        resolve({ status: res.statusCode ?? 0, subject: String(peer.subject?.CN ?? '') });
      },
    );
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

beforeAll(async () => {
  const d = await startTestDaemon({ name: 'seeds-pki', standin: true });
  natsUrl = d.nats.url;
  ({ dir, coord } = d);
  agents.push(
    ...(await startJoinedAgents(
      natsUrl,
      NODES.map((n) => ({
        nodeId: n.id,
        advertiseAddress: n.addr,
        driftCheckInterval: '1s',
        labels: { 'drover.dev/cluster': 'ark' },
      })),
    )),
  );
  await waitFor('three Ready agents', () => readyNodes(coord) === 3, { timeoutMs: 30_000 });
  await coord.engine.applyTopology(parseTopology(TOPOLOGY, 'ark.yaml'));
  await waitFor(
    'every role healthy',
    () => {
      const h = healthyRoles();
      return (
        h.get('kube-apiserver') === 2 &&
        h.get('kubelet') === 3 &&
        h.get('kube-proxy') === 3 &&
        h.get('kube-scheduler') === 1 &&
        h.get('kube-controller-manager') === 1 &&
        h.get('load-balancer') === 1 &&
        coord.engine.converged('ark')
      );
    },
    { timeoutMs: 90_000, intervalMs: 250 },
  );
}, 150_000);

afterAll(async () => {
  await coord?.close();
  rmrf(dir);
});

describe('certificates through the real CSR flow', () => {
  it("a node's API-server serving cert verifies against the cluster CA and has the SANs", () => {
    const ca = coord.pki.caPem('cluster');
    const cert = readFileSync(pkiFile(0, 'kube-apiserver-0', 'apiserver.crt'), 'utf8');
    expect(readFileSync(pkiFile(0, 'kube-apiserver-0', 'ca.crt'), 'utf8')).toBe(ca);
    expect(opensslVerify(ca, cert, 'sslserver').code).toBe(0);
    const sans = opensslSans(cert);
    const hostname = coord.engine.nodes.get('pk1')!.hostname;
    expect(sans).toEqual(
      expect.arrayContaining([
        `DNS:${hostname.toLowerCase()}`,
        'IP Address:127.0.9.1', // the node
        'IP Address:127.0.9.3', // the load balancer (the API endpoint)
        'IP Address:10.0.0.1', // the first service IP (kubernetes.default)
        'DNS:kubernetes',
        'DNS:kubernetes.default',
        'DNS:kubernetes.default.svc',
        'DNS:kubernetes.default.svc.cluster.local',
      ]),
    );
    expect(opensslSubject(cert)).toMatch(/CN=kube-apiserver/);
    // the key was made on the node and is private
    expect(statSync(pkiFile(0, 'kube-apiserver-0', 'apiserver.key')).mode & 0o777).toBe(0o600);
    // the coordinator never held it: its PKI dir has only CAs and the service-account pair
    expect(existsSync(join(dir, 'coordinator', 'pki', 'apiserver.key'))).toBe(false);
  });

  it('the API servers serve that certificate: TLS with the cluster CA works directly and through haproxy', async () => {
    const ca = coord.pki.caPem('cluster');
    for (const host of ['127.0.9.1', '127.0.9.2', '127.0.9.3']) {
      const r = await tlsGet(host, 6443, ca);
      expect(r.status, host).toBe(200);
      expect(r.subject).toBe('kube-apiserver');
    }
  });

  it('client certificates have the identities Kubernetes expects, and partitioned kubeconfigs use them', () => {
    const ca = coord.pki.caPem('cluster');
    const hostname = coord.engine.nodes.get('pk3')!.hostname;
    const kubelet = readFileSync(pkiFile(2, on('kubelet', 2), 'kubelet-client.crt'), 'utf8');
    expect(opensslVerify(ca, kubelet, 'sslclient').code).toBe(0);
    expect(opensslSubject(kubelet)).toBe(`subject=CN=system:node:${hostname},O=system:nodes`);
    const serving = readFileSync(pkiFile(2, on('kubelet', 2), 'kubelet.crt'), 'utf8');
    expect(opensslVerify(ca, serving, 'sslserver').code).toBe(0);
    const wcm = readFileSync(pkiFile(2, 'workload-controller-manager-0', 'controller-manager.crt'), 'utf8');
    expect(opensslSubject(wcm)).toBe('subject=CN=system:kube-controller-manager');
    // Arktos: one kubeconfig per partition, each on its group's API server, with the node's cert
    const kcDir = join(root(2), 'etc/drover', on('kubelet', 2));
    const servers = ['1', '2'].map((p) => {
      const kc = parseYaml(readFileSync(join(kcDir, `kubelet-${p}.kubeconfig`), 'utf8'));
      expect(existsSync(join(kcDir, kc.users[0].user['client-certificate']))).toBe(true);
      return kc.clusters[0].cluster.server;
    });
    expect(servers).toEqual(['https://127.0.9.1:6443', 'https://127.0.9.2:6443']);
    // service-account keys came in the plans: API servers and the controller manager share one pair
    const saPub = readFileSync(pkiFile(1, 'kube-apiserver-1', 'sa.pub'), 'utf8');
    expect(saPub).toBe(coord.pki.serviceAccountKeys().publicKeyPem);
    expect(statSync(pkiFile(1, 'kube-controller-manager-0', 'sa.key')).mode & 0o777).toBe(0o600);
  });

  it('refuses CSRs for a role the node is not assigned, for a profile its plan lacks, and for another node', async () => {
    // each node asks with its own bus identity: only it may publish on its CSR subject
    const conns = new Map<string, NatsConnection>();
    const as = async (nodeId: string) => {
      if (!conns.has(nodeId)) conns.set(nodeId, await natsByUrl.get(natsUrl)!.connectAs({ nodeId }));
      return conns.get(nodeId)!;
    };
    try {
      const ask = async (subjectNode: string, body: Record<string, unknown>) => {
        const m = await (await as(subjectNode)).request(
          subjects.csr(subjectNode),
          encode({ v: PROTOCOL_VERSION, type: 'csr', ...body }),
          {
            timeout: 5000,
          },
        );
        return JSON.parse(Buffer.from(m.data).toString()) as {
          ok?: boolean;
          code?: string;
          error?: { code: string };
        };
      };
      const { csrPem } = await generateCsr({ commonName: 'kube-apiserver', dnsNames: ['kubernetes'] });
      // pk3 runs no API server: it cannot get an API-server certificate
      const notAssigned = await ask('pk3', {
        nodeId: 'pk3',
        instanceId: 'kube-apiserver#0',
        profile: 'apiserver-serving',
        csrPem,
      });
      expect(notAssigned).toMatchObject({ ok: false, error: { code: 'DROVER_ERR_CSR_ROLE_NOT_ASSIGNED' } });
      const r = decodeMessage('CertificateReply', encode(notAssigned as unknown as Record<string, unknown>));
      expect(r.ok).toBe(false);
      // pk1 runs kube-apiserver#0, but its plan asks for no admin certificate
      const admin = await ask('pk1', {
        nodeId: 'pk1',
        instanceId: 'kube-apiserver#0',
        profile: 'admin',
        csrPem,
      });
      expect(admin).toMatchObject({ ok: false, error: { code: 'DROVER_ERR_CSR_PROFILE_NOT_ALLOWED' } });
      // right instance and profile, wrong names: refused, not rewritten
      const wrongNames = await ask('pk1', {
        nodeId: 'pk1',
        instanceId: 'kube-apiserver#0',
        profile: 'apiserver-serving',
        csrPem,
      });
      expect(wrongNames).toMatchObject({ ok: false, error: { code: 'DROVER_ERR_CSR_SAN' } });
      // a node cannot ask in another node's name
      const spoofed = await ask('pk3', {
        nodeId: 'pk1',
        instanceId: 'kube-apiserver#0',
        profile: 'apiserver-serving',
        csrPem,
      });
      expect(spoofed).toMatchObject({ code: 'DROVER_ERR_DECODE' });
    } finally {
      for (const nc of conns.values()) await nc.close();
    }
  });

  it('a deleted certificate is obtained again and its instance restarted to load it', async () => {
    const agent = agents[2]!;
    const name = on('kube-proxy', 2);
    const id = name.replace(/-(\d+)$/, '#$1');
    const cert = pkiFile(2, name, 'kube-proxy.crt');
    const before = readFileSync(cert, 'utf8');
    const pid = agent.runtime.status(id)?.pid;
    rmSync(cert);
    await waitFor(
      'kube-proxy cert re-issued',
      () => existsSync(cert) && readFileSync(cert, 'utf8') !== before,
      {
        timeoutMs: 15_000,
      },
    );
    await waitFor('kube-proxy restarted', () => {
      const p = agent.runtime.status(id)?.pid;
      return p !== undefined && p !== pid;
    });
    expect(opensslSubject(readFileSync(cert, 'utf8'))).toBe(
      'subject=CN=system:kube-proxy,O=system:node-proxier',
    );
  });
});
