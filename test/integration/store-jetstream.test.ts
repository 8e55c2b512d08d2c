import type { NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeKvKey, encodeKvKey, openJetStreamStore } from '../../coordinator/store/jetstream.js';
import { waitFor } from '../helpers/proc.js';
import { type NatsHandle, startNats } from '../helpers/servers.js';
import { storeConformance } from '../helpers/store-conformance.js';

/**
 * The JetStream KV store against a real nats-server with JetStream (one server here; the R3
 * cluster is exercised by the HA tests): the same conformance suite as the lowdb file store.
 */
let nats: NatsHandle;
let nc: NatsConnection;
let n = 0;
beforeAll(async () => {
  nats = await startNats({ jetstream: true });
  nc = await nats.connectAs({ coordinator: true });
}, 60_000);
afterAll(async () => {
  await nc?.close();
  await nats?.stop();
});

storeConformance('JetStreamStore', ({ historyLimit }) =>
  openJetStreamStore({ nc, bucket: `conf-${process.pid}-${++n}`, history: Math.min(64, historyLimit) }),
);

describe('JetStream store specifics', () => {
  it('escapes keys KV cannot hold and decodes them back', () => {
    for (const k of ['assignments/c/etcd#0', 'a.b', 'x=y', 'sp ace', 'ünï', 'nodes/a'])
      expect(decodeKvKey(encodeKvKey(k))).toBe(k);
    expect(encodeKvKey('assignments/c/etcd#0')).toBe('assignments/c/etcd=230');
    expect(encodeKvKey('nodes/a')).toBe('nodes/a');
  });

  it('refuses a bucket of another schema, and bad options, naming them', async () => {
    const js = nc.jetstream();
    await js.views.kv('foreign-bucket', { description: 'somebody else' });
    await expect(openJetStreamStore({ nc, bucket: 'foreign-bucket' })).rejects.toMatchObject({
      code: 'DROVER_ERR_STORE_VERSION',
      message: expect.stringContaining('foreign-bucket'),
    });
    await expect(openJetStreamStore({ nc, bucket: 'h', history: 65 })).rejects.toMatchObject({
      code: 'DROVER_ERR_STORE_OPTIONS',
    });
  });

  it('refuses a replica count a single server cannot hold', async () => {
    await expect(openJetStreamStore({ nc, bucket: 'r3-on-one', replicas: 3 })).rejects.toMatchObject({
      code: 'DROVER_ERR_STORE_OPTIONS',
      message: expect.stringMatching(/3 replica/),
    });
  });

  it("a second store on the same bucket (a follower) sees the first one's writes through its watch", async () => {
    const bucket = `shared-${process.pid}`;
    const a = await openJetStreamStore({ nc, bucket });
    const b = await openJetStreamStore({ nc, bucket });
    try {
      const r = await a.put('assignments/c/etcd#0', { node: 'n1' });
      const deadline = Date.now() + 5000;
      while (b.revision() < r && Date.now() < deadline) await new Promise((x) => setTimeout(x, 10));
      expect(await b.get('assignments/c/etcd#0')).toEqual({
        key: 'assignments/c/etcd#0',
        value: { node: 'n1' },
        revision: r,
      });
      // and compare-and-set works across them
      await expect(b.update('assignments/c/etcd#0', { node: 'n2' }, r - 1)).rejects.toMatchObject({
        code: 'DROVER_ERR_STORE_CONFLICT',
      });
      expect(await b.update('assignments/c/etcd#0', { node: 'n2' }, r)).toBeGreaterThan(r);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('JetStream store on a three-server cluster (R3)', () => {
  it('replicates to 3 servers; a killed server stops nothing, and the state survives a restart of the whole cluster', async () => {
    const { startNatsCluster } = await import('../helpers/nats-cluster.js');
    const cluster = await startNatsCluster(3);
    const c1 = await cluster.connectAsCoordinator();
    // the cluster answers /healthz before it can place an R3 stream: retry the first open
    let s: Awaited<ReturnType<typeof openJetStreamStore>> | undefined;
    for (const until = Date.now() + 30_000; !s; ) {
      s = await openJetStreamStore({ nc: c1, bucket: 'drover-state', replicas: 3 }).catch((err) => {
        if (Date.now() > until) throw err;
        return undefined;
      });
      if (!s) await new Promise((r) => setTimeout(r, 500));
    }
    const jsm = await c1.jetstreamManager();
    const info = await jsm.streams.info('KV_drover-state');
    expect(info.config.num_replicas).toBe(3);
    const written: Array<[string, number]> = [];
    for (let i = 0; i < 20; i++) written.push([`nodes/n${i}`, await s.put(`nodes/n${i}`, { i })]);
    // one server dies: writes go on (2 of 3 is a quorum)
    await cluster.servers[0]!.stop();
    const during = await s.put('nodes/during', { killed: cluster.servers[0]!.name });
    expect(during).toBeGreaterThan(written.at(-1)![1]);
    cluster.servers[0]!.start();
    // the write made during the outage is readable through a fresh store once the server is back
    const fresh = await openJetStreamStore({ nc: c1, bucket: 'drover-state', replicas: 3 });
    // (its watch may first be served by the server that just came back and is still catching up)
    await waitFor(
      'the write made during the outage, read through a fresh store',
      async () => (await fresh.get('nodes/during'))?.value !== undefined,
      { timeoutMs: 15_000, intervalMs: 200 },
    );
    expect((await fresh.get('nodes/during'))?.value).toEqual({ killed: cluster.servers[0]!.name });
    await fresh.close();
    await s.close();
    // the whole cluster restarts (each server stopped as a restart does, SIGTERM): every
    // acknowledged write is there. (All three SIGKILLed within milliseconds of a write can lose
    // it: nats-server 2.9 acknowledges once a quorum holds it, before it reaches the disk.)
    await new Promise((r) => setTimeout(r, 500)); // server 0 catches up as a follower
    for (const srv of cluster.servers) await srv.stop('SIGTERM');
    for (const srv of cluster.servers) srv.start();
    let c2: NatsConnection | undefined;
    const up = Date.now() + 30_000;
    while (!c2) {
      c2 = await cluster.connectAsCoordinator().catch((err) => {
        if (Date.now() > up) throw err;
        return undefined;
      });
      if (!c2) await new Promise((r) => setTimeout(r, 250));
    }
    let again: Awaited<ReturnType<typeof openJetStreamStore>> | undefined;
    const deadline = Date.now() + 60_000;
    while (!again) {
      try {
        again = await openJetStreamStore({ nc: c2, bucket: 'drover-state', replicas: 3 });
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    try {
      for (const [k, rev] of written) expect((await again.get(k))?.revision).toBe(rev);
      // Not asserted: the write made while one server was down, after a restart of the whole
      // cluster. On a loaded machine nats-server 2.9.10 lost it once in CI (see
      // docs/architecture.md, "The replicated store"): a known gap, not hidden.
    } finally {
      await again.close();
    }
  }, 180_000);
});
