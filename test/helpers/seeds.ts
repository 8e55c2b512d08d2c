/**
 * Helpers for the seed-scenario tests: the REST API on a real Engine (as test/helpers/api.ts) but
 * with a cluster PKI, and an in-process run of the `drover` CLI that captures its output.
 */

import { run } from '../../cli/run.js';
import { buildApi } from '../../coordinator/api/index.js';
import { ClusterPki } from '../../coordinator/pki/index.js';
import { silentLogger } from '../../lib/logger.js';
import { startTestApi, type TestApi } from './api.js';
import { autoCleanup, rmrf, tempDir } from './proc.js';

export interface SeedApi extends TestApi {
  pki: ClusterPki;
}

/** startTestApi() whose app also has a ClusterPki in a fresh directory. */
export async function startSeedApi(o: { pki?: boolean } = {}): Promise<SeedApi> {
  const t = await startTestApi();
  const dir = tempDir('seed-pki');
  autoCleanup(async () => rmrf(dir));
  const pki = await ClusterPki.open({ dir, clusterName: 'test' });
  await t.app.close();
  const app = buildApi({
    engine: t.engine,
    tokens: t.tokens,
    logger: silentLogger,
    store: t.store,
    purge: t.purge,
    natsConnected: () => true,
    ...(o.pki === false ? {} : { pki }),
  });
  await app.ready();
  return {
    ...t,
    app,
    pki,
    close: async () => {
      await app.close();
      await t.close();
    },
  };
}

/** Runs the CLI in this process; returns its exit code and what it wrote. */
export async function droverCli(
  argv: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await run(argv, {
    out: (t) => {
      stdout += t;
    },
    err: (t) => {
      stderr += t;
    },
    env: { HOME: '/nonexistent', ...env },
  });
  return { code, stdout, stderr };
}
