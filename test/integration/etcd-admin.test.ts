import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { EtcdGatewayAdmin as EtcdAdmin } from '../../coordinator/etcd/admin.js';
import { quorum, replacementKeepsQuorum } from '../../coordinator/etcd/quorum.js';
import { spawnLogged } from '../helpers/proc.js';
import { freePort, requireBinary, startEtcd, waitFor } from '../helpers/servers.js';

const run = promisify(execFile);

describe('etcd membership through the surviving members', () => {
  it('replaces a dead member: remove through survivors, add, start with state existing; data survives', async () => {
    const etcd = await startEtcd({ size: 3 });
    const etcdctl = requireBinary('etcdctl');
    const env = { ...process.env, ETCDCTL_API: '3' };
    await run(etcdctl, [`--endpoints=${etcd.endpoints}`, 'put', 'before', 'kept'], { env });
    const [m0, m1, dead] = etcd.members as [
      (typeof etcd.members)[0],
      (typeof etcd.members)[0],
      (typeof etcd.members)[0],
    ];
    await dead.kill();
    const admin = new EtcdAdmin([dead.clientUrl, m0.clientUrl, m1.clientUrl]);
    const members = await admin.memberList();
    expect(members).toHaveLength(3);
    // The survivors report unhealthy until they have elected a leader without the dead member.
    const healthy = await waitFor('survivors healthy', async () => {
      const h = await admin.healthyEndpoints(members.flatMap((m) => m.clientURLs));
      return h.length === 2 ? h : undefined;
    });
    expect(healthy.sort()).toEqual([m0.clientUrl, m1.clientUrl].sort());
    expect(replacementKeepsQuorum(3, healthy.length).ok).toBe(true);
    const deadInfo = members.find((m) => m.name === dead.name)!;
    await admin.memberRemove(deadInfo.id, healthy);
    const client = await freePort();
    const peer = await freePort();
    const peerUrl = `http://127.0.0.1:${peer}`;
    const added = await admin.memberAdd([peerUrl], healthy);
    expect(added.id).not.toBe('');
    const after = await admin.memberList(healthy);
    const initialCluster = after.map((m) => `${m.name || 'm3'}=${m.peerURLs[0]}`).join(',');
    const p = spawnLogged(requireBinary('etcd'), [
      '--name=m3',
      `--data-dir=${join(etcd.dir, 'm3')}`,
      `--listen-client-urls=http://127.0.0.1:${client}`,
      `--advertise-client-urls=http://127.0.0.1:${client}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=${initialCluster}`,
      '--initial-cluster-state=existing',
      '--log-level=error',
    ]);
    try {
      await waitFor(
        'new member healthy',
        async () => (await admin.healthyEndpoints([`http://127.0.0.1:${client}`])).length === 1,
        { timeoutMs: 20_000 },
      );
      const { stdout } = await run(
        etcdctl,
        [`--endpoints=http://127.0.0.1:${client}`, 'get', 'before', '--print-value-only'],
        { env },
      );
      expect(stdout.trim()).toBe('kept');
      const eps = `${m0.clientUrl},${m1.clientUrl},http://127.0.0.1:${client}`;
      const health = await run(etcdctl, [`--endpoints=${eps}`, 'endpoint', 'health'], { env }).catch(
        (e) => e as { stdout: string; stderr: string },
      );
      expect(`${health.stdout}${health.stderr}`.match(/is healthy/g)).toHaveLength(3);
    } finally {
      p.child.kill('SIGKILL');
      await p.exited;
    }
  });

  it('refuses changes that would break quorum', () => {
    expect(quorum(3)).toBe(2);
    expect(quorum(5)).toBe(3);
    expect(replacementKeepsQuorum(3, 1).ok).toBe(false);
    expect(replacementKeepsQuorum(3, 1).reason).toMatch(/quorum/);
    expect(replacementKeepsQuorum(5, 3).ok).toBe(true);
    expect(replacementKeepsQuorum(5, 2).ok).toBe(false);
    expect(replacementKeepsQuorum(1, 0).ok).toBe(false);
  });

  it('reports when no endpoint answers', async () => {
    const admin = new EtcdAdmin([`http://127.0.0.1:${await freePort()}`], {}, 500);
    await expect(admin.memberList()).rejects.toMatchObject({ code: 'DROVER_ERR_ETCD_UNAVAILABLE' });
  });
});
