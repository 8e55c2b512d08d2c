import { execFile } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { promisify } from 'node:util';
import { connect as natsConnect, StringCodec } from 'nats';
import { describe, expect, it } from 'vitest';
import { missingBinaryMessage } from '../helpers/proc.js';
import { freePort, requireBinary, startEtcd, startHaproxy, startNats } from '../helpers/servers.js';

const run = promisify(execFile);

describe('test harness: real servers', () => {
  it('nats-server with JetStream: publish/subscribe and request/reply', async () => {
    const nats = await startNats();
    // the test bus runs Drover's auth and TLS: no credentials, no connection
    await expect(natsConnect({ servers: nats.url, tls: { caFile: nats.caFile } })).rejects.toThrow(
      /Authorization Violation/i,
    );
    const nc = await nats.connectAs({ coordinator: true });
    try {
      const sc = StringCodec();
      const sub = nc.subscribe('t.echo');
      (async () => {
        for await (const m of sub) m.respond(sc.encode(`echo:${sc.decode(m.data)}`));
      })();
      const got: string[] = [];
      const ps = nc.subscribe('t.pub', { max: 1 });
      const done = (async () => {
        for await (const m of ps) got.push(sc.decode(m.data));
      })();
      nc.publish('t.pub', sc.encode('hello'));
      await done;
      expect(got).toEqual(['hello']);
      const r = await nc.request('t.echo', sc.encode('ping'), { timeout: 2000 });
      expect(sc.decode(r.data)).toBe('echo:ping');
      const jsm = await nc.jetstreamManager();
      const info = await jsm.getAccountInfo();
      expect(info.limits).toBeDefined();
    } finally {
      await nc.close();
    }
  });

  it('etcd 3-member cluster: etcdctl put on one member, get on another', async () => {
    const etcd = await startEtcd({ size: 3 });
    expect(etcd.members).toHaveLength(3);
    const etcdctl = requireBinary('etcdctl');
    const env = { ...process.env, ETCDCTL_API: '3' };
    await run(etcdctl, [`--endpoints=${etcd.members[0]!.clientUrl}`, 'put', 'drover/k', 'v1'], { env });
    const { stdout } = await run(
      etcdctl,
      [`--endpoints=${etcd.members[2]!.clientUrl}`, 'get', 'drover/k', '--print-value-only'],
      { env },
    );
    expect(stdout.trim()).toBe('v1');
    const list = await run(etcdctl, [`--endpoints=${etcd.endpoints}`, 'member', 'list', '-w', 'json'], {
      env,
    });
    expect((JSON.parse(list.stdout) as { members: unknown[] }).members).toHaveLength(3);
  });

  it('etcd single member', async () => {
    const etcd = await startEtcd();
    const r = await fetch(`${etcd.members[0]!.clientUrl}/health`);
    expect(((await r.json()) as { health: string }).health).toBe('true');
  });

  it('haproxy forwards TCP to a backend started by the test', async () => {
    // haproxy's health checks close with a reset: a backend socket must expect ECONNRESET
    const backend = createServer((s) => {
      s.on('error', () => {});
      s.end('from-backend\n');
    });
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
    const bport = (backend.address() as { port: number }).port;
    const fport = await freePort();
    await startHaproxy(
      `global\n  maxconn 100\ndefaults\n  mode tcp\n  timeout connect 2s\n  timeout client 5s\n  timeout server 5s\nfrontend fe\n  bind 127.0.0.1:${fport}\n  default_backend be\nbackend be\n  balance roundrobin\n  server b1 127.0.0.1:${bport} check inter 500 fall 1 rise 2\n`,
      { waitPort: fport },
    );
    const reply = await new Promise<string>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: fport });
      let data = '';
      s.on('data', (d) => (data += d.toString()));
      s.on('end', () => resolve(data));
      s.on('error', reject);
    });
    backend.close();
    expect(reply).toBe('from-backend\n');
  });

  it('names the Debian package when a binary is missing', () => {
    expect(() => requireBinary('definitely-not-a-drover-binary')).toThrow(/apt-get install/);
    expect(missingBinaryMessage('etcd')).toContain('apt-get install -y etcd-server');
    expect(missingBinaryMessage('etcdctl')).toContain('etcd-client');
    expect(missingBinaryMessage('nats-server')).toContain('apt-get install -y nats-server');
  });
});
