// etcd snapshot figures (issue 18): the time to take, check and store a snapshot from a real
// 3-member etcd over mutual TLS (certificates from Drover's PKI, the coordinator's own etcd client
// certificate), and its size, for a given number of keys, beside `etcdctl snapshot save` on the
// same cluster (the tool an operator would otherwise run). Each size is timed over several runs.
//
// DROVER_BENCH_SNAPSHOT_KEYS (default "1000,20000") and DROVER_BENCH_SNAPSHOT_RUNS (default 5).
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DirSnapshotBlobs } from '../coordinator/etcd/snapshot-blobs.js';
import { SnapshotBook } from '../coordinator/etcd/snapshot-book.js';
import { renewingEtcdCredentials } from '../coordinator/etcd/transport.js';
import { ClusterPki } from '../coordinator/pki/index.js';
import { MemoryStore } from '../coordinator/store/index.js';
import { systemClock } from '../lib/clock.js';
import { silentLogger } from '../lib/logger.js';
import { startPkiEtcd } from '../test/helpers/etcd-tls.js';
import { issueViaCsr } from '../test/helpers/pki.js';
import { requireBinary, rmrf, tempDir } from '../test/helpers/proc.js';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = (x: number) => `${x.toFixed(0)} ms`;

/** Writes `n` keys of 256 bytes through etcd's JSON gateway, 64 at a time. */
async function fill(
  endpoint: string,
  tls: { ca: string; cert: string; key: string },
  n: number,
  from: number,
) {
  const { request } = await import('node:https');
  const put = (k: string) =>
    new Promise<void>((resolve, reject) => {
      const body = JSON.stringify({
        key: Buffer.from(k).toString('base64'),
        value: Buffer.alloc(256, 120).toString('base64'),
      });
      const r = request(
        `${endpoint}/v3/kv/put`,
        {
          method: 'POST',
          ca: tls.ca,
          cert: tls.cert,
          key: tls.key,
          headers: { 'content-type': 'application/json' },
        },
        (res) => {
          res.resume();
          res.on('end', () =>
            res.statusCode === 200 ? resolve() : reject(new Error(`put ${res.statusCode}`)),
          );
        },
      );
      r.on('error', reject);
      r.end(body);
    });
  for (let i = from; i < from + n; i += 64)
    await Promise.all(
      Array.from({ length: Math.min(64, from + n - i) }, (_, j) =>
        put(`/bench/key-${String(i + j).padStart(8, '0')}`),
      ),
    );
}

export async function run(): Promise<void> {
  const sizes = (process.env.DROVER_BENCH_SNAPSHOT_KEYS ?? '1000,20000').split(',').map(Number);
  const runs = Number(process.env.DROVER_BENCH_SNAPSHOT_RUNS ?? 5);
  const dir = tempDir('bench-snapshot');
  const pki = await ClusterPki.open({ dir: join(dir, 'pki'), clusterName: 'bench' });
  const c = await issueViaCsr(
    pki,
    'etcd-client',
    { id: 'cp', hostname: 'cp', addresses: [] },
    'kube-apiserver',
  );
  const etcd = await startPkiEtcd(pki, { caPem: c.caPem, certPem: c.certPem, keyPem: c.keyPem });
  const tls = await renewingEtcdCredentials(() => pki.etcdClientCredentials(), systemClock)();
  const files = { ca: join(dir, 'ca.crt'), cert: join(dir, 'c.crt'), key: join(dir, 'c.key') };
  writeFileSync(files.ca, tls.ca!);
  writeFileSync(files.cert, tls.cert!);
  writeFileSync(files.key, tls.key!, { mode: 0o600 });
  const book = new SnapshotBook({
    store: new MemoryStore(),
    blobs: new DirSnapshotBlobs(join(dir, 'data')),
    clusters: () => [{ cluster: 'bench', schedule: { every: 3600_000, keep: 1000, enabled: false } }],
    members: async () => ({ endpoints: etcd.members.map((m) => m.clientUrl), tls }),
    emit: () => {},
    clock: systemClock,
    log: silentLogger,
  });
  process.stdout.write(
    `etcd snapshots: 3-member etcd over mutual TLS on loopback, keys of 256 bytes, median of ${runs} runs\n`,
  );
  let written = 0;
  try {
    for (const n of sizes) {
      await fill(
        etcd.members[0]!.clientUrl,
        { ca: tls.ca!, cert: tls.cert!, key: tls.key! },
        n - written,
        written,
      );
      written = n;
      const ours: number[] = [];
      const theirs: number[] = [];
      let size = 0;
      for (let i = 0; i < runs; i++) {
        const t0 = performance.now();
        const rec = await book.save('bench', 'operator');
        ours.push(performance.now() - t0);
        size = rec.size;
        await book.delete(rec.id);
        const t1 = performance.now();
        const r = spawnSync(
          requireBinary('etcdctl'),
          [
            `--endpoints=${etcd.members[0]!.clientUrl}`,
            `--cacert=${files.ca}`,
            `--cert=${files.cert}`,
            `--key=${files.key}`,
            'snapshot',
            'save',
            join(dir, `etcdctl-${i}.db`),
          ],
          { env: { ...process.env, ETCDCTL_API: '3' }, encoding: 'utf8' },
        );
        theirs.push(performance.now() - t1);
        if (r.status !== 0) throw new Error(`etcdctl snapshot save: ${r.stderr}`);
      }
      process.stdout.write(
        `  ${n} keys: snapshot ${(size / 1024 ** 2).toFixed(1)} MiB; drover ${ms(median(ours))} (taken, checked, checksummed, stored, recorded) vs etcdctl snapshot save ${ms(median(theirs))} (${(median(ours) / median(theirs)).toFixed(2)}x)\n`,
      );
    }
  } finally {
    await etcd.stop();
    rmrf(dir);
  }
}
