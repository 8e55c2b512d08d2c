import { resolve } from 'node:path';
import type { LabNodeView, LabRoleView, LabStatusView } from './api.js';
import { type RoleProcess, roleProcesses } from './collect.js';
import { labApiOf, natsHealthy, serviceProc } from './control.js';
import { type HaStatus, haStatus } from './ha.js';
import { CLUSTER_LABEL } from './layout.js';
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
  api?: Pick<LabNodeView, 'state' | 'instances'> & {
    plan: Pick<LabNodeView['plan'], 'converged' | 'generation'>;
  };
}

/**
 * A control service as /proc and its health endpoint see it: `running` (the process lives and
 * answers: nats-server's /healthz, the coordinator's /readyz), `unhealthy` (it lives but does not
 * answer), `down` (no process).
 */
export type ServiceStatus = 'running' | 'unhealthy' | 'down';

export interface LabStatusReport {
  state: LabState;
  nats: ServiceStatus;
  natsPid?: number;
  coordinator: ServiceStatus;
  coordinatorPid?: number;
  /**
   * The fleet's convergence from the live API (GET /v1/status); undefined when the coordinator
   * cannot be asked: never "converged" then.
   */
  converged?: boolean;
  /** what keeps the lab from being all up and converged; empty: `lab status` exits 0 */
  problems: string[];
  /** worth knowing, but not a failure (a service running under a pid lab.json did not record) */
  notes: string[];
  nodes: LabNodeReport[];
  roles?: LabRoleView[];
  status?: LabStatusView;
  apiError?: string;
  /**
   * Instance ids with live processes on more than one host. `stale` when one of those hosts is
   * partitioned: its copy is the fenced one, stopped when it heals; otherwise fencing failed.
   */
  duplicates: Array<{ instanceId: string; nodes: string[]; stale: boolean }>;
  /** `lab up --ha`: each nats-server and coordinator, and who leads */
  ha?: HaStatus;
}

/**
 * Which hosts run a process for each instance id (from pidfiles + /proc, not from Drover's view).
 * Instance ids are per cluster: in a lab of several clusters the key is `<cluster>/<id>`.
 */
export function runningInstances(s: LabState): Map<string, string[]> {
  const m = new Map<string, string[]>();
  const clusters = new Set(s.nodes.map((n) => n.labels[CLUSTER_LABEL]));
  for (const n of s.nodes)
    for (const r of roleProcesses(n)) {
      const key = clusters.size > 1 ? `${n.labels[CLUSTER_LABEL] ?? ''}/${r.instanceId}` : r.instanceId;
      const list = m.get(key) ?? [];
      list.push(n.name);
      m.set(key, list);
    }
  return m;
}

export async function labStatus(opts: { dir: string }): Promise<LabStatusReport> {
  const s = readState(resolve(opts.dir));
  const problems: string[] = [];
  const notes: string[] = [];
  // the processes that really run, not the pids lab.json remembers (a service restarted by
  // hand is found by its command line)
  let natsProc = serviceProc(s, 'nats');
  let coordProc = serviceProc(s, 'coordinator');
  const api = labApiOf(s, 3000);
  let nats: ServiceStatus;
  let coordinator: ServiceStatus;
  const ha = s.ha ? await haStatus(s) : undefined;
  if (ha) {
    // --ha: the bus stands while a majority of its servers does; the control plane while one leads
    ({ nats, coordinator } = ha);
    problems.push(...ha.problems);
    const leader = ha.coordinators.find((c) => c.role === 'leader' && c.pid);
    coordProc = { proc: leader?.pid ? { pid: leader.pid, startTime: '' } : coordProc.proc, recorded: true };
    natsProc = {
      proc:
        natsProc.proc ??
        (nats !== 'down' ? { pid: ha.servers.find((n) => n.pid)!.pid!, startTime: '' } : undefined),
      recorded: true,
    };
  } else {
    const [natsUp, coordReady] = await Promise.all([
      natsProc.proc ? natsHealthy(s) : false,
      coordProc.proc ? api.ready() : false,
    ]);
    nats = !natsProc.proc ? 'down' : natsUp ? 'running' : 'unhealthy';
    coordinator = !coordProc.proc ? 'down' : coordReady ? 'running' : 'unhealthy';
    if (nats === 'down') problems.push(`nats-server is down (\`drover lab start nats\`)`);
    else if (nats === 'unhealthy')
      problems.push(`nats-server (pid ${natsProc.proc!.pid}) does not answer ${s.nats.monitorUrl}/healthz`);
    if (coordinator === 'down') problems.push(`the coordinator is down (\`drover lab start coordinator\`)`);
    else if (coordinator === 'unhealthy')
      problems.push(
        `the coordinator (pid ${coordProc.proc!.pid}) is not ready: ${s.coordinator.apiUrl}/readyz does not answer 200`,
      );
  }
  for (const [which, p] of [
    ['nats-server', natsProc],
    ['the coordinator', coordProc],
  ] as const)
    if (p.proc && !p.recorded)
      notes.push(
        `${which} runs as pid ${p.proc.pid}, which lab.json did not record (started outside the lab; \`drover lab start\` adopts it)`,
      );

  let apiNodes: LabNodeView[] | undefined;
  let roles: LabRoleView[] | undefined;
  let status: LabStatusView | undefined;
  let apiError: string | undefined;
  if (!coordProc.proc) apiError = 'the coordinator is not running';
  else
    try {
      [apiNodes, roles, status] = await Promise.all([api.nodes(), api.roles(), api.status()]);
    } catch (err) {
      apiError = (err as Error).message;
    }
  // a coordinator that is not ready (no NATS) answers from what it last heard: not the truth
  const converged = status && coordinator === 'running' && nats === 'running' ? status.converged : undefined;
  if (status && converged === undefined)
    apiError = `the coordinator is not ready${nats === 'running' ? '' : ' (nats-server is not running)'}: its view is stale`;
  if (converged === false) {
    const reasons = status!.clusters.flatMap((c) => c.reasons.map((r) => `${c.name}: ${r}`));
    problems.push(`not converged${reasons.length ? `: ${reasons.slice(0, 5).join('; ')}` : ''}`);
  } else if (converged === undefined && coordinator === 'running')
    problems.push(`convergence unknown: the coordinator API cannot be asked (${apiError})`);

  const nodes: LabNodeReport[] = s.nodes.map((n) => {
    const alive = isAlive(n.proc);
    const v = apiNodes?.find((x) => x.id === n.name);
    const agent = !alive ? 'down' : isStopped(n.proc) ? 'frozen' : 'running';
    if (agent === 'down')
      problems.push(
        `the agent of ${n.name} is down${n.state === 'killed' ? ' (`lab kill-host`; `drover lab revive` starts it)' : ''}`,
      );
    else if (n.state === 'partitioned')
      problems.push(`${n.name} is partitioned (\`drover lab heal ${n.name}\`)`);
    else if (agent === 'frozen')
      problems.push(`the agent of ${n.name} is stopped (SIGSTOP; SIGCONT resumes it)`);
    return {
      name: n.name,
      pool: n.pool,
      address: n.address,
      labState: n.state,
      agent,
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
  for (const d of duplicates)
    if (!d.stale) problems.push(`${d.instanceId} runs on ${d.nodes.join(' and ')}: fencing failed`);
  return {
    state: s,
    ...(ha ? { ha } : {}),
    nats,
    ...(natsProc.proc ? { natsPid: natsProc.proc.pid } : {}),
    coordinator,
    ...(coordProc.proc ? { coordinatorPid: coordProc.proc.pid } : {}),
    ...(converged !== undefined ? { converged } : {}),
    problems,
    notes,
    nodes,
    ...(roles ? { roles } : {}),
    ...(status ? { status } : {}),
    ...(apiError ? { apiError } : {}),
    duplicates,
  };
}
