/**
 * Where etcd snapshot files are kept, off the etcd hosts: the JetStream object store beside the
 * state bucket when the JetStream store is in use (replicated like it), else the coordinator's
 * data directory (`<dataDir>/etcd-snapshots/<id>.db`, mode 0600 in a 0700 directory: a snapshot
 * holds every Secret of the cluster).
 */
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type NatsConnection, type ObjectStore, StorageType } from 'nats';

export interface SnapshotBlobs {
  /** where they are, for messages: "the data dir /var/lib/…", "JetStream object store …" */
  readonly describe: string;
  put(id: string, bytes: Uint8Array): Promise<void>;
  /** undefined when there is no such file */
  get(id: string): Promise<Uint8Array | undefined>;
  delete(id: string): Promise<void>;
}

/** Snapshot ids are made by the book (`<cluster>-<time>-<random>`); nothing else is a file name. */
const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
function checkId(id: string): string {
  if (!ID.test(id) || id.includes('..')) throw new Error(`not a snapshot id: ${JSON.stringify(id)}`);
  return id;
}

/**
 * Where the configured store keeps snapshots: the object store beside a JetStream bucket (on the
 * store's own connection), else the data dir.
 */
export function snapshotBlobsFor(
  opened: { nc?: NatsConnection },
  opts: { dataDir: string; store: { bucket: string; replicas: number } },
): Promise<SnapshotBlobs> {
  return opened.nc
    ? ObjectStoreSnapshotBlobs.open(opened.nc, opts.store.bucket, opts.store.replicas)
    : Promise.resolve(new DirSnapshotBlobs(opts.dataDir));
}

export class DirSnapshotBlobs implements SnapshotBlobs {
  readonly describe: string;
  private readonly dir: string;
  constructor(dataDir: string) {
    this.dir = join(dataDir, 'etcd-snapshots');
    this.describe = `the coordinator's data dir (${this.dir})`;
  }

  async put(id: string, bytes: Uint8Array): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await chmod(this.dir, 0o700);
    const path = join(this.dir, `${checkId(id)}.db`);
    const tmp = `${path}.tmp`;
    await writeFile(tmp, bytes, { mode: 0o600, flush: true });
    await rename(tmp, path);
  }

  async get(id: string): Promise<Uint8Array | undefined> {
    try {
      return await readFile(join(this.dir, `${checkId(id)}.db`));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async delete(id: string): Promise<void> {
    await rm(join(this.dir, `${checkId(id)}.db`), { force: true });
  }
}

export class ObjectStoreSnapshotBlobs implements SnapshotBlobs {
  readonly describe: string;
  private constructor(
    private readonly os: ObjectStore,
    name: string,
    replicas: number,
  ) {
    this.describe = `the JetStream object store ${name} (R${replicas})`;
  }

  /** Opens (or makes) the object store `<bucket>-snapshots` with the state bucket's replicas. */
  static async open(nc: NatsConnection, bucket: string, replicas: number): Promise<ObjectStoreSnapshotBlobs> {
    const name = `${bucket}-snapshots`;
    const os = await nc.jetstream().views.os(name, { replicas, storage: StorageType.File });
    return new ObjectStoreSnapshotBlobs(os, name, replicas);
  }

  async put(id: string, bytes: Uint8Array): Promise<void> {
    await this.os.putBlob({ name: checkId(id) }, bytes);
  }

  async get(id: string): Promise<Uint8Array | undefined> {
    return (await this.os.getBlob(checkId(id))) ?? undefined;
  }

  async delete(id: string): Promise<void> {
    const info = await this.os.info(checkId(id));
    if (info && !info.deleted) await this.os.delete(id);
  }
}
