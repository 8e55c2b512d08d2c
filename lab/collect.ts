import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { netnsPids } from './netns.js';
import { labPaths } from './paths.js';
import { allProcs, cmdline, isAlive, type ProcInfo, procsUnder, readStat, withDescendants } from './procs.js';
import type { LabNodeState, LabState } from './state.js';

/**
 * Finds a lab's processes from several independent sources, so nothing escapes `kill-host` or
 * `lab down` even when one source is stale: the pids lab.json recorded, the agents' pidfiles
 * (`<dataDir>/run/*.json`, written by the process runtime for every role it starts), descendants
 * and process-group members of those, every process inside the node's network namespace, and
 * programs the lab runs whose command line names the node's (or lab's) directory.
 */

export interface RoleProcess {
  instanceId: string;
  role: string;
  pid: number;
  startTime: string;
  node: string;
}

/** The agent's pidfiles for live role processes (a pidfile naming a dead or recycled pid is skipped). */
export function roleProcesses(node: Pick<LabNodeState, 'name' | 'dataDir'>): RoleProcess[] {
  const dir = join(node.dataDir, 'run');
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.json'));
  } catch {
    return [];
  }
  const out: RoleProcess[] = [];
  for (const n of names) {
    try {
      const pf = JSON.parse(readFileSync(join(dir, n), 'utf8')) as {
        id?: unknown;
        pid?: unknown;
        startTime?: unknown;
        inst?: { role?: unknown };
      };
      if (typeof pf.id !== 'string' || typeof pf.pid !== 'number') continue;
      const startTime = typeof pf.startTime === 'string' ? pf.startTime : (readStat(pf.pid)?.startTime ?? '');
      if (!isAlive({ pid: pf.pid, startTime })) continue;
      const role = typeof pf.inst?.role === 'string' ? pf.inst.role : pf.id.replace(/#.*$/, '');
      out.push({ instanceId: pf.id, role, pid: pf.pid, startTime, node: node.name });
    } catch {
      // a pidfile being rewritten; the next look sees it whole
    }
  }
  return out.sort((a, b) => (a.instanceId < b.instanceId ? -1 : 1));
}

/** Programs the lab starts; a command line naming the lab dir but run by anything else (an editor, `tail`) is left alone. */
const LAB_PROGRAMS = new Set(['node', 'etcd', 'haproxy', 'nats-server', 'ip', 'etcdctl']);

function isLabProgram(pid: number): boolean {
  const argv0 = cmdline(pid)[0];
  if (!argv0) return false;
  const b = basename(argv0);
  return LAB_PROGRAMS.has(b) || b.startsWith('drover') || b.startsWith('node');
}

/** Our own process and its ancestors: never signalled, whatever their command lines say. */
function protectedPids(procs: ProcInfo[]): Set<number> {
  const byPid = new Map(procs.map((p) => [p.pid, p]));
  const out = new Set<number>([process.pid]);
  let cur = readStat(process.pid)?.ppid ?? 0;
  while (cur > 1 && !out.has(cur)) {
    out.add(cur);
    cur = byPid.get(cur)?.ppid ?? readStat(cur)?.ppid ?? 0;
  }
  out.add(1);
  return out;
}

async function gather(roots: number[], scanDir: string, netns: string[]): Promise<ProcInfo[]> {
  const procs = allProcs();
  const keep = protectedPids(procs);
  const seeds = new Set<number>(roots);
  for (const p of procsUnder(scanDir, procs)) if (isLabProgram(p.pid)) seeds.add(p.pid);
  for (const ns of netns) for (const pid of await netnsPids(ns)) seeds.add(pid);
  return withDescendants([...seeds], procs).filter((p) => !keep.has(p.pid));
}

/** Everything that belongs to one lab host: its agent and every role process it started. */
export async function nodeProcs(node: LabNodeState): Promise<ProcInfo[]> {
  const roots: number[] = [];
  if (node.proc && isAlive(node.proc)) roots.push(node.proc.pid);
  for (const r of roleProcesses(node)) roots.push(r.pid);
  return gather(roots, node.dir, node.netns ? [node.netns] : []);
}

/** Everything the lab runs: nats-server, the coordinator, every host. */
export async function labProcs(s: LabState): Promise<ProcInfo[]> {
  const roots: number[] = [];
  const ha = [...(s.ha?.nats ?? []), ...(s.ha?.coordinators ?? [])].map((x) => x.proc);
  for (const p of [s.nats.proc, s.coordinator.proc, ...ha]) if (p && isAlive(p)) roots.push(p.pid);
  for (const n of s.nodes) {
    if (n.proc && isAlive(n.proc)) roots.push(n.proc.pid);
    for (const r of roleProcesses(n)) roots.push(r.pid);
  }
  const netns = s.nodes.map((n) => n.netns).filter((x): x is string => !!x);
  return gather(roots, s.dir, netns);
}

/** Agents first: a live agent would restart the roles we stop. */
export function agentPids(s: LabState): ProcInfo[] {
  return s.nodes
    .map((n) => (n.proc && isAlive(n.proc) ? readStat(n.proc.pid) : undefined))
    .filter((p): p is ProcInfo => !!p);
}

export { labPaths };
