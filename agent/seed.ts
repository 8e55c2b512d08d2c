/**
 * Seeding an instance's data from an etcd snapshot (InstanceSpec.seed, `drover etcd restore`):
 * before the instance first starts, while its `dataPath` does not exist, the agent fetches the
 * snapshot from the coordinator chunk by chunk, checks its size and SHA-256 against the signed
 * plan, runs the first restore tool it has into a scratch directory beside `dataPath`, and renames
 * the result into place. An interrupted seed leaves no `dataPath`, so the next start does it again;
 * a finished one is never redone (a restart, a re-sent plan).
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { execa } from 'execa';
import type { Logger } from 'pino';
import { writeFileAtomic } from '../lib/atomic-file.js';
import { isExecutableFile } from '../lib/k8s-bins.js';
import type { InstanceSpec, PlanSeed, SnapshotChunkReply, SnapshotChunkRequest } from '../protocol/index.js';
import { AgentError } from './errors.js';
import { findBinary } from './facts.js';
import { filePathUnderRoot } from './root-path.js';

export const SNAPSHOT_PLACEHOLDER = '@SNAPSHOT@';
export const TARGET_PLACEHOLDER = '@TARGET@';

export type ChunkFetch = (
  req: Omit<SnapshotChunkRequest, 'v' | 'type' | 'nodeId'>,
) => Promise<SnapshotChunkReply>;

export interface SeederOptions {
  /** asks the coordinator for one chunk; undefined while the agent is not connected */
  fetch: () => ChunkFetch | undefined;
  /** the agent's root dir: plan paths are under it */
  rootDir: string;
  /** `${DROVER_ROOT}` → the root dir, in tool names */
  expand: (s: string) => string;
  /** the agent's own data dir: the downloaded file waits under `<dataDir>/seeds` (0700) */
  dataDir: string;
  logger: Logger;
  /** finds a tool (default: PATH, then the sbin dirs) */
  which?: (command: string) => string | undefined;
  /** how long a restore tool may run; default 10 minutes */
  toolTimeoutMs?: number;
}

const seedError = (message: string) => new AgentError('DROVER_ERR_SEED', message);

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

export class SnapshotSeeder {
  constructor(private readonly o: SeederOptions) {}

  /**
   * Seeds `spec` when its plan says so and its data path is not there yet. Returns what it did:
   * `seeded`, `present` (the data path exists: nothing to do) or `none` (no seed in the plan).
   */
  async ensure(spec: InstanceSpec): Promise<'seeded' | 'present' | 'none'> {
    const seed = spec.seed;
    if (!seed) return 'none';
    if (!(spec.dataPaths ?? []).includes(seed.dataPath))
      throw seedError(
        `${spec.id}: the seed's data path ${seed.dataPath} is not one of the instance's data paths`,
      );
    const target = filePathUnderRoot(this.o.rootDir, seed.dataPath);
    if (await exists(target)) return 'present';
    const key = `${spec.id}@${spec.epoch}`;
    const done = (await this.ledger())[key];
    if (done)
      throw seedError(
        `${spec.id}: its data dir ${seed.dataPath} is gone, but it was restored from etcd snapshot ${done} already; restoring it again would start a second, stale cluster beside the one it rejoined. Replace the member instead (\`drover repair etcd --member ${spec.id}\`)`,
      );
    const log = this.o.logger.child({ instance: spec.id, snapshot: seed.snapshotId });
    const tool = this.pickTool(spec, seed);
    const file = await this.download(spec.id, seed, log);
    const scratch = `${target}.restoring`;
    try {
      await rm(scratch, { recursive: true, force: true });
      await mkdir(dirname(target), { recursive: true });
      const fill = (a: string) =>
        a.split(SNAPSHOT_PLACEHOLDER).join(file).split(TARGET_PLACEHOLDER).join(scratch);
      const r = await execa(tool.path, tool.args.map(fill), {
        reject: false,
        all: true,
        stdin: 'ignore',
        timeout: this.o.toolTimeoutMs ?? 600_000,
        env: { ...process.env, ...(tool.env ?? {}) },
      });
      if (r.exitCode !== 0)
        throw seedError(
          `${spec.id}: ${tool.command} snapshot restore of ${seed.snapshotId} failed (${r.timedOut ? 'timed out' : `exit ${r.exitCode ?? r.signal}`}): ${(r.all ?? '').slice(-2000)}`,
        );
      await rename(scratch, target);
      await this.remember(key, seed.snapshotId);
      log.info({ tool: tool.command, target }, 'instance data restored from the etcd snapshot');
      return 'seeded';
    } catch (err) {
      await rm(scratch, { recursive: true, force: true }).catch(() => {});
      throw err;
    } finally {
      await rm(file, { force: true }).catch(() => {});
    }
  }

  /** instance@epoch → the snapshot it was seeded from, in `<dataDir>/seeded.json` */
  private async ledger(): Promise<Record<string, string>> {
    try {
      const v = JSON.parse(await readFile(join(this.o.dataDir, 'seeded.json'), 'utf8')) as unknown;
      return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, string>) : {};
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw seedError(
        `the seed ledger ${join(this.o.dataDir, 'seeded.json')} is unreadable: ${(err as Error).message}`,
      );
    }
  }

  private async remember(key: string, snapshotId: string): Promise<void> {
    const l = await this.ledger();
    l[key] = snapshotId;
    await writeFileAtomic(join(this.o.dataDir, 'seeded.json'), JSON.stringify(l), 0o600);
  }

  /**
   * The restore tool: first one installed beside the binary the instance runs (the etcdutl or
   * etcdctl of the same etcd build), then the first one on PATH, in the plan's order.
   */
  private pickTool(spec: InstanceSpec, seed: PlanSeed): PlanSeed['tools'][number] & { path: string } {
    const which = this.o.which ?? ((c: string) => findBinary(c));
    const runs = this.o.expand(spec.run.command);
    if (isAbsolute(runs))
      for (const t of seed.tools) {
        const beside = join(dirname(runs), basename(t.command));
        if (isExecutableFile(beside)) return { ...t, path: beside };
      }
    for (const t of seed.tools) {
      const cmd = this.o.expand(t.command);
      const path = isAbsolute(cmd) ? (isExecutableFile(cmd) ? cmd : undefined) : which(cmd);
      if (path) return { ...t, path };
    }
    throw seedError(
      `${spec.id}: none of the restore tools is installed on this host (${seed.tools.map((t) => t.command).join(', ')})`,
    );
  }

  /** The snapshot, chunk by chunk, into `<dataDir>/seeds/<id>.db` (0600), checked as it comes. */
  private async download(id: string, seed: PlanSeed, log: Logger): Promise<string> {
    const fetch = this.o.fetch();
    if (!fetch) throw seedError(`${id}: cannot fetch etcd snapshot ${seed.snapshotId}: not connected`);
    const dir = join(this.o.dataDir, 'seeds');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const file = join(dir, `${seed.snapshotId}.db`);
    const hash = createHash('sha256');
    const fh = await open(file, 'w', 0o600);
    let offset = 0;
    try {
      while (offset < seed.size) {
        const r = await fetch({ instanceId: id, snapshotId: seed.snapshotId, offset });
        if (!r.ok)
          throw seedError(
            `${id}: the coordinator refused chunk ${offset} of etcd snapshot ${seed.snapshotId}: ${r.error?.code ?? 'error'}: ${r.error?.message ?? ''}`,
          );
        const bytes = Buffer.from(r.data ?? '', 'base64');
        if (r.offset !== offset || r.size !== seed.size || bytes.length === 0)
          throw seedError(
            `${id}: etcd snapshot ${seed.snapshotId}: chunk at ${offset} came back as offset ${r.offset}, ${bytes.length} bytes of ${r.size}; the plan says ${seed.size} bytes`,
          );
        if (offset + bytes.length > seed.size)
          throw seedError(
            `${id}: etcd snapshot ${seed.snapshotId} is longer than the plan's ${seed.size} bytes`,
          );
        hash.update(bytes);
        await fh.write(bytes);
        offset += bytes.length;
      }
      await fh.sync();
    } catch (err) {
      await fh.close();
      await rm(file, { force: true });
      throw err;
    }
    await fh.close();
    const sum = hash.digest('hex');
    if (sum !== seed.sha256) {
      await rm(file, { force: true });
      throw seedError(
        `${id}: etcd snapshot ${seed.snapshotId} has SHA-256 ${sum.slice(0, 16)}…, the plan says ${seed.sha256.slice(0, 16)}…; not restoring it`,
      );
    }
    log.info({ bytes: offset }, 'etcd snapshot fetched and checked');
    return file;
  }
}
