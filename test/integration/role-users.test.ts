import { statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lookupRunAs } from '../../agent/run-as.js';
import { Fleet, poolNodes } from '../helpers/fleet.js';

/**
 * Least privilege on the host, with real agents (process runtime), real etcd and real haproxy:
 * etcd runs as the `etcd` system user and haproxy as `haproxy`, read from /proc/<pid>/status, and
 * the instance's data and certificates belong to that user; a role that needs root (the API
 * server, here its stand-in) still runs as root.
 */
const TOPOLOGY = `apiVersion: drover.dev/v1
kind: Topology
metadata: { name: ru }
cluster:
  name: ru
  apiEndpoint: { mode: haproxy, port: 6443 }
roles:
  load-balancer: { replicas: 1, nodeSelector: { pool: lb } }
  etcd: { replicas: 1, nodeSelector: { pool: lb } }
  kube-apiserver: { replicas: 1, nodeSelector: { pool: control-plane } }
`;

/** The real, effective, saved and filesystem uids (and gids) of a process. */
async function ids(pid: number): Promise<{ uid: number[]; gid: number[] }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const field = (k: string) =>
    new RegExp(`^${k}:\\s+(.+)$`, 'm').exec(status)![1]!.trim().split(/\s+/).map(Number);
  return { uid: field('Uid'), gid: field('Gid') };
}

describe('roles run as their own system users (real agents, etcd, haproxy)', () => {
  let fleet: Fleet;
  beforeAll(async () => {
    fleet = await Fleet.start({
      subnet: '127.0.116',
      cluster: 'ru',
      nodes: [...poolNodes('lb', 'lb'), ...poolNodes('control-plane', 'cp-1')],
    });
    await fleet.applyTopology(TOPOLOGY);
    await fleet.converged(90_000);
  }, 150_000);
  afterAll(() => fleet?.close());

  it('etcd runs as etcd and haproxy as haproxy (every uid in /proc/<pid>/status), the API server as root', async () => {
    const etcdUser = lookupRunAs({ user: 'etcd', group: 'etcd' })!;
    const haproxyUser = lookupRunAs({ user: 'haproxy', group: 'haproxy' })!;
    expect(etcdUser.uid).toBeGreaterThan(0);
    expect(haproxyUser.uid).toBeGreaterThan(0);
    const roles = new Map(fleet.roles('lb').map((r) => [r.role, r.pid]));
    const etcd = await ids(roles.get('etcd')!);
    expect(etcd.uid).toEqual([etcdUser.uid, etcdUser.uid, etcdUser.uid, etcdUser.uid]);
    expect(etcd.gid).toEqual([etcdUser.gid, etcdUser.gid, etcdUser.gid, etcdUser.gid]);
    const lb = await ids(roles.get('load-balancer')!);
    expect(lb.uid).toEqual([haproxyUser.uid, haproxyUser.uid, haproxyUser.uid, haproxyUser.uid]);
    // the API server stand-in: root, as the catalog says (docs/security.md, what roles run as)
    const api = fleet.roles('cp-1').find((r) => r.role === 'kube-apiserver')!;
    expect((await ids(api.pid)).uid[0]).toBe(0);
  });

  it("etcd's data dir and its key files belong to etcd; the data dir is 0700", async () => {
    const etcdUser = lookupRunAs({ user: 'etcd', group: 'etcd' })!;
    const root = fleet.node('lb').rootDir;
    const data = join(root, 'var/lib/etcd/etcd-0-e1');
    const st = statSync(data);
    expect(st.uid).toBe(etcdUser.uid);
    expect(st.mode & 0o777).toBe(0o700);
    const key = statSync(join(root, 'etc/kubernetes/pki/etcd-0/etcd-server.key'));
    expect(key.uid).toBe(etcdUser.uid);
    expect(key.mode & 0o077).toBe(0);
  });
});
