import { readFile, rm, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import type { Logger } from 'pino';
import { writeFileAtomic } from '../lib/atomic-file.js';
import { silentLogger } from '../lib/logger.js';
import {
  decodeValue,
  type InstanceSpec,
  isReloadOnly,
  type NodePlan,
  type PlanFile,
  SignedPlan,
} from '../protocol/index.js';
import type { CertManager } from './certs.js';
import { AgentError, errorBody } from './errors.js';
import { rootPrefix } from './options.js';
import { checkPurgePath, purgeTarget, realish } from './purge-guard.js';
import { filePathUnderRoot } from './root-path.js';
import { canSwitchUser, lookupRunAs, prepareRunAs, type RunAsIds } from './run-as.js';
import { type RunnableInstance, type Runtime, runnableFrom } from './runtime/types.js';
import type { SnapshotSeeder } from './seed.js';

export interface ApplyChanges {
  started: string[];
  restarted: string[];
  stopped: string[];
  unchanged: string[];
}

export interface ApplyOutcome {
  changes: ApplyChanges;
  /** per-instance failures; the rest of the plan was still applied */
  errors: Array<{ id: string; code: string; message: string }>;
}

export { filePathUnderRoot };

/** At most this many paths the ownership ledger keeps per instance. */
const MAX_OWNED_PATHS = 256;

/** The node paths an instance owns: its data paths, files and certificate files. */
function ownedBy(i: InstanceSpec): string[] {
  return [
    ...(i.dataPaths ?? []),
    ...i.files.map((f) => f.path),
    ...(i.certificates ?? []).flatMap((c) => [c.certPath, c.keyPath, c.caPath]),
  ];
}

/** The literal plans use for the agent's root dir (built up so linters do not take it for a template). */
export const ROOT_VAR = ['$', '{DROVER_ROOT}'].join('');

/** `${DROVER_ROOT}` becomes the root dir ('' when it is `/`), so `${DROVER_ROOT}/etc/x` is `/etc/x` on a real host. */
export function makeExpander(rootDir: string): (s: string) => string {
  const prefix = rootPrefix(rootDir);
  return (s) => (s.includes(ROOT_VAR) ? s.split(ROOT_VAR).join(prefix) : s);
}

export interface ApplierOptions {
  runtime: Runtime;
  rootDir: string;
  dataDir: string;
  logger?: Logger;
  /** obtains and renews the instances' certificates (InstanceSpec.certificates) */
  certs?: Pick<CertManager, 'ensure'>;
  /** seeds an instance's data from an etcd snapshot before its first start (InstanceSpec.seed) */
  seeder?: Pick<SnapshotSeeder, 'ensure'>;
}

/**
 * Diffs a verified plan against what runs and makes only the needed changes: stops instances no
 * longer in the plan, restarts those whose checksum changed (after rewriting their files), starts
 * new ones, and leaves the rest alone. Instances an operator stopped with a task stay stopped until
 * a start task or a changed checksum.
 */
export class Applier {
  private readonly runtime: Runtime;
  private readonly log: Logger;
  readonly rootDir: string;
  private readonly dataDir: string;
  readonly expand: (s: string) => string;
  private readonly planPath: string;
  private readonly heldPath: string;
  private readonly ownedPath: string;
  /** the ownership ledger: instance id → every path it owned in a plan applied here (purge guard) */
  private owned = new Map<string, string[]>();
  private specs = new Map<string, InstanceSpec>();
  private readonly certs?: Pick<CertManager, 'ensure'>;
  private readonly seeder?: Pick<SnapshotSeeder, 'ensure'>;
  /** instances of the plan that could not start yet (e.g. no certificate): retried by repairDrift */
  private readonly pending = new Set<string>();
  /** instances stopped by a task, with the checksum they were stopped at */
  private held = new Map<string, string>();
  /** instances whose start failed before the runtime was asked (a certificate, the role user) */
  private readonly startFailures = new Map<string, { message: string }>();
  /** the uid and gid each instance with a role user last started as */
  private readonly runAsIds = new Map<string, RunAsIds>();

  constructor(opts: ApplierOptions) {
    this.runtime = opts.runtime;
    this.rootDir = opts.rootDir;
    this.dataDir = opts.dataDir;
    this.certs = opts.certs;
    this.seeder = opts.seeder;
    this.log = opts.logger ?? silentLogger;
    this.expand = makeExpander(opts.rootDir);
    this.planPath = join(opts.dataDir, 'plan.json');
    this.heldPath = join(opts.dataDir, 'held.json');
    this.ownedPath = join(opts.dataDir, 'owned.json');
  }

  /** The applied plan's instances by id. */
  instances(): ReadonlyMap<string, InstanceSpec> {
    return this.specs;
  }

  spec(id: string): InstanceSpec | undefined {
    return this.specs.get(id);
  }

  isHeld(id: string): boolean {
    return this.held.has(id);
  }

  /**
   * What the runtime starts. A role with a system user (`run.runAs`) gets its uid and gid: those
   * `prepareHost` resolved, else the host's current ones (a task's restart between applies).
   */
  runnable(spec: InstanceSpec): RunnableInstance {
    const r = runnableFrom(spec, this.expand);
    const ids =
      this.runAsIds.get(spec.id) ??
      (spec.run.runAs && canSwitchUser() ? lookupRunAs(spec.run.runAs) : undefined);
    return ids ? { ...r, runAs: ids } : r;
  }

  /**
   * Least privilege before a start: the role's user exists and owns the instance's paths
   * (agent/run-as.ts). A refusal (DROVER_ERR_RUN_AS, naming the directory) fails the start.
   */
  private async prepareHost(spec: InstanceSpec): Promise<void> {
    const ids = await prepareRunAs(this.rootDir, spec, this.log, this.expand(spec.run.command));
    if (ids) this.runAsIds.set(spec.id, ids);
    else this.runAsIds.delete(spec.id);
  }

  /** Reads the last applied plan and the held set. A damaged file is logged and ignored, never fatal. */
  async loadPersisted(): Promise<SignedPlan | undefined> {
    try {
      const held = JSON.parse(await readFile(this.heldPath, 'utf8')) as unknown;
      if (held && typeof held === 'object' && !Array.isArray(held))
        this.held = new Map(
          Object.entries(held).filter((e): e is [string, string] => typeof e[1] === 'string'),
        );
    } catch {}
    try {
      const owned = JSON.parse(await readFile(this.ownedPath, 'utf8')) as unknown;
      if (owned && typeof owned === 'object' && !Array.isArray(owned))
        this.owned = new Map(
          Object.entries(owned).filter(
            (e): e is [string, string[]] => Array.isArray(e[1]) && e[1].every((p) => typeof p === 'string'),
          ),
        );
    } catch {}
    let text: string;
    try {
      text = await readFile(this.planPath, 'utf8');
    } catch {
      return undefined;
    }
    try {
      return decodeValue(SignedPlan, JSON.parse(text));
    } catch (err) {
      this.log.error({ err, path: this.planPath }, 'persisted plan is unreadable; ignoring it');
      return undefined;
    }
  }

  async persist(signed: SignedPlan): Promise<void> {
    await writeFileAtomic(this.planPath, JSON.stringify(signed), 0o600);
  }

  private async persistHeld(): Promise<void> {
    if (this.held.size === 0) await rm(this.heldPath, { force: true });
    else await writeFileAtomic(this.heldPath, JSON.stringify(Object.fromEntries(this.held)), 0o644);
  }

  /** Checks what the schema cannot: paths stay under the root. Throws before anything changes. */
  validate(plan: NodePlan): void {
    const ids = new Set<string>();
    for (const inst of plan.instances) {
      if (ids.has(inst.id))
        throw new AgentError('DROVER_ERR_PLAN_INVALID', `instance ${inst.id} appears twice`, {
          details: { instanceId: inst.id },
        });
      ids.add(inst.id);
      for (const f of inst.files) filePathUnderRoot(this.rootDir, f.path);
      const cwd = inst.run.cwd && this.expand(inst.run.cwd);
      if (cwd !== undefined && !cwd.startsWith('/'))
        throw new AgentError('DROVER_ERR_PLAN_INVALID', `instance ${inst.id}: cwd must be absolute`);
    }
  }

  async writeFiles(spec: InstanceSpec): Promise<void> {
    for (const f of spec.files) await this.writeFile(f);
  }

  private async writeFile(f: PlanFile): Promise<void> {
    const path = filePathUnderRoot(this.rootDir, f.path);
    const data = f.encoding === 'base64' ? Buffer.from(f.content, 'base64') : f.content;
    await writeFileAtomic(path, data, f.mode);
  }

  async apply(plan: NodePlan): Promise<ApplyOutcome> {
    this.validate(plan);
    const desired = new Map(plan.instances.map((i) => [i.id, i]));
    const changes: ApplyChanges = { started: [], restarted: [], stopped: [], unchanged: [] };
    const errors: ApplyOutcome['errors'] = [];
    const attempt = async (id: string, fn: () => Promise<void>) => {
      try {
        await fn();
      } catch (err) {
        this.log.error({ err, instance: id }, 'applying an instance failed');
        errors.push({ id, ...errorBody(err) });
      }
    };

    const known = new Set([...this.runtime.list().map((s) => s.id), ...this.specs.keys()]);
    const gone = [...known].filter((id) => !desired.has(id));
    await Promise.all(
      gone.map((id) =>
        attempt(id, async () => {
          await this.runtime.remove(id);
          changes.stopped.push(id);
        }),
      ),
    );
    let heldChanged = false;
    for (const id of gone) if (this.held.delete(id)) heldChanged = true;
    await this.recordOwned(plan).catch((err) =>
      this.log.error({ err, path: this.ownedPath }, 'cannot persist the ownership ledger'),
    );
    if (plan.purge?.length) await this.purge(plan, errors);

    const toRestart: InstanceSpec[] = [];
    const toStart: InstanceSpec[] = [];
    for (const spec of plan.instances) {
      const rs = this.runtime.status(spec.id);
      if (rs && rs.checksum === spec.checksum) changes.unchanged.push(spec.id);
      else if (rs) toRestart.push(spec);
      else if (this.held.get(spec.id) === spec.checksum) changes.unchanged.push(spec.id);
      else toStart.push(spec);
    }
    for (const spec of [...toRestart, ...toStart]) if (this.held.delete(spec.id)) heldChanged = true;
    // Specs are recorded before starting so status and tasks see the new plan at once.
    const previous = this.specs;
    this.specs = desired;
    for (const id of this.startFailures.keys()) if (!desired.has(id)) this.startFailures.delete(id);
    await Promise.all([
      ...toRestart.map((spec) =>
        attempt(spec.id, async () => {
          await this.writeFiles(spec);
          await this.beforeStart(spec);
          const before = previous.get(spec.id);
          if (before && isReloadOnly(before, spec)) {
            await this.runtime.reload(this.runnable(spec), spec.run.reloadSignal as NodeJS.Signals);
            changes.unchanged.push(spec.id);
          } else {
            await this.runtime.restart(this.runnable(spec));
            changes.restarted.push(spec.id);
          }
        }),
      ),
      ...toStart.map((spec) =>
        attempt(spec.id, async () => {
          await this.writeFiles(spec);
          await this.beforeStart(spec);
          await this.runtime.start(this.runnable(spec));
          changes.started.push(spec.id);
        }),
      ),
    ]);
    // Unchanged instances still get their current spec (e.g. an adopted process learns its restart policy).
    for (const id of changes.unchanged) {
      const spec = desired.get(id)!;
      const rs = this.runtime.status(id);
      if (rs && rs.checksum === spec.checksum && (rs.state === 'running' || rs.adopted))
        await attempt(id, () => this.runtime.start(this.runnable(spec)));
    }
    if (heldChanged) await this.persistHeld();
    for (const k of Object.keys(changes) as Array<keyof ApplyChanges>) changes[k].sort();
    return { changes, errors };
  }

  /**
   * `drover clean --purge`: deletes the paths removed instances owned. Only for instances not in
   * the plan (their processes were stopped just before), and only what the purge guard allows
   * (agent/purge-guard.ts): absolute, normalised paths without `..`, at least three levels deep,
   * inside the root dir after symlinks, and owned by that instance in a plan this agent applied.
   * Never a path that holds or sits inside a file or data path of an instance still in the plan,
   * or the agent's data dir. Deleting what is already gone is a no-op, so a re-applied plan
   * purges nothing new.
   */
  private async purge(plan: NodePlan, errors: ApplyOutcome['errors']): Promise<string[]> {
    const live = new Set(plan.instances.map((i) => i.id));
    const keep = await Promise.all(
      [
        resolve(this.dataDir),
        ...plan.instances.flatMap((i) => ownedBy(i).map((p) => filePathUnderRoot(this.rootDir, p))),
      ].map(realish),
    );
    const overlaps = (a: string, b: string) =>
      a === b || a.startsWith(`${b}${sep}`) || b.startsWith(`${a}${sep}`);
    const removed: string[] = [];
    for (const entry of plan.purge ?? []) {
      if (live.has(entry.instanceId)) continue;
      for (const p of entry.paths) {
        try {
          checkPurgePath(p, entry.instanceId, this.owned.get(entry.instanceId));
          const target = await purgeTarget(this.rootDir, p, entry.instanceId);
          if (target === undefined) continue; // already gone
          const clash = keep.find((k) => overlaps(target, k));
          if (clash) {
            this.log.warn(
              { instance: entry.instanceId, path: p, clash },
              'purge skipped: a live instance uses it',
            );
            continue;
          }
          await rm(target, { recursive: true, force: true });
          removed.push(p);
        } catch (err) {
          this.log.error({ err, instance: entry.instanceId, path: p }, 'purge failed');
          errors.push({ id: entry.instanceId, ...errorBody(err) });
        }
      }
    }
    if (removed.length) this.log.warn({ paths: removed }, 'purged the data of removed instances');
    return removed;
  }

  /**
   * Records what each instance of the plan owns (its data paths, files and certificates) in the
   * ownership ledger, which the purge guard reads. Paths only accumulate: after `drover clean` the
   * instances are gone from the plan, and a later `drover clean --purge` still needs to know.
   */
  private async recordOwned(plan: NodePlan): Promise<void> {
    let changed = false;
    for (const i of plan.instances) {
      const had = this.owned.get(i.id) ?? [];
      const next = [...new Set([...had, ...ownedBy(i)])].sort().slice(0, MAX_OWNED_PATHS);
      if (next.length !== had.length || next.some((p, k) => p !== had[k])) {
        this.owned.set(i.id, next);
        changed = true;
      }
    }
    if (changed) await writeFileAtomic(this.ownedPath, JSON.stringify(Object.fromEntries(this.owned)), 0o600);
  }

  /**
   * What an instance needs before it starts: its certificates, its data when the plan seeds it
   * from a snapshot, then its role user and paths (which owns the restored data too). A
   * failure keeps the instance pending (retried by repairDrift) and is recorded, so its status
   * shows CrashLoop with the reason (the certificate, or the directory its user cannot reach).
   */
  private async beforeStart(spec: InstanceSpec): Promise<void> {
    try {
      if (spec.certificates?.length && this.certs) await this.certs.ensure(spec);
      if (spec.seed) {
        if (!this.seeder)
          throw new AgentError(
            'DROVER_ERR_SEED',
            `${spec.id}: this agent cannot seed instance data from a snapshot`,
          );
        await this.seeder.ensure(spec);
      }
      await this.prepareHost(spec);
      this.pending.delete(spec.id);
      this.startFailures.delete(spec.id);
    } catch (err) {
      this.pending.add(spec.id);
      this.startFailures.set(spec.id, { message: errorBody(err).message });
      throw err;
    }
  }

  /** Why an instance of the plan could not be started (a certificate, its role user), if it could not. */
  startFailure(id: string): { message: string } | undefined {
    return this.startFailures.get(id);
  }

  /**
   * Files changed or deleted behind the agent's back (content or mode): rewrites them and restarts
   * their instance, so what runs matches the plan again. Certificates missing, changed or due for
   * renewal are obtained again and their instance restarted; an instance that could not start for
   * want of a certificate is started now if it can be. Returns the repaired instance ids.
   */
  async repairDrift(): Promise<string[]> {
    const repaired: string[] = [];
    for (const id of [...this.pending]) {
      const spec = this.specs.get(id);
      if (!spec || this.held.has(id) || this.runtime.status(id)) {
        this.pending.delete(id);
        continue;
      }
      try {
        await this.writeFiles(spec);
        await this.beforeStart(spec);
        await this.runtime.start(this.runnable(spec));
        this.log.info({ instance: id }, 'started now that its certificates are in place');
        repaired.push(id);
      } catch (err) {
        this.log.warn({ instance: id, err: errorBody(err) }, 'instance still cannot start');
      }
    }
    for (const spec of this.specs.values()) {
      if (this.held.has(spec.id) || !this.runtime.status(spec.id)) continue;
      if (spec.certificates?.length && this.certs) {
        try {
          if (await this.certs.ensure(spec)) {
            this.log.warn({ instance: spec.id }, 'certificates renewed or restored; restarting to load them');
            await this.prepareHost(spec);
            await this.runtime.restart(this.runnable(spec));
            repaired.push(spec.id);
            continue;
          }
        } catch (err) {
          // the instance keeps running on what it has; the next check tries again
          this.log.warn({ instance: spec.id, err: errorBody(err) }, 'certificate check failed');
        }
      }
      if (!(await this.filesMatch(spec))) {
        this.log.warn({ instance: spec.id }, 'role files drifted from the plan; rewriting and restarting');
        await this.writeFiles(spec);
        await this.prepareHost(spec);
        await this.runtime.restart(this.runnable(spec));
        repaired.push(spec.id);
      }
    }
    return repaired;
  }

  private async filesMatch(spec: InstanceSpec): Promise<boolean> {
    for (const f of spec.files) {
      const path = filePathUnderRoot(this.rootDir, f.path);
      const want =
        f.encoding === 'base64' ? Buffer.from(f.content, 'base64') : Buffer.from(f.content, 'utf8');
      try {
        const [have, st] = await Promise.all([readFile(path), stat(path)]);
        if (!have.equals(want) || (st.mode & 0o7777) !== f.mode) return false;
      } catch {
        return false;
      }
    }
    return true;
  }

  /** A stop task: the instance stays stopped across plan re-applies and agent restarts. */
  async hold(id: string): Promise<void> {
    const spec = this.specs.get(id);
    if (spec) this.held.set(id, spec.checksum);
    await this.persistHeld();
    await this.runtime.stop(id);
  }

  async release(id: string): Promise<void> {
    if (this.held.delete(id)) await this.persistHeld();
  }
}
