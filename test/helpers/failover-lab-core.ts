import type { LabApi, LabAssignment, LabNodeState, LabState } from '../../lab/index.js';
import { LbClient } from './lab-client.js';
import {
  etcdHealthy,
  FAST_LIVENESS,
  haproxyBackends,
  isHealthy,
  lab,
  labApi,
  labUpArgs,
  logTails,
  readState,
} from './lab-e2e.js';
import { waitFor } from './wait.js';

/**
 * The parts the failover demos (test/e2e/failover*.test.ts, k8s-control-plane.test.ts) and the
 * failover bench share: bringing the lab up with the shortened timings and a load-balancer
 * client, tearing it down with the figures printed, and the waits each disruption ends with. No
 * vitest import here (benches run outside vitest); the expect-based checks are in failover-lab.ts.
 */

/** failed requests through the load balancer one disruption may cost */
export const FAILURE_BUDGET_MS = 2000;

/** heartbeat 1s, Unreachable after 4s, reassign after 2s, etcd reassign after 4s */
export const FAILOVER_TIMINGS = [...FAST_LIVENESS, '--reassign-after', '2s', '--etcd-reassign-after', '4s'];

export interface FailoverLab {
  state: LabState;
  api: LabApi;
  /** started: a new connection through the load balancer every 100 ms */
  client: LbClient;
  /** the control-plane host that runs nothing yet ('' when there is none) */
  spare: string;
  assignments: LabAssignment[];
}

/**
 * `drover lab up [flags] --subnet S` on free API and NATS ports with the failover timings; adds
 * the convergence time to `figures`. Throws with the lab's logs when it fails.
 */
export async function upFailoverLab(
  dir: string,
  o: {
    flags?: string[];
    subnet: string;
    figures: string[];
    /** the load-balancer client to start (default: plain `GET /version`, no client certificate) */
    makeClient?: (state: LabState, lb: LabNodeState) => LbClient;
  },
): Promise<FailoverLab> {
  const flags = o.flags ?? [];
  const what = ['lab up', ...flags].join(' ');
  const up = await lab(dir, labUpArgs([...flags, '--subnet', o.subnet, ...FAILOVER_TIMINGS]));
  if (up.code !== 0) {
    process.stderr.write(`${what} failed (${up.code}):\n${up.stdout}\n${up.stderr}\n${logTails(dir)}\n`);
    throw new Error(`drover ${what} exited ${up.code}: ${up.stderr}`);
  }
  o.figures.push(`${what} converged in ${(up.ms / 1000).toFixed(1)}s`);
  const state = readState(dir);
  const api = labApi(state);
  const lb = state.nodes.find((n) => n.pool === 'lb')!;
  const client = (o.makeClient?.(state, lb) ?? new LbClient(lb.address, 6443)).start();
  const assignments = await api.assignments();
  const spare =
    state.nodes.find((n) => n.pool === 'control-plane' && !assignments.some((a) => a.nodeId === n.name))
      ?.name ?? '';
  return { state, api, client, spare, assignments };
}

/** Stops the client, prints the figures, takes the lab down if it is still up, releases the lock. */
export async function downFailoverLab(o: {
  dir: string;
  client: LbClient | undefined;
  figures: string[];
  /** `loopback`, `netns`: how the figures are titled */
  kind: string;
  release: () => void;
}): Promise<void> {
  await o.client?.stop();
  if (o.client) o.figures.push(`LB overall: ${o.client.summary()}`);
  process.stdout.write(
    `\nFIGURES (${o.kind} lab, 2-core CI, shortened timings):\n  ${o.figures.join('\n  ')}\n`,
  );
  try {
    if (labStateReadable(o.dir)) await lab(o.dir, ['down']);
  } finally {
    o.release();
  }
}

export function labStateReadable(dir: string): boolean {
  try {
    readState(dir);
    return true;
  } catch {
    return false;
  }
}

/** Waits until every instance in `ids` is assigned to `node` and healthy; returns when. */
export function waitHealthyOn(api: LabApi, ids: string[], node: string, timeoutMs = 90_000): Promise<number> {
  return waitFor(
    `${ids.join(', ')} healthy on ${node}`,
    async () => {
      const now = await api.assignments();
      const ok = ids.every((id) => {
        const a = now.find((x) => x.instanceId === id);
        return a && a.nodeId === node && isHealthy(a);
      });
      return ok ? Date.now() : undefined;
    },
    { timeoutMs, intervalMs: 250 },
  );
}

/** Waits until the rendered haproxy.cfg lists exactly `apiHosts` as backends. */
export async function waitHaproxyBackends(what: string, state: LabState, apiHosts: string[]): Promise<void> {
  await waitFor(what, () => JSON.stringify(haproxyBackends(state)) === JSON.stringify(apiHosts), {
    timeoutMs: 10_000,
  });
}

/** Waits until every member answers `endpoint health`. */
export async function waitEtcdHealthy(s: Pick<LabState, 'dir'>, members: string[]): Promise<void> {
  await waitFor(
    'etcd endpoint health on all three members',
    async () => (await etcdHealthy(s, members)) === 3,
    {
      timeoutMs: 45_000,
      intervalMs: 1000,
    },
  );
}

/** Waits until the API says `node` is Ready. */
export async function waitNodeReady(api: LabApi, node: string, timeoutMs: number): Promise<void> {
  await waitFor(
    `${node} Ready again`,
    async () => (await api.nodes()).find((n) => n.id === node)?.state === 'Ready',
    { timeoutMs, intervalMs: 250 },
  );
}
