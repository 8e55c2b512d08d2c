// REST API read latency on a real Engine (MemoryStore, recording bus) as the fleet grows: GET
// /v1/nodes, /v1/roles, /v1/assignments and /v1/status through app.inject() (no sockets, so the
// figures are the coordinator's own cost: auth, view building, JSON), plus the bytes each answer
// carries. These are what the dashboard polls every 3 s and `apply --wait` polls every 1 s.
import { performance } from 'node:perf_hooks';
import { echoTopology, startTestApi } from '../test/helpers/api.js';

const SIZES = (process.env.API_BENCH_NODES ?? '10,100,500').split(',').map(Number);
const ROUNDS = Number(process.env.API_BENCH_ROUNDS ?? 50);

export async function run(): Promise<void> {
  process.stdout.write(
    `fleet sizes ${SIZES.join(', ')}; replicas = nodes / 2; ${ROUNDS} requests per route after 5 warm-up\n`,
  );
  process.stdout.write(
    `${'nodes'.padEnd(6)} ${'route'.padEnd(18)} ${'mean ms'.padStart(8)} ${'p95 ms'.padStart(8)} ${'KiB'.padStart(8)}\n`,
  );
  for (const n of SIZES) {
    const t = await startTestApi();
    try {
      for (let i = 1; i <= n; i++)
        await t.register(`n${i}`, { address: `10.1.${Math.floor(i / 250)}.${i % 250}` });
      await t.app.inject({
        method: 'PUT',
        url: '/v1/topology',
        headers: t.auth(t.admin),
        payload: echoTopology(Math.max(1, Math.floor(n / 2))),
      });
      await t.settle();
      for (let i = 1; i <= n; i++) t.report(`n${i}`);
      for (const url of ['/v1/nodes', '/v1/roles', '/v1/assignments', '/v1/status']) {
        const times: number[] = [];
        let bytes = 0;
        for (let r = 0; r < ROUNDS + 5; r++) {
          const start = performance.now();
          const res = await t.app.inject({ method: 'GET', url, headers: t.auth(t.viewer) });
          const ms = performance.now() - start;
          if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${res.body}`);
          bytes = res.body.length;
          if (r >= 5) times.push(ms);
        }
        times.sort((a, b) => a - b);
        const mean = times.reduce((a, b) => a + b, 0) / times.length;
        const p95 = times[Math.floor(times.length * 0.95)]!;
        process.stdout.write(
          `${String(n).padEnd(6)} ${url.padEnd(18)} ${mean.toFixed(2).padStart(8)} ${p95.toFixed(2).padStart(8)} ${(bytes / 1024).toFixed(1).padStart(8)}\n`,
        );
      }
    } finally {
      await t.close();
    }
  }
}
