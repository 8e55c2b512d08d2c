import { existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { labProcs, labUp, readState } from '../../lab/index.js';
import { rmrf, tempDir } from '../helpers/proc.js';

const DIST = new URL('../../dist/', import.meta.url).pathname;

/**
 * A start that fails half-way must not leave a half-started lab: here the coordinator exits at
 * once (a stand-in bundle that fails), after the real nats-server already runs.
 */
describe('lab up: a failed start stops what had started', () => {
  it('the coordinator exits during start-up: the error quotes its log, nats-server is stopped, nothing is left', async () => {
    const root = tempDir('lab-start');
    try {
      const dist = join(root, 'dist');
      mkdirSync(dist);
      for (const b of ['drover-agent.mjs', 'drover-standin.mjs']) symlinkSync(join(DIST, b), join(dist, b));
      writeFileSync(
        join(dist, 'drover-coordinator.mjs'),
        "process.stderr.write('drover-coordinator: cannot start: the store is corrupt (simulated)\\n'); process.exit(1);\n",
      );
      const dir = join(root, 'lab');
      const topology = new URL('../../examples/ha.yaml', import.meta.url).pathname;
      const err = await labUp({
        dir,
        distDir: dist,
        topology,
        apiPort: 0,
        natsPort: 0,
        subnet: '127.0.89',
      }).then(
        () => undefined,
        (e: unknown) => e as { code?: string; message: string },
      );
      expect(err?.code).toBe('DROVER_ERR_LAB_START');
      expect(err?.message).toContain('the coordinator exited during start-up');
      expect(err?.message).toContain('the store is corrupt (simulated)');
      // lab.json is gone with everything else; the logs stay for the post-mortem
      expect(existsSync(join(dir, 'lab.json'))).toBe(false);
      expect(existsSync(join(dir, 'logs', 'coordinator.log'))).toBe(true);
      expect(existsSync(join(dir, 'logs', 'nats-server.log'))).toBe(true);
      const ghost = { ...fakeState(dir) };
      expect((await labProcs(ghost)).map((p) => p.pid)).toEqual([]);
    } finally {
      rmrf(root);
    }
  }, 60_000);
});

/** A minimal state naming the lab dir, so labProcs scans it for anything left running. */
function fakeState(dir: string): Parameters<typeof labProcs>[0] {
  try {
    return readState(dir);
  } catch {
    return {
      version: 1,
      dir,
      createdAt: '',
      mode: 'loopback',
      subnet: '127.0.89',
      distDir: '',
      nodeBinary: '',
      topologyFile: '',
      timings: {},
      joinToken: '',
      nats: { url: '', monitorUrl: '', config: '', log: '' },
      coordinator: { apiUrl: '', dataDir: '', config: '', log: '', adminTokenFile: '', cliConfig: '' },
      nodes: [],
    };
  }
}
