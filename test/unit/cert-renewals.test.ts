import { describe, expect, it } from 'vitest';
import { sameSerial } from '../../agent/certs.js';
import { renderInstance } from '../../coordinator/catalog/render.js';
import type { Assignment } from '../../coordinator/model.js';
import type { IssuedLeaf } from '../../coordinator/pki/cert-book.js';
import { CertRenewals, coordinatorRenewAt, renewalOverlay } from '../../coordinator/pki/renewal-roll.js';
import { DAY_MS } from '../../lib/cert-renewal.js';
import { ManualClock } from '../../lib/clock.js';

/** The coordinator's certificate renewal, decided purely: when, which serial, and what the plan says. */

const YEAR = 365 * DAY_MS;
const T0 = Date.parse('2026-01-01T00:00:00Z');
const row = (
  instanceId: string,
  profile: string,
  serial: string,
  nodeId = 'n0',
  life = YEAR,
): IssuedLeaf => ({
  cluster: 'prod',
  nodeId,
  instanceId,
  profile,
  serialNumber: serial,
  notBefore: new Date(T0).toISOString(),
  notAfter: new Date(T0 + life).toISOString(),
});
const a = (instanceId: string, nodeId = 'n0'): Assignment => ({
  instanceId,
  role: instanceId.split('#')[0]!,
  ordinal: Number(instanceId.split('#')[1]),
  nodeId,
  epoch: 1,
  cluster: 'prod',
  since: new Date(T0).toISOString(),
});

describe('coordinator certificate renewal', () => {
  it('is due 37 days before expiry for a one-year leaf, at half the lifetime for a short one', () => {
    expect(coordinatorRenewAt(row('x#0', 'p', '1').notBefore, row('x#0', 'p', '1').notAfter)).toBe(
      T0 + YEAR - 37 * DAY_MS,
    );
    // as issued: 200 s after a notBefore back-dated 5 minutes; half of the 200 s
    const short = { ...row('x#0', 'p', '1', 'n0', 200_000), notBefore: new Date(T0 - 300_000).toISOString() };
    expect(coordinatorRenewAt(short.notBefore, short.notAfter)).toBe(T0 + 100_000);
  });

  it('records the serial to replace on the instance it was issued to, once', () => {
    const leaves = [
      row('etcd#0', 'etcd-server', 'ab01'),
      row('etcd#0', 'etcd-peer', 'ab02'),
      row('etcd#1', 'etcd-server', 'cd01', 'n9'),
    ];
    const current = [a('etcd#0'), a('etcd#1', 'n1')];
    expect(renewalOverlay(current, leaves, T0 + YEAR - 38 * DAY_MS)).toEqual(current);
    const due = renewalOverlay(current, leaves, T0 + YEAR - 36 * DAY_MS);
    expect((due[0] as Assignment & { certRenew?: object }).certRenew).toEqual({
      'etcd-server': 'ab01',
      'etcd-peer': 'ab02',
    });
    // etcd#1's certificate was issued on another node: not this assignment's to renew
    expect(due[1]).toBe(current[1]);
    // level-triggered: the same objects once recorded
    const again = renewalOverlay(due, leaves, T0 + YEAR - 36 * DAY_MS);
    expect(again[0]).toBe(due[0]);
  });

  it('renders the serial into the plan, so the instance changes and the rollout gate rolls it', () => {
    const clock = new ManualClock(T0 + YEAR - 36 * DAY_MS);
    const current = [a('etcd#0')];
    const leaves = [row('etcd#0', 'etcd-server', 'ab01')];
    const woken: string[] = [];
    const r = new CertRenewals({
      leaves: () => leaves,
      clusters: () => ['prod'],
      assignments: () => current,
      enqueue: (k) => woken.push(k),
      clock,
    });
    expect(r.check()).toEqual(['prod']);
    expect(woken).toEqual(['cluster:prod']);
    const next = r.overlay('prod', current)[0]!;
    const ctx = (x: Assignment) => ({
      topology: {
        metadata: { name: 'prod' },
        cluster: {
          name: 'prod',
          binaries: {},
          certDir: '/etc/kubernetes/pki',
          clusterDomain: 'cluster.local',
          serviceCidr: '10.96.0.0/12',
        },
        roles: { etcd: { replicas: 1, extraArgs: [], env: {}, repair: {} } },
        customRoles: {},
      } as never,
      role: 'etcd',
      spec: { replicas: 1, extraArgs: [], env: {}, repair: {} } as never,
      assignment: x,
      node: { id: 'n0', hostname: 'n0', address: '10.0.0.1', facts: { binaries: {} } } as never,
      members: () => [],
      api: { host: '10.0.0.1', port: 6443, url: 'https://10.0.0.1:6443', via: 'direct' as const },
    });
    const opts = { pki: { serviceAccount: { publicKeyPem: 'p', privateKeyPem: 'k' } } };
    const plain = renderInstance(ctx(current[0]!), opts);
    const renewing = renderInstance(ctx(next), opts);
    expect(plain.certificates?.find((c) => c.profile === 'etcd-server')?.renewSerial).toBeUndefined();
    expect(renewing.certificates?.find((c) => c.profile === 'etcd-server')?.renewSerial).toBe('ab01');
    expect(renewing.certificates?.find((c) => c.profile === 'etcd-peer')?.renewSerial).toBeUndefined();
  });

  it('the agent matches a serial without case or leading zeros', () => {
    expect(sameSerial('00AB01', 'ab01')).toBe(true);
    expect(sameSerial('ab02', 'ab01')).toBe(false);
  });
});
