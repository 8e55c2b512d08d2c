// /v1/etcd/snapshots through the real API and engine (in-process, app.inject): who may do what
// (list: viewer; take, delete: operator; the file: admin), the file and its checksum header, and
// what bad input gets. The etcd side is a narrow port (`take`); files are real, in a temp dir.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { Value } from '@sinclair/typebox/value';
import { afterEach, describe, expect, it } from 'vitest';
import { run } from '../../cli/run.js';
import { DirSnapshotBlobs } from '../../coordinator/etcd/snapshot-blobs.js';
import { SnapshotBook } from '../../coordinator/etcd/snapshot-book.js';
import { etcdClusters } from '../../coordinator/etcd/snapshot-sources.js';
import { systemClock } from '../../lib/clock.js';
import { silentLogger } from '../../lib/logger.js';
import { EtcdSnapshot } from '../../protocol/rest/schemas.js';
import { startTestApi, type TestApi } from '../helpers/api.js';
import { rmrf, tempDir } from '../helpers/proc.js';

const TOPOLOGY = `apiVersion: drover.dev/v1
kind: Topology
metadata: { name: t }
cluster: { name: t }
roles:
  etcd: { replicas: 1 }
`;

let t: TestApi | undefined;
let dir: string | undefined;
afterEach(async () => {
  await t?.close();
  if (dir) rmrf(dir);
});

async function api(o: { withBook?: boolean } = {}) {
  dir = tempDir('api-snap');
  const d = dir;
  t = await startTestApi({
    ...(o.withBook === false
      ? {}
      : {
          snapshots: (engine, store) =>
            new SnapshotBook({
              store,
              blobs: new DirSnapshotBlobs(d),
              clusters: () => etcdClusters(engine.listTopologies()),
              members: async () => ({ endpoints: ['https://10.0.0.1:2379'], tls: {} }),
              emit: (e) => void engine.events.emit(e),
              clock: systemClock,
              log: silentLogger,
              take: async (endpoints) => {
                const db = Buffer.from('a database');
                const bytes = Buffer.concat([db, createHash('sha256').update(db).digest()]);
                return {
                  clusterId: '42',
                  memberId: '7',
                  revision: 9,
                  version: '3.4.23',
                  dbSize: db.length,
                  endpoint: endpoints[0]!,
                  bytes,
                  sha256: createHash('sha256').update(bytes).digest('hex'),
                };
              },
            }),
        }),
  });
  const tt = t;
  const call = async (
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    url: string,
    token: string,
    payload?: string,
  ) => {
    const res = await tt.app.inject({
      method,
      url,
      headers: { ...tt.auth(token), ...(payload ? { 'content-type': 'application/yaml' } : {}) },
      ...(payload ? { payload } : {}),
    });
    let json: { code?: string; message?: string; data?: unknown; items?: unknown[] } | undefined;
    try {
      json = res.json();
    } catch {}
    return { status: res.statusCode, json, res };
  };
  return { t: tt, call, dir: d };
}

describe('/v1/etcd/snapshots', () => {
  it('an operator takes one; a viewer lists it; only an admin gets the file, with its checksum', async () => {
    const { t, call } = await api();
    expect((await call('PUT', '/v1/topology', t.admin, TOPOLOGY)).status).toBe(200);
    expect((await call('POST', '/v1/etcd/snapshots', t.viewer)).status).toBe(403);
    const saved = await call('POST', '/v1/etcd/snapshots', t.operator);
    expect(saved.status, JSON.stringify(saved.json)).toBe(200);
    const rec = saved.json!.data as EtcdSnapshot;
    expect(Value.Check(EtcdSnapshot, rec)).toBe(true);
    expect(rec).toMatchObject({
      cluster: 't',
      trigger: 'operator',
      by: 'ops',
      revision: 9,
      etcdClusterId: '42',
    });
    const list = await call('GET', '/v1/etcd/snapshots', t.viewer);
    expect(list.json!.items).toEqual([rec]);
    expect((await call('GET', '/v1/etcd/snapshots?cluster=other', t.viewer)).json!.items).toEqual([]);
    expect((await call('GET', `/v1/etcd/snapshots/${rec.id}`, t.viewer)).status).toBe(403);
    expect((await call('GET', `/v1/etcd/snapshots/${rec.id}`, t.operator)).status).toBe(403);
    const file = await call('GET', `/v1/etcd/snapshots/${rec.id}`, t.admin);
    expect(file.status).toBe(200);
    expect(file.res.headers['content-type']).toBe('application/octet-stream');
    expect(file.res.headers['x-drover-sha256']).toBe(rec.sha256);
    expect(createHash('sha256').update(file.res.rawPayload).digest('hex')).toBe(rec.sha256);
    expect(t.engine.events.list({ kind: 'etcd.snapshot-saved' })).toHaveLength(1);
  });

  it('bad input: an unknown cluster or id, a bad id, a damaged file; deleting', async () => {
    const { t, call, dir } = await api();
    expect((await call('PUT', '/v1/topology', t.admin, TOPOLOGY)).status).toBe(200);
    const unknown = await call('POST', '/v1/etcd/snapshots?cluster=nope', t.operator);
    expect(unknown.status).toBe(404);
    expect(unknown.json).toMatchObject({ code: 'DROVER_ERR_TOPOLOGY_NOT_FOUND' });
    const missing = await call('GET', '/v1/etcd/snapshots/t-nope', t.admin);
    expect(missing.status).toBe(404);
    expect(missing.json).toMatchObject({ code: 'DROVER_ERR_SNAPSHOT_NOT_FOUND' });
    expect(missing.json!.message).toMatch(/drover etcd snapshot list/);
    expect((await call('GET', '/v1/etcd/snapshots/..%2Fetc', t.admin)).status).toBe(400);
    const rec = (await call('POST', '/v1/etcd/snapshots', t.operator)).json!.data as EtcdSnapshot;
    writeFileSync(`${dir}/etcd-snapshots/${rec.id}.db`, 'tampered');
    const damaged = await call('GET', `/v1/etcd/snapshots/${rec.id}`, t.admin);
    expect(damaged.status).toBe(409);
    expect(damaged.json).toMatchObject({ code: 'DROVER_ERR_SNAPSHOT_DAMAGED' });
    expect((await call('DELETE', `/v1/etcd/snapshots/${rec.id}`, t.viewer)).status).toBe(403);
    const del = await call('DELETE', `/v1/etcd/snapshots/${rec.id}`, t.operator);
    expect(del.status).toBe(200);
    expect((await call('GET', '/v1/etcd/snapshots', t.viewer)).json!.items).toEqual([]);
    expect((await call('DELETE', `/v1/etcd/snapshots/${rec.id}`, t.operator)).status).toBe(404);
  });

  it('a cluster without etcd is refused with the reason; a coordinator without the book says so', async () => {
    const { t, call } = await api();
    expect(
      (
        await call(
          'PUT',
          '/v1/topology',
          t.admin,
          'apiVersion: drover.dev/v1\nkind: Topology\nmetadata: { name: t }\ncluster: { name: t }\ncustomRoles:\n  web: { command: /bin/sleep, args: ["9"] }\nroles:\n  web: { replicas: 1 }\n',
        )
      ).status,
    ).toBe(200);
    const r = await call('POST', '/v1/etcd/snapshots', t.operator);
    expect(r.status).toBe(400);
    expect(r.json!.message).toBe('cluster "t" runs no etcd: nothing to snapshot');
    await t.close();
    const none = await api({ withBook: false });
    const n = await none.call('GET', '/v1/etcd/snapshots', none.t.viewer);
    expect(n.status).toBe(503);
    expect(n.json).toMatchObject({ code: 'DROVER_ERR_NOT_READY' });
  });
});

describe('drover etcd snapshot (the CLI against the API on a real socket)', () => {
  it('save, list, get to stdout and to a file (checked), delete; bad input named', async () => {
    const { t, call } = await api();
    expect((await call('PUT', '/v1/topology', t.admin, TOPOLOGY)).status).toBe(200);
    const url = await t.app.listen({ host: '127.0.0.1', port: 0 });
    const cli = async (argv: string[], token = t.admin, o: { bytes?: boolean } = {}) => {
      let stdout = '';
      let stderr = '';
      const chunks: Uint8Array[] = [];
      const code = await run(argv, {
        out: (s) => {
          stdout += s;
        },
        err: (s) => {
          stderr += s;
        },
        env: { HOME: '/nonexistent', DROVER_URL: url, DROVER_TOKEN: token },
        ...(o.bytes ? { outBytes: (b: Uint8Array) => void chunks.push(b) } : {}),
      });
      return { code, stdout, stderr, bytes: Buffer.concat(chunks) };
    };
    const saved = await cli(['etcd', 'snapshot', 'save', '-o', 'json'], t.operator);
    expect(saved.code, saved.stderr).toBe(0);
    const rec = JSON.parse(saved.stdout) as EtcdSnapshot;
    const list = await cli(['etcd', 'snapshot', 'list'], t.viewer);
    expect(list.stdout).toMatch(
      new RegExp(
        `^ID\\s+CLUSTER\\s+REVISION\\s+SIZE\\s+AGE\\s+TRIGGER\\s+SHA256\\n${rec.id}\\s+t\\s+9\\s+42 B\\s+\\d+s\\s+operator\\s+${rec.sha256.slice(0, 12)}…\\n$`,
      ),
    );
    // to stdout only when it is not a terminal
    const tty = await cli(['etcd', 'snapshot', 'get', rec.id]);
    expect(tty.code).toBe(2);
    expect(tty.stderr).toMatch(/a snapshot is binary: not written to a terminal/);
    const piped = await cli(['etcd', 'snapshot', 'get', rec.id], t.admin, { bytes: true });
    expect(piped.code, piped.stderr).toBe(0);
    expect(createHash('sha256').update(piped.bytes).digest('hex')).toBe(rec.sha256);
    const file = `${tempDir('snap-cli')}/s.db`;
    const toFile = await cli(['etcd', 'snapshot', 'get', rec.id, '-f', file]);
    expect(toFile.code, toFile.stderr).toBe(0);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(createHash('sha256').update(readFileSync(file)).digest('hex')).toBe(rec.sha256);
    const again = await cli(['etcd', 'snapshot', 'get', rec.id, '-f', file]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/exists; nothing was written/);
    // a viewer may not export one
    const viewer = await cli(['etcd', 'snapshot', 'get', rec.id, '-f', `${file}.2`], t.viewer);
    expect(viewer.code).toBe(4);
    expect(existsSync(`${file}.2`)).toBe(false);
    expect((await cli(['etcd', 'snapshot', 'delete', rec.id])).code).toBe(2);
    const del = await cli(['etcd', 'snapshot', 'delete', rec.id, '--yes'], t.operator);
    expect(del.code, del.stderr).toBe(0);
    const gone = await cli(['etcd', 'snapshot', 'get', rec.id, '-f', `${file}.3`]);
    expect(gone.code).toBe(3);
    expect(gone.stderr).toMatch(/no etcd snapshot with id/);
    expect((await cli(['etcd', 'backup'])).code).toBe(2);
  });
});
