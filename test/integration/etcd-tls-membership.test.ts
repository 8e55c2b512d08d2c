import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT_VAR } from '../../agent/applier.js';
import { EtcdGatewayAdmin } from '../../coordinator/etcd/admin.js';
import { renewingEtcdCredentials } from '../../coordinator/etcd/transport.js';
import { ClusterPki, csrSigner } from '../../coordinator/pki/index.js';
import { systemClock } from '../../lib/clock.js';
import { generateCsr } from '../../lib/csr.js';
import { type InstanceSpec, PROTOCOL_VERSION } from '../../protocol/index.js';
import { tlsHealthy } from '../helpers/etcd-tls.js';
import { autoCleanup, killAndWait, requireBinary, spawnLogged, tempDir, waitFor } from '../helpers/proc.js';
import { repairFleet } from '../helpers/repair-fleet.js';

/**
 * etcd exactly as Drover renders it with a cluster PKI, against real etcd: client and peer mutual
 * TLS from the etcd CA, certificates obtained through the CSR flow the agent uses (key made on the
 * "node", CSR checked by the coordinator's signer against the plan), /health on the loopback
 * metrics listener. A real Engine on an injected clock places the members; the test plays the
 * agents. Members listen on 127.0.76.2-5 at the catalog's ports 2379/2380/2381.
 */

const TOPOLOGY = `apiVersion: drover.dev/v1
kind: Topology
metadata: { name: tls }
cluster: { name: tls }
roles:
  etcd: { replicas: 3 }
`;
const ADDR = (i: number) => `127.0.76.${i + 2}`;
const client = (i: number) => `https://${ADDR(i)}:2379`;
const peer = (i: number) => `https://${ADDR(i)}:2380`;

function plainGet(url: string): Promise<{ status?: number; body?: string; error?: string }> {
  return new Promise((resolve) => {
    const r = httpRequest(url, { timeout: 2000 }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    r.on('timeout', () => r.destroy(new Error('timeout')));
    r.on('error', (err) => resolve({ error: err.message }));
    r.end();
  });
}

describe('etcd over mutual TLS as Drover renders it (real etcd, CSR-issued certificates)', () => {
  it('refuses clients without a certificate, from another CA and over plain HTTP; replaces a member over TLS', async () => {
    const root = tempDir('etcd-tls-membership');
    const pki = await ClusterPki.open({ dir: join(root, 'pki') });
    const credentials = renewingEtcdCredentials(() => pki.etcdClientCredentials(), systemClock);
    const f = await repairFleet({
      nodes: 4,
      address: ADDR,
      topology: TOPOLOGY,
      source: 'tls.yaml',
      renderOptions: { pki: { serviceAccount: pki.serviceAccountKeys() } },
      etcdTransport: async () => ({ scheme: 'https', tls: await credentials() }),
    });
    const { engine, ids, alive } = f;
    const idx = (node: string) => ids.indexOf(node);
    const sign = csrSigner(pki, engine);
    const procs = new Map<string, ReturnType<typeof spawnLogged>>();
    autoCleanup(async () => {
      for (const p of procs.values()) await killAndWait(p, 'SIGKILL');
    });
    const planned = (node: string): InstanceSpec =>
      engine.desiredPlan(node)!.instances.find((i) => i.role === 'etcd')!;
    const onNode = (node: string, p: string) => join(root, node, p);
    const withRoot = (node: string, args: string[]) =>
      args.map((a) => a.replaceAll(ROOT_VAR, join(root, node)));
    // what the agent does before it starts the instance: a key per certificate, a CSR, the files
    const provision = async (node: string) => {
      const spec = planned(node);
      expect(spec.certificates?.map((c) => c.profile)).toEqual(['etcd-server', 'etcd-peer', 'etcd-client']);
      for (const c of spec.certificates!) {
        const { keyPem, csrPem } = await generateCsr(c);
        const r = await sign({
          v: PROTOCOL_VERSION,
          type: 'csr',
          nodeId: node,
          instanceId: spec.id,
          profile: c.profile,
          csrPem,
        });
        expect(r.ok, `${spec.id} ${c.profile}: ${r.error?.message}`).toBe(true);
        for (const [p, text] of [
          [c.keyPath, keyPem],
          [c.certPath, r.certPem!],
          [c.caPath, r.caPem!],
        ] as const) {
          mkdirSync(dirname(onNode(node, p)), { recursive: true });
          writeFileSync(onNode(node, p), text, { mode: 0o600 });
        }
      }
    };
    const run = async (node: string) => {
      await provision(node);
      procs.set(
        node,
        spawnLogged(requireBinary('etcd'), [...withRoot(node, planned(node).run.args), '--log-level=error']),
      );
    };
    const etcdctl = (node: string, command: string, extra: string[] = []) => {
      const c = planned(node).commands![command]!;
      const r = spawnSync(requireBinary('etcdctl'), [...withRoot(node, c.args), ...extra], {
        encoding: 'utf8',
        env: { ...process.env, ETCDCTL_API: '3' },
        timeout: 20_000,
      });
      return { code: r.status, out: `${r.stdout}${r.stderr}` };
    };

    const bootstrap = ['etcd#0', 'etcd#1', 'etcd#2'].map((i) => f.where(i)!);
    expect(new Set(bootstrap).size).toBe(3);
    for (const n of bootstrap) await run(n);
    // the probe's view: /health on the loopback metrics listener, plain HTTP, no certificate
    for (const n of bootstrap) expect(planned(n).health).toMatchObject({ host: ADDR(idx(n)), port: 2381 });
    await waitFor(
      'the bootstrap members healthy on their metrics listeners',
      async () => {
        const r = await Promise.all(bootstrap.map((n) => plainGet(`http://${ADDR(idx(n))}:2381/health`)));
        return r.every((x) => x.status === 200 && /"health":\s*"true"/.test(x.body ?? ''));
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    ).catch((err: Error) => {
      throw new Error(
        `${err.message}\n${[...procs.values()].map((p) => p.output().slice(-3000)).join('\n---\n')}`,
      );
    });
    const admin = new EtcdGatewayAdmin(
      bootstrap.map((n) => client(idx(n))),
      await credentials(),
    );
    const members = await admin.memberList();
    expect(members.flatMap((m) => m.peerURLs).sort()).toEqual(bootstrap.map((n) => peer(idx(n))).sort());

    // the coordinator's client certificate is accepted; no certificate, another CA's certificate,
    // a cluster-CA certificate and plain HTTP are all refused by the same member at the same moment
    const url = client(idx(bootstrap[0]!));
    const mine = await credentials();
    expect(await tlsHealthy(url, { caPem: mine.ca!, certPem: mine.cert, keyPem: mine.key })).toBe(true);
    expect(await tlsHealthy(url, { caPem: mine.ca! })).toBe(false);
    const other = await ClusterPki.open({ dir: join(root, 'other-pki') });
    const foreign = await other.etcdClientCredentials();
    expect(await tlsHealthy(url, { caPem: mine.ca!, certPem: foreign.certPem, keyPem: foreign.keyPem })).toBe(
      false,
    );
    const admin2 = await pki.adminCredentials(); // cluster CA, system:masters: no etcd identity
    expect(await tlsHealthy(url, { caPem: mine.ca!, certPem: admin2.certPem, keyPem: admin2.keyPem })).toBe(
      false,
    );
    const plain = await plainGet(`http://${ADDR(idx(bootstrap[0]!))}:2379/health`);
    expect(plain.status === 200 && /"health":\s*"true"/.test(plain.body ?? '')).toBe(false);
    const plainPut = await plainGet(`http://${ADDR(idx(bootstrap[0]!))}:2379/v3/kv/range`);
    expect(plainPut.status === 200).toBe(false);

    // the member's own etcdctl commands carry its client certificate
    const put = etcdctl(bootstrap[0]!, 'endpoint-health');
    expect(put.code, put.out).toBe(0);
    const w = spawnSync(
      requireBinary('etcdctl'),
      [
        ...withRoot(bootstrap[0]!, planned(bootstrap[0]!).commands!['endpoint-health']!.args.slice(0, 4)),
        'put',
        '/drover/tls',
        'kept',
      ],
      { encoding: 'utf8', env: { ...process.env, ETCDCTL_API: '3' }, timeout: 20_000 },
    );
    expect(w.status, w.stderr).toBe(0);

    // member replacement through the survivors, over TLS
    f.beat();
    await engine.queue.idle();
    const old = f.where('etcd#2')!;
    const spare = ids.find((n) => !bootstrap.includes(n))!;
    await killAndWait(procs.get(old)!, 'SIGKILL');
    procs.delete(old);
    alive.delete(old);
    await engine.repairEtcdMember('etcd-2');
    f.beat();
    await engine.queue.idle();
    const survivors = bootstrap.filter((n) => n !== old).map((n) => client(idx(n)));
    const want = [...bootstrap.filter((n) => n !== old), spare].map((n) => peer(idx(n))).sort();
    await waitFor(
      'etcd#2 moved to the spare and its member added over TLS',
      async () => {
        f.clock.advance(1000);
        f.beat();
        await engine.queue.idle();
        if (f.where('etcd#2') !== spare) return false;
        const m = await admin.memberList(survivors);
        return JSON.stringify(m.flatMap((x) => x.peerURLs).sort()) === JSON.stringify(want);
      },
      { timeoutMs: 40_000, intervalMs: 200 },
    );
    expect(planned(spare).run.args).toContain('--initial-cluster-state=existing');
    await run(spare);
    await waitFor(
      'three healthy members, the new one among them',
      async () =>
        (await admin.healthyEndpoints([...survivors, client(idx(spare))])).length === 3 &&
        (await admin.memberList(survivors)).every((m) => m.name !== ''),
      { timeoutMs: 40_000, intervalMs: 250 },
    );
    // the new member has the data, read through it alone with its own client certificate
    const list = etcdctl(spare, 'member-list');
    expect(list.code, list.out).toBe(0);
    const r = spawnSync(
      requireBinary('etcdctl'),
      [
        ...withRoot(spare, planned(spare).commands!['endpoint-health']!.args.slice(0, 4)),
        'get',
        '/drover/tls',
        '--print-value-only',
        '--consistency=s',
      ],
      { encoding: 'utf8', env: { ...process.env, ETCDCTL_API: '3' }, timeout: 20_000 },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('kept');
    expect(f.events('etcd.member-added')).toHaveLength(1);
    expect(f.events('etcd.member-removed')).toHaveLength(1);
  }, 150_000);
});
