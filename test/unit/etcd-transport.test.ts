import { describe, expect, it } from 'vitest';
import {
  ETCD_TRANSPORT_MARKER,
  EtcdTransportBook,
  renewingEtcdCredentials,
} from '../../coordinator/etcd/transport.js';
import type { EventInput } from '../../coordinator/events.js';
import { MemoryStore } from '../../coordinator/store/index.js';
import { ManualClock } from '../../lib/clock.js';

const assignment = (cluster: string, role: string, ordinal = 0) => ({
  cluster,
  role,
  ordinal,
  instanceId: `${role}#${ordinal}`,
  nodeId: `n${ordinal}`,
  epoch: 1,
  since: '2026-01-01T00:00:00Z',
});

async function book(store: MemoryStore, clock = new ManualClock(1000)) {
  const b = new EtcdTransportBook(store, clock);
  await b.load();
  const events: EventInput[] = [];
  const plain = await b.adoptLegacy((e) => events.push(e));
  return { b, events, plain };
}

describe('etcd transport per cluster: legacy plain-HTTP clusters stay plain, new ones run TLS', () => {
  it('the first TLS-capable start records clusters that already have etcd members as plain, and says how to migrate', async () => {
    const store = new MemoryStore();
    await store.put('assignments/old/etcd#0', assignment('old', 'etcd'));
    await store.put('assignments/old/kube-apiserver#0', assignment('old', 'kube-apiserver'));
    await store.put('assignments/web/web#0', assignment('web', 'web'));
    const { b, events, plain } = await book(store);
    expect(plain).toEqual(['old']);
    expect(b.get('old')).toBe('plain');
    // a cluster without etcd members, and one that does not exist yet, run TLS
    expect(b.get('web')).toBe('tls');
    expect(b.get('new')).toBe('tls');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ kind: 'etcd.plain-http', severity: 'error', cluster: 'old' });
    expect(events[0]!.message).toMatch(/plain HTTP without client authentication/);
    expect(events[0]!.message).toMatch(/docs\/operations\.md "Moving a plain-HTTP etcd to TLS"/);
    expect((await store.get(ETCD_TRANSPORT_MARKER))?.value).toBeDefined();
  });

  it('after that start, a cluster bootstrapped later is TLS for good, and the plain one is reported at every start', async () => {
    const store = new MemoryStore();
    await store.put('assignments/old/etcd#0', assignment('old', 'etcd'));
    await book(store);
    // a new cluster places etcd under the TLS coordinator: no record needed
    await store.put('assignments/fresh/etcd#0', assignment('fresh', 'etcd'));
    const again = await book(store);
    expect(again.b.get('fresh')).toBe('tls');
    expect(again.b.get('old')).toBe('plain');
    expect(again.plain).toEqual(['old']);
    expect(again.events.map((e) => e.cluster)).toEqual(['old']);
  });

  it('a fresh data dir has nothing plain', async () => {
    const { plain, events } = await book(new MemoryStore());
    expect(plain).toEqual([]);
    expect(events).toEqual([]);
  });

  it("the coordinator's client certificate is re-issued inside its renewal window, not before", async () => {
    const { ClusterPki } = await import('../../coordinator/pki/index.js');
    const { tempDir, rmrf } = await import('../helpers/proc.js');
    const dir = tempDir('etcd-creds');
    try {
      const pki = await ClusterPki.open({ dir });
      let issued = 0;
      const clock = new ManualClock(Date.now());
      const creds = renewingEtcdCredentials(async () => {
        issued++;
        return pki.etcdClientCredentials();
      }, clock);
      const a = await creds();
      const b = await creds();
      expect(issued).toBe(1);
      expect(b.cert).toBe(a.cert);
      // a year later (the leaf lives a year): inside the window, so a new one
      clock.advance(360 * 86_400_000);
      const c = await creds();
      expect(issued).toBe(2);
      expect(c.cert).not.toBe(a.cert);
    } finally {
      rmrf(dir);
    }
  });
});
