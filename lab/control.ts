import { existsSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { LabApi } from './api.js';
import { labError } from './errors.js';
import { hostPath } from './k8s.js';
import { labPath } from './preflight.js';
import {
  allProcs,
  cmdline,
  daemonEnv,
  isAlive,
  type ProcRef,
  readStat,
  spawnDetached,
  terminate,
} from './procs.js';
import { type LabState, readState, withLock, writeState } from './state.js';

/**
 * The lab's control services, nats-server and the coordinator: starting them (for `lab up` and
 * `lab start`), stopping them (`lab stop`, fault injection), and finding the process that really
 * runs (the pid lab.json recorded, else one whose command line names the lab's config file: a
 * service someone restarted by hand).
 */

export type LabService = 'nats' | 'coordinator';

const SERVICE_NAMES: Record<string, LabService> = {
  nats: 'nats',
  'nats-server': 'nats',
  coordinator: 'coordinator',
};

export function parseService(word: string): LabService {
  const s = SERVICE_NAMES[word];
  if (!s)
    throw labError(
      'DROVER_ERR_LAB_USAGE',
      `lab start/stop takes coordinator or nats, not ${JSON.stringify(word)} (hosts: \`lab kill-host\` / \`lab revive\`)`,
    );
  return s;
}

export const serviceLabel = (s: LabService): string => (s === 'nats' ? 'nats-server' : 'the coordinator');

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function tail(path: string, lines = 15): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export function exitedMessage(name: string, log: string): string {
  return `${name} exited during start-up; the end of ${log}:\n${tail(log)}`;
}

/** Waits for `ok()`; fails early when a lab process it depends on has exited. */
export async function waitUntil(
  what: string,
  ok: () => Promise<boolean>,
  opts: { timeoutMs: number; alive?: () => string | undefined; intervalMs?: number },
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    if (await ok()) return;
    const dead = opts.alive?.();
    if (dead) throw labError('DROVER_ERR_LAB_START', dead);
    if (Date.now() > deadline)
      throw labError(
        'DROVER_ERR_LAB_TIMEOUT',
        `timed out after ${opts.timeoutMs / 1000}s waiting for ${what}`,
      );
    await sleep(opts.intervalMs ?? 250);
  }
}

/** The command line that marks a service as this lab's: its program and its config file. */
function matches(which: LabService, s: LabState, argv: string[]): boolean {
  if (which === 'nats') return basename(argv[0] ?? '') === 'nats-server' && argv.includes(s.nats.config);
  return argv.some((a) => basename(a) === 'drover-coordinator.mjs') && argv.includes(s.coordinator.config);
}

export interface ServiceProc {
  proc?: ProcRef;
  /** the live process is the one lab.json recorded (false: found by its command line) */
  recorded: boolean;
}

/** The live process of a service, from /proc: never a stale pid. */
export function serviceProc(s: LabState, which: LabService): ServiceProc {
  const rec = which === 'nats' ? s.nats.proc : s.coordinator.proc;
  if (rec && isAlive(rec)) return { proc: rec, recorded: true };
  for (const p of allProcs())
    if (matches(which, s, cmdline(p.pid)))
      return { proc: { pid: p.pid, startTime: p.startTime }, recorded: false };
  return { recorded: false };
}

export async function natsHealthy(s: LabState): Promise<boolean> {
  try {
    return (await fetch(`${s.nats.monitorUrl}/healthz`, { signal: AbortSignal.timeout(2000) })).ok;
  } catch {
    return false;
  }
}

export const labApiOf = (s: LabState, timeoutMs?: number): LabApi =>
  new LabApi(s.coordinator.apiUrl, s.coordinator.adminTokenFile, timeoutMs);

/** Starts nats-server with the lab's config (same ports) and waits until it is healthy. */
export async function spawnNats(s: LabState): Promise<ProcRef> {
  const proc = await spawnDetached({
    command: 'nats-server',
    args: ['-c', s.nats.config],
    log: s.nats.log,
    cwd: join(s.dir, 'nats'),
    env: daemonEnv({ PATH: hostPath(s.k8s, labPath()) }),
  }).catch((err) => {
    throw labError('DROVER_ERR_LAB_START', `cannot start nats-server: ${(err as Error).message}`);
  });
  s.nats.proc = proc;
  await writeState(s);
  await waitUntil(`nats-server at ${s.nats.url}`, () => natsHealthy(s), {
    timeoutMs: 15_000,
    alive: () => (isAlive(proc) ? undefined : exitedMessage('nats-server', s.nats.log)),
  });
  return proc;
}

/** Starts the coordinator with the lab's config (same API port, same data dir) and waits until /readyz answers. */
export async function spawnCoordinator(s: LabState): Promise<ProcRef> {
  const proc = await spawnDetached({
    command: s.nodeBinary,
    args: [join(s.distDir, 'drover-coordinator.mjs'), '--config', s.coordinator.config],
    log: s.coordinator.log,
    cwd: join(s.dir, 'coordinator'),
    env: daemonEnv({ PATH: hostPath(s.k8s, labPath()) }),
  });
  s.coordinator.proc = proc;
  await writeState(s);
  const api = labApiOf(s);
  await waitUntil(
    `the coordinator API at ${s.coordinator.apiUrl}`,
    async () => (await api.ready()) && existsSync(s.coordinator.adminTokenFile),
    {
      timeoutMs: 30_000,
      alive: () => (isAlive(proc) ? undefined : exitedMessage('the coordinator', s.coordinator.log)),
    },
  );
  return proc;
}

export interface ServiceResult {
  service: LabService;
  pid: number;
  /** stop: the signal that ended it; start: how it was brought up */
  how: string;
}

/**
 * `lab stop coordinator|nats [--kill]`: SIGTERM and, after 5 s, SIGKILL (`--kill`: SIGKILL at
 * once, a crash). The agents keep running and reconnect when it comes back.
 */
export function stopService(
  dir: string,
  which: LabService,
  opts: { kill?: boolean } = {},
): Promise<ServiceResult> {
  const d = resolve(dir);
  return withLock(d, async () => {
    const s = readState(d);
    const { proc } = serviceProc(s, which);
    if (!proc) throw labError('DROVER_ERR_LAB_MODE', `${serviceLabel(which)} is not running`);
    const st = readStat(proc.pid);
    const left = st ? await terminate([st], { hard: opts.kill === true, graceMs: 5000 }) : [];
    if (left.length)
      throw labError('DROVER_ERR_LAB_LEFTOVERS', `${serviceLabel(which)} (pid ${proc.pid}) survived SIGKILL`);
    if (which === 'nats') delete s.nats.proc;
    else delete s.coordinator.proc;
    await writeState(s);
    return { service: which, pid: proc.pid, how: opts.kill ? 'SIGKILL' : 'SIGTERM' };
  });
}

/**
 * `lab start coordinator|nats`: starts the service again with the same config, ports and data,
 * records its pid in lab.json and waits until it is healthy. One that already runs but that
 * lab.json does not know (restarted by hand) is adopted instead.
 */
export function startService(dir: string, which: LabService): Promise<ServiceResult> {
  const d = resolve(dir);
  return withLock(d, async () => {
    const s = readState(d);
    const cur = serviceProc(s, which);
    if (cur.proc) {
      if (cur.recorded)
        throw labError('DROVER_ERR_LAB_MODE', `${serviceLabel(which)} already runs (pid ${cur.proc.pid})`);
      if (which === 'nats') s.nats.proc = cur.proc;
      else s.coordinator.proc = cur.proc;
      await writeState(s);
      return { service: which, pid: cur.proc.pid, how: 'adopted (it was started outside the lab)' };
    }
    if (which === 'coordinator') {
      if (!serviceProc(s, 'nats').proc)
        throw labError(
          'DROVER_ERR_LAB_MODE',
          'nats-server is down: the coordinator cannot start without it',
          {
            hint: '`drover lab start nats` first',
          },
        );
      const p = await spawnCoordinator(s);
      return { service: which, pid: p.pid, how: `API ${s.coordinator.apiUrl} ready` };
    }
    const p = await spawnNats(s);
    return { service: which, pid: p.pid, how: `listening on ${s.nats.url}` };
  });
}
