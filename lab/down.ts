import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { agentPids, labProcs } from './collect.js';
import { labError } from './errors.js';
import { leftovers, netNames, setLink, teardownNet } from './netns.js';
import { labCreated } from './paths.js';
import { terminate } from './procs.js';
import { type LabState, labExists, readState, withLock } from './state.js';

export interface LabDownResult {
  dir: string;
  /** processes stopped (pids) */
  stopped: number[];
  /** namespaces and links removed (netns mode) */
  network: string[];
  /** anything that could not be removed: processes or network pieces (normally empty) */
  left: string[];
}

/**
 * Stops everything a lab runs and removes what it created, keeping DIR/logs for the post-mortem:
 * agents are SIGKILLed first (a live agent would restart the roles being stopped), then every role,
 * the coordinator and nats-server get SIGTERM and, after a grace period, SIGKILL. The search is
 * repeated until it finds nothing, so a process started during the teardown is caught too.
 */
export async function teardown(s: LabState): Promise<LabDownResult> {
  const stopped = new Set<number>();
  const agents = agentPids(s);
  await terminate(agents, { hard: true });
  for (const a of agents) stopped.add(a.pid);
  // reconnect partitioned hosts so their processes can be found and signalled normally
  for (const n of s.nodes)
    if (n.state === 'partitioned' && n.hostVeth) await setLink(n.hostVeth, true).catch(() => {});
  let survivors: number[] = [];
  for (let round = 0; round < 4; round++) {
    const procs = await labProcs(s);
    if (!procs.length) break;
    for (const p of procs) stopped.add(p.pid);
    survivors = (await terminate(procs, { hard: round > 0, graceMs: 5000 })).map((p) => p.pid);
  }
  const left = (await labProcs(s)).map((p) => `process ${p.pid}`);
  if (!left.length && survivors.length) left.push(...survivors.map((p) => `process ${p}`));
  let network: string[] = [];
  if (s.mode === 'netns') {
    const names = netNames(s.dir);
    network = [
      ...s.nodes.map((n) => n.netns).filter((x): x is string => !!x),
      ...(s.bridge ? [s.bridge] : []),
    ];
    left.push(...(await teardownNet(names)));
  }
  if (!left.length) for (const p of labCreated(s.dir)) rmSync(p, { recursive: true, force: true });
  return { dir: s.dir, stopped: [...stopped].sort((a, b) => a - b), network, left };
}

/** `drover lab down`. */
export async function labDown(opts: { dir: string }): Promise<LabDownResult> {
  const dir = resolve(opts.dir);
  if (!labExists(dir)) {
    // no state: still make sure nothing of a lab in this dir survives (a crashed `lab up`)
    throw labError('DROVER_ERR_LAB_NOT_FOUND', `no lab in ${dir} (no lab.json)`, {
      hint: 'pass the --dir the lab was started with',
    });
  }
  return withLock(dir, async () => {
    const s = readState(dir);
    const r = await teardown(s);
    if (r.left.length)
      throw labError(
        'DROVER_ERR_LAB_LEFTOVERS',
        `lab down left these behind: ${r.left.join(', ')}; lab.json is kept so you can retry`,
      );
    return r;
  });
}

/** What a lab directory still has running or configured (for tests and `lab status`). */
export async function labLeftovers(s: LabState): Promise<string[]> {
  const out = (await labProcs(s)).map((p) => `process ${p.pid}`);
  if (s.mode === 'netns') out.push(...(await leftovers(netNames(s.dir))));
  return out;
}
