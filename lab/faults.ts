import { resolve } from 'node:path';
import { nodeProcs, type RoleProcess, roleProcesses } from './collect.js';
import { labError } from './errors.js';
import { setLink } from './netns.js';
import {
  freezeAndKill,
  isAlive,
  isStopped,
  readStat,
  terminate,
  waitGone,
  withDescendants,
} from './procs.js';
import { findNode, type LabNodeState, type LabState, readState, withLock, writeState } from './state.js';
import { startAgent } from './up.js';

/**
 * Fault injection for demos and tests. Each function takes the lab lock, re-reads lab.json, acts,
 * and records the node's new state, so separate `drover lab …` invocations compose.
 */

async function onNode<T>(
  dir: string,
  name: string,
  fn: (s: LabState, n: LabNodeState) => Promise<T>,
): Promise<T> {
  const d = resolve(dir);
  return withLock(d, async () => {
    const s = readState(d);
    const n = findNode(s, name);
    const r = await fn(s, n);
    await writeState(s);
    return r;
  });
}

export interface KillHostResult {
  node: string;
  killed: Array<{ pid: number; what: string }>;
}

function describePid(pid: number, n: LabNodeState, roles: RoleProcess[]): string {
  if (n.proc?.pid === pid) return 'agent';
  const r = roles.find((x) => x.pid === pid);
  return r ? r.instanceId : `pid ${pid} (child)`;
}

/**
 * `kill-host NODE`: the host "loses power". The agent and every role process of the host are
 * SIGKILLed at once; in netns mode the namespace and its veth stay (the NIC of a dead host).
 */
export function killHost(dir: string, name: string): Promise<KillHostResult> {
  return onNode(dir, name, async (s, n) => {
    const roles = roleProcesses(n);
    const first = await nodeProcs(n);
    // frozen before killed, listed again until nothing new (procs.ts, freezeAndKill)
    const procs = freezeAndKill(() =>
      withDescendants(first.map((p) => p.pid).concat(roleProcesses(n).map((r) => r.pid))),
    );
    const left = await waitGone(procs, 5000);
    if (left.length)
      throw labError(
        'DROVER_ERR_LAB_LEFTOVERS',
        `${left.map((p) => p.pid).join(', ')} survived SIGKILL on ${name}`,
      );
    if (n.state === 'partitioned' && s.mode === 'netns' && n.hostVeth) await setLink(n.hostVeth, true);
    n.state = 'killed';
    delete n.proc;
    return { node: name, killed: procs.map((p) => ({ pid: p.pid, what: describePid(p.pid, n, roles) })) };
  });
}

/** `revive NODE`: starts the host's agent again, same identity and directories. */
export function revive(dir: string, name: string): Promise<{ node: string; pid: number }> {
  return onNode(dir, name, async (s, n) => {
    if (n.proc && isAlive(n.proc)) {
      if (n.state === 'partitioned')
        throw labError(
          'DROVER_ERR_LAB_MODE',
          `${name} is partitioned, not dead: \`drover lab heal ${name}\``,
        );
      throw labError('DROVER_ERR_LAB_MODE', `the agent of ${name} already runs (pid ${n.proc.pid})`);
    }
    n.proc = await startAgent(s, n);
    n.state = 'running';
    return { node: name, pid: n.proc.pid };
  });
}

/** `stop-role NODE ROLE`: SIGKILLs the role's process group behind Drover's back (the agent should restart it). */
export function stopRole(
  dir: string,
  name: string,
  role: string,
): Promise<{ node: string; instances: Array<{ instanceId: string; pid: number }> }> {
  return onNode(dir, name, async (_s, n) => {
    const all = roleProcesses(n);
    const match = all.filter((r) => r.role === role || r.instanceId === role);
    if (!match.length)
      throw labError(
        'DROVER_ERR_LAB_ROLE_NOT_RUNNING',
        `${name} runs no ${role} process${all.length ? `; it runs ${[...new Set(all.map((r) => r.role))].join(', ')}` : ' (it runs no roles)'}`,
      );
    const procs = match.map((r) => readStat(r.pid)).filter((p): p is NonNullable<typeof p> => !!p);
    await terminate(procs, { hard: true });
    return { node: name, instances: match.map((r) => ({ instanceId: r.instanceId, pid: r.pid })) };
  });
}

export interface PartitionResult {
  node: string;
  mode: 'netns' | 'loopback';
  how: string;
}

/**
 * `partition NODE`. With --netns the host's veth goes down: the host and its roles are cut off
 * from the bus, the coordinator and every other host. On loopback there is no network to cut, so
 * the agent is frozen with SIGSTOP: it goes silent like a partitioned host, but its roles keep
 * serving on their loopback addresses (other hosts still reach them).
 */
export function partition(dir: string, name: string): Promise<PartitionResult> {
  return onNode(dir, name, async (s, n) => {
    if (n.state === 'killed')
      throw labError('DROVER_ERR_LAB_MODE', `${name} is killed; \`drover lab revive ${name}\` first`);
    if (n.state === 'partitioned') return { node: name, mode: s.mode, how: 'already partitioned' };
    if (s.mode === 'netns') {
      await setLink(n.hostVeth!, false);
      n.state = 'partitioned';
      return {
        node: name,
        mode: s.mode,
        how: `link ${n.hostVeth} set down: ${n.address} is cut off from the bridge`,
      };
    }
    if (!n.proc || !isAlive(n.proc))
      throw labError('DROVER_ERR_LAB_MODE', `the agent of ${name} is not running`);
    process.kill(n.proc.pid, 'SIGSTOP');
    n.state = 'partitioned';
    return {
      node: name,
      mode: s.mode,
      how: `agent (pid ${n.proc.pid}) frozen with SIGSTOP: it goes silent, its roles keep running (loopback mode has no network to cut; use --netns for a real partition)`,
    };
  });
}

/** `heal NODE`: undoes `partition`. */
export function heal(dir: string, name: string): Promise<PartitionResult> {
  return onNode(dir, name, async (s, n) => {
    if (n.state !== 'partitioned')
      throw labError('DROVER_ERR_LAB_MODE', `${name} is not partitioned (it is ${n.state})`);
    n.state = 'running';
    if (s.mode === 'netns') {
      await setLink(n.hostVeth!, true);
      return { node: name, mode: s.mode, how: `link ${n.hostVeth} set up` };
    }
    if (n.proc && isStopped(n.proc)) process.kill(n.proc.pid, 'SIGCONT');
    return { node: name, mode: s.mode, how: `agent (pid ${n.proc?.pid}) continued with SIGCONT` };
  });
}
