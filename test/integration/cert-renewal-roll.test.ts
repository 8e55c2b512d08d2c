import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { gatewayRequest } from '../../coordinator/etcd/admin.js';
import { etcdctlTlsFlags } from '../helpers/etcd-tls.js';
import { Fleet } from '../helpers/fleet.js';
import { waitFor } from '../helpers/proc.js';

/**
 * Certificates renewed by the coordinator through the rollout gate, with real etcd ×3 over mutual
 * TLS and real agents (127.0.78.2-4). Leaves live 200 s here (`pki.leafLifetime`), so the
 * coordinator renews each at half its lifetime; the agents' own fallback would only start at the
 * last third. All nine etcd certificates were issued together, yet the members restart one at a
 * time (the gate waits for each to be healthy again), and a client writing through all three
 * members every 100 ms never finds all of them down: quorum holds throughout.
 */

const TOPOLOGY = `apiVersion: drover.dev/v1
kind: Topology
metadata: { name: cr }
cluster: { name: cr }
roles:
  etcd: { replicas: 3, nodeSelector: { pool: control-plane } }
`;

interface Row {
  kind: string;
  instance: string;
  profile: string;
  serialNumber: string;
  notBefore: string;
  notAfter: string;
}

describe('certificate renewal rolled through the rollout gate (real etcd ×3, 200 s leaves)', () => {
  let fleet: Fleet;
  const figures: string[] = [];
  const leaves = async () =>
    (await fleet.api<{ items: Row[] }>('GET', '/v1/certificates')).items.filter(
      (r) => r.kind === 'leaf' && r.instance.startsWith('etcd#'),
    );

  beforeAll(async () => {
    fleet = await Fleet.start({
      subnet: '127.0.78',
      cluster: 'cr',
      nodes: ['cp-1', 'cp-2', 'cp-3'].map((id) => ({ id, pool: 'control-plane' })),
      coordinatorFlags: { 'pki-leaf-lifetime': '200s' },
    });
    await fleet.applyTopology(TOPOLOGY);
    await fleet.converged(60_000);
  }, 120_000);

  afterAll(() => {
    process.stdout.write(`\nFIGURES (cert-renewal-roll, 2-core CI):\n  ${figures.join('\n  ')}\n`);
  });

  it('every etcd certificate is renewed before the agents would, one member at a time; writes never stop', async () => {
    onTestFailed(() => {
      process.stderr.write(`\n${fleet.logs()}\n`);
    });
    const before = await leaves();
    expect(before.map((r) => `${r.instance}/${r.profile}`).sort()).toHaveLength(9);
    const endpoints = ['cp-1', 'cp-2', 'cp-3'].map((n) => fleet.etcdUrl(n));
    const flags = await etcdctlTlsFlags(`${fleet.coordinatorDataDir}/pki`);
    const file = (f: string) =>
      readFileSync(flags.find((x) => x.startsWith(`--${f}=`))!.split('=')[1]!, 'utf8');
    const tls = { ca: file('cacert'), cert: file('cert'), key: file('key') };
    // a client writing through any member that answers, every 100 ms
    const w = { writes: 0, oneDown: 0, allDown: 0, longestGapMs: 0, last: Date.now(), stop: false };
    const writer = (async () => {
      for (let i = 0; !w.stop; i++) {
        let ok = false;
        for (const ep of endpoints) {
          const r = await gatewayRequest(ep, '/v3/kv/put', tls, {
            body: JSON.stringify({
              key: Buffer.from(`/renewal/${i}`).toString('base64'),
              value: Buffer.from('x').toString('base64'),
            }),
            timeoutMs: 2000,
          }).catch(() => undefined);
          if (r && r.status < 300) {
            ok = true;
            break;
          }
          w.oneDown++;
        }
        const now = Date.now();
        if (ok) {
          w.writes++;
          w.longestGapMs = Math.max(w.longestGapMs, now - w.last);
          w.last = now;
        } else w.allDown++;
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const renewed = await waitFor(
      'every etcd certificate renewed',
      async () => {
        const now = await leaves();
        const fresh = now.filter(
          (r) =>
            !before.some(
              (b) =>
                b.instance === r.instance && b.profile === r.profile && b.serialNumber === r.serialNumber,
            ),
        );
        return fresh.length === before.length ? now : undefined;
      },
      { timeoutMs: 150_000, intervalMs: 1000 },
    );
    w.stop = true;
    await writer;
    // before the agents' own window (the last third of the lifetime) opened
    for (const b of before) {
      const n = renewed.find((r) => r.instance === b.instance && r.profile === b.profile)!;
      const agentWindow = Date.parse(b.notAfter) - (Date.parse(b.notAfter) - Date.parse(b.notBefore)) / 3;
      expect(Date.parse(n.notBefore), `${b.instance} ${b.profile}`).toBeLessThan(agentWindow);
    }
    // one member at a time: the members asked in different seconds (X.509 times are in whole seconds)
    const issued = ['etcd#0', 'etcd#1', 'etcd#2']
      .map((i) => Date.parse(renewed.find((r) => r.instance === i && r.profile === 'etcd-server')!.notBefore))
      .sort((a, b) => a - b);
    expect(issued[1]! - issued[0]!).toBeGreaterThanOrEqual(1000);
    expect(issued[2]! - issued[1]!).toBeGreaterThanOrEqual(1000);
    expect(w.allDown).toBe(0);
    const health = JSON.parse(await fleet.etcdctl(endpoints, ['endpoint', 'health', '-w', 'json'])) as Array<{
      health: boolean;
    }>;
    expect(health.filter((h) => h.health)).toHaveLength(3);
    figures.push(
      `renewal roll of 3 etcd members (9 certificates): members renewed ${((issued[1]! - issued[0]!) / 1000).toFixed(1)} s and ${((issued[2]! - issued[1]!) / 1000).toFixed(1)} s apart; ${w.writes} writes, ${w.oneDown} tries met a restarting member, ${w.allDown} found none, longest gap between writes ${w.longestGapMs} ms`,
    );
  }, 240_000);
});
