import { resolve } from 'node:path';
import { LabApi, type LabNodeView, type LabRoleView, type LabStatusView } from './api.js';
import { type RoleProcess, roleProcesses } from './collect.js';
import { isAlive, isStopped } from './procs.js';
import { type LabState, readState } from './state.js';

export interface LabNodeReport {
  name: string;
  pool: string;
  address: string;
  /** what the lab did to it: running, killed, partitioned */
  labState: string;
  /** the agent process as /proc sees it */
  agent: 'running' | 'frozen' | 'down';
  pid?: number;
  /** role processes actually running on this host (the agent's pidfiles, checked in /proc) */
  processes: RoleProcess[];
  /** what the coordinator says (absent when the API is unreachable) */
  api?: Pick<LabNodeView, 'state' | 'plan' | 'instances'>;
}

export interface LabStatusReport {
  state: LabState;
  nats: 'running' | 'down';
  coordinator: 'running' | 'down';
  nodes: LabNodeReport[];
  roles?: LabRoleView[];
  status?: LabStatusView;
  apiError?: string;
  /**
   * Instance ids with live processes on more than one host. `stale` when one of those hosts is
   * partitioned: its copy is the fenced one, stopped when it heals; otherwise fencing failed.
   */
  duplicates: Array<{ instanceId: string; nodes: string[]; stale: boolean }>;
}

/** Which hosts run a process for each instance id (from pidfiles + /proc, not from Drover's view). */
export function runningInstances(s: LabState): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const n of s.nodes)
    for (const r of roleProcesses(n)) {
      const list = m.get(r.instanceId) ?? [];
      list.push(n.name);
      m.set(r.instanceId, list);
    }
  return m;
}

export async function labStatus(opts: { dir: string }): Promise<LabStatusReport> {
  const s = readState(resolve(opts.dir));
  const api = new LabApi(s.coordinator.apiUrl, s.coordinator.adminTokenFile, 3000);
  let apiNodes: LabNodeView[] | undefined;
  let roles: LabRoleView[] | undefined;
  let status: LabStatusView | undefined;
  let apiError: string | undefined;
  try {
    [apiNodes, roles, status] = await Promise.all([api.nodes(), api.roles(), api.status()]);
  } catch (err) {
    apiError = (err as Error).message;
  }
  const nodes: LabNodeReport[] = s.nodes.map((n) => {
    const alive = isAlive(n.proc);
    const v = apiNodes?.find((x) => x.id === n.name);
    return {
      name: n.name,
      pool: n.pool,
      address: n.address,
      labState: n.state,
      agent: !alive ? 'down' : isStopped(n.proc) ? 'frozen' : 'running',
      ...(alive && n.proc ? { pid: n.proc.pid } : {}),
      processes: roleProcesses(n),
      ...(v ? { api: { state: v.state, plan: v.plan, instances: v.instances } } : {}),
    };
  });
  const duplicates = [...runningInstances(s)]
    .filter(([, hosts]) => hosts.length > 1)
    .map(([instanceId, hosts]) => ({
      instanceId,
      nodes: hosts,
      stale: hosts.some((h) => s.nodes.find((n) => n.name === h)?.state === 'partitioned'),
    }));
  return {
    state: s,
    nats: isAlive(s.nats.proc) ? 'running' : 'down',
    coordinator: isAlive(s.coordinator.proc) ? 'running' : 'down',
    nodes,
    ...(roles ? { roles } : {}),
    ...(status ? { status } : {}),
    ...(apiError ? { apiError } : {}),
    duplicates,
  };
}
