// The certificate book: the newest leaf per holder and profile, the CAs, `renewAt` as the agent
// renews (lib/cert-renewal.ts), and the CA alert 30 days before expiry (once per CA certificate).
import { describe, expect, it } from 'vitest';
import { run } from '../../cli/run.js';
import type { EventInput } from '../../coordinator/events.js';
import { CertificateBook, renewAt } from '../../coordinator/pki/cert-book.js';
import { MemoryStore } from '../../coordinator/store/index.js';
import { silentLogger } from '../../lib/logger.js';
import { startTestApi } from '../helpers/api.js';

const DAY = 86_400_000;
const NOW = Date.parse('2026-12-04T00:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();

function book(caNotAfter: number) {
  const events: EventInput[] = [];
  const store = new MemoryStore();
  const b = new CertificateBook({
    store,
    cas: () => [
      { ca: 'etcd', notBefore: iso(caNotAfter - 3650 * DAY), notAfter: iso(caNotAfter), serialNumber: '01' },
    ],
    emit: (e) => void events.push(e),
    log: silentLogger,
  });
  return { b, events, store };
}

const leaf = (o: Partial<Parameters<CertificateBook['issued']>[0]> = {}) => ({
  cluster: 'c',
  nodeId: 'n1',
  instanceId: 'etcd#0',
  profile: 'etcd-server',
  serialNumber: 'aa',
  notBefore: iso(NOW),
  notAfter: iso(NOW + 365 * DAY),
  ...o,
});

describe('the certificate book', () => {
  it('keeps the newest leaf per holder and profile, survives a restart, forgets gone holders', async () => {
    const { b, store } = book(NOW + 3000 * DAY);
    await b.issued(leaf());
    await b.issued(leaf({ serialNumber: 'bb', notAfter: iso(NOW + 400 * DAY) }));
    await b.issued(leaf({ profile: 'etcd-peer', serialNumber: 'cc' }));
    const leaves = () => b.rows().filter((r) => r.kind === 'leaf');
    expect(leaves().map((r) => `${r.profile}:${r.serialNumber}`)).toEqual(['etcd-peer:cc', 'etcd-server:bb']);
    const again = new CertificateBook({ store, cas: () => [], emit: () => {}, log: silentLogger });
    await again.load();
    expect(again.rows()).toEqual(leaves());
    await again.forget((l) => l.profile !== 'etcd-peer');
    expect(again.rows().map((r) => r.profile)).toEqual(['etcd-server']);
    expect(await store.list('certificates/')).toHaveLength(1);
  });

  it('renewAt: 30 days before expiry, or the last third of a short lifetime', () => {
    expect(renewAt(iso(NOW), iso(NOW + 365 * DAY))).toBe(iso(NOW + 335 * DAY));
    // as issued: notBefore back-dated 5 minutes, which does not count towards the lifetime
    expect(renewAt(iso(NOW - 5 * 60_000), iso(NOW + 3 * 3600_000))).toBe(iso(NOW + 2 * 3600_000));
  });

  it('a CA within 30 days of expiry raises pki.ca-expiring once; an expired one is an error; a far one nothing', () => {
    const far = book(NOW + 31 * DAY);
    expect(far.b.checkCas(NOW)).toEqual([]);
    expect(far.events).toEqual([]);
    const near = book(NOW + 10 * DAY);
    expect(near.b.checkCas(NOW)).toEqual(['etcd']);
    expect(near.b.checkCas(NOW + DAY)).toEqual(['etcd']);
    expect(near.events).toHaveLength(1);
    expect(near.events[0]).toMatchObject({ kind: 'pki.ca-expiring', severity: 'warning' });
    expect(near.events[0]!.message).toMatch(
      /the etcd CA certificate expires at .* in 10 day\(s\): rotate it/,
    );
    const gone = book(NOW - DAY);
    gone.b.checkCas(NOW);
    expect(gone.events[0]).toMatchObject({ kind: 'pki.ca-expiring', severity: 'error' });
  });

  it('GET /v1/certificates for viewers; a coordinator without the book says so', async () => {
    const t = await startTestApi();
    const r = await t.app.inject({ method: 'GET', url: '/v1/certificates', headers: t.auth(t.viewer) });
    expect(r.statusCode).toBe(503);
    expect(r.json()).toMatchObject({ code: 'DROVER_ERR_NOT_READY' });
    await t.close();
    const { b } = book(NOW + 3000 * DAY);
    await b.issued(leaf({ notAfter: iso(Date.now() + 100 * DAY), notBefore: iso(Date.now() - DAY) }));
    const u = await startTestApi({ certificates: b });
    const list = await u.app.inject({ method: 'GET', url: '/v1/certificates', headers: u.auth(u.viewer) });
    expect(list.statusCode).toBe(200);
    expect(list.json().items.map((i: { profile: string }) => i.profile)).toEqual(['ca:etcd', 'etcd-server']);
    // and the CLI's table of them
    const url = await u.app.listen({ host: '127.0.0.1', port: 0 });
    let out = '';
    const code = await run(['get', 'certificates'], {
      out: (s) => {
        out += s;
      },
      err: () => {},
      env: { HOME: '/nonexistent', DROVER_URL: url, DROVER_TOKEN: u.viewer },
    });
    expect(code).toBe(0);
    const lines = out.trim().split('\n');
    expect(lines[0]).toMatch(
      /^KIND\s+CLUSTER\s+NODE\s+INSTANCE\s+PROFILE\s+EXPIRES\s+EXPIRES IN\s+RENEW AT$/,
    );
    expect(lines[1]).toMatch(/^ca\s+-\s+-\s+-\s+ca:etcd\s+\d{4}-\d\d-\d\d\s+\d+d/);
    expect(lines[2]).toMatch(/^leaf\s+c\s+n1\s+etcd#0\s+etcd-server\s+\d{4}-\d\d-\d\d\s+(99|100)d\s+\d{4}/);
    await u.close();
  });
});
