import { closeSync, existsSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { type Static, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { writeFileAtomic } from '../lib/atomic-file.js';
import { labError } from './errors.js';
import { LabK8sState } from './k8s.js';
import { readStat } from './procs.js';

/**
 * lab.json: everything later `drover lab …` invocations need to find and act on the lab's
 * processes and network, written atomically after every change.
 */
const Proc = Type.Object({ pid: Type.Integer({ minimum: 1 }), startTime: Type.String() });

export const LabNodeState = Type.Object({
  name: Type.String(),
  pool: Type.String(),
  address: Type.String(),
  labels: Type.Record(Type.String(), Type.String()),
  dir: Type.String(),
  dataDir: Type.String(),
  rootDir: Type.String(),
  config: Type.String(),
  log: Type.String(),
  proc: Type.Optional(Proc),
  /** running: the agent runs; killed: `kill-host` (until `revive`); partitioned: `partition` (until `heal`) */
  state: Type.Union([Type.Literal('running'), Type.Literal('killed'), Type.Literal('partitioned')]),
  netns: Type.Optional(Type.String()),
  hostVeth: Type.Optional(Type.String()),
  /** `lab up --pending`: joins without the join token, Pending until `drover approve` */
  pending: Type.Optional(Type.Boolean()),
});
export type LabNodeState = Static<typeof LabNodeState>;

/** `lab up --ha`: one of the three clustered nats-servers (JetStream, routes to the other two). */
export const LabHaNats = Type.Object({
  name: Type.String(),
  url: Type.String(),
  monitorUrl: Type.String(),
  config: Type.String(),
  dir: Type.String(),
  log: Type.String(),
  proc: Type.Optional(Proc),
});
export type LabHaNats = Static<typeof LabHaNats>;

/** `lab up --ha`: one of the three coordinators on the replicated store. */
export const LabHaCoordinator = Type.Object({
  id: Type.String(),
  apiUrl: Type.String(),
  dataDir: Type.String(),
  config: Type.String(),
  log: Type.String(),
  proc: Type.Optional(Proc),
});
export type LabHaCoordinator = Static<typeof LabHaCoordinator>;

export const LabState = Type.Object({
  version: Type.Literal(1),
  dir: Type.String(),
  createdAt: Type.String(),
  mode: Type.Union([Type.Literal('loopback'), Type.Literal('netns')]),
  subnet: Type.String(),
  bridge: Type.Optional(Type.String()),
  bridgeAddress: Type.Optional(Type.String()),
  /** each agent runs in its own UTS namespace with the host's name as hostname (root only) */
  hostnames: Type.Optional(Type.Boolean()),
  distDir: Type.String(),
  nodeBinary: Type.String(),
  topologyFile: Type.String(),
  timings: Type.Record(Type.String(), Type.String()),
  /** a lab from before per-host join tokens kept a shared one here; unused */
  joinToken: Type.Optional(Type.String()),
  /**
   * The bus's auth and TLS (coordinator/bus/): keys, creds, CA and nats-server's files, in the
   * coordinator's `<dataDir>/bus`. Every lab host joined with its own single-use token.
   */
  bus: Type.Optional(
    Type.Object({
      dir: Type.String(),
      caFile: Type.String(),
      /** the coordinator key fingerprint every agent pinned */
      coordinatorKeyFingerprint: Type.Optional(Type.String()),
    }),
  ),
  nats: Type.Object({
    url: Type.String(),
    monitorUrl: Type.String(),
    config: Type.String(),
    log: Type.String(),
    proc: Type.Optional(Proc),
  }),
  coordinator: Type.Object({
    apiUrl: Type.String(),
    dataDir: Type.String(),
    config: Type.String(),
    log: Type.String(),
    adminTokenFile: Type.String(),
    cliConfig: Type.String(),
    proc: Type.Optional(Proc),
  }),
  nodes: Type.Array(LabNodeState),
  /**
   * `lab up --ha`: three nats-servers as a JetStream cluster and three coordinators on an R3
   * store. `nats` and `coordinator` above are the first of each (the coordinator's `apiUrl`
   * lists all three: clients find the leader).
   */
  ha: Type.Optional(Type.Object({ nats: Type.Array(LabHaNats), coordinators: Type.Array(LabHaCoordinator) })),
  /** which Kubernetes components run for real (absent in a lab.json from before real binaries) */
  k8s: Type.Optional(LabK8sState),
});
export type LabState = Static<typeof LabState>;

export const STATE_FILE = 'lab.json';

export function statePath(dir: string): string {
  return join(dir, STATE_FILE);
}

export function readState(dir: string): LabState {
  const path = statePath(dir);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw labError('DROVER_ERR_LAB_NOT_FOUND', `no lab in ${dir} (${path} does not exist)`, {
        hint: 'start one with `drover lab up`, or pass --dir',
      });
    throw labError('DROVER_ERR_LAB_STATE', `cannot read ${path}: ${(err as Error).message}`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw labError('DROVER_ERR_LAB_STATE', `${path} is not valid JSON: ${(err as Error).message}`);
  }
  const first = Value.Errors(LabState, v).First();
  if (first)
    throw labError(
      'DROVER_ERR_LAB_STATE',
      `${path} is not a lab state file: ${first.path || '/'}: ${first.message}`,
    );
  return v as LabState;
}

export async function writeState(s: LabState): Promise<void> {
  await writeFileAtomic(statePath(s.dir), `${JSON.stringify(s, null, 2)}\n`, 0o600);
}

export function findNode(s: LabState, name: string): LabNodeState {
  const n = s.nodes.find((x) => x.name === name);
  if (!n)
    throw labError(
      'DROVER_ERR_LAB_NODE_NOT_FOUND',
      `the lab has no node ${JSON.stringify(name)}; it has ${s.nodes.map((x) => x.name).join(', ')}`,
    );
  return n;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Runs `fn` holding `<dir>/lab.lock`, so two `drover lab` commands never edit lab.json at once. A
 * lock left by a process that is gone is taken over.
 */
export async function withLock<T>(dir: string, fn: () => Promise<T>, waitMs = 30_000): Promise<T> {
  const path = join(dir, 'lab.lock');
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      const fd = openSync(path, 'wx', 0o644);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let holder = 0;
      try {
        holder = Number(readFileSync(path, 'utf8').trim());
      } catch {
        // removed meanwhile
      }
      if (holder && !readStat(holder)) {
        rmSync(path, { force: true });
        continue;
      }
      if (Date.now() > deadline)
        throw labError(
          'DROVER_ERR_LAB_LOCKED',
          `another drover lab command (pid ${holder || '?'}) holds ${path}`,
        );
      await sleep(100);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(path, { force: true });
  }
}

export function labExists(dir: string): boolean {
  return existsSync(statePath(dir));
}
