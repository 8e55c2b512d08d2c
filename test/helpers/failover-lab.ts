import { expect, onTestFailed } from 'vitest';
import type { LabApi, LabState } from '../../lab/index.js';
import { FAILURE_BUDGET_MS } from './failover-lab-core.js';
import type { LbClient } from './lab-client.js';
import { logTails, runningInstances, sleep } from './lab-e2e.js';

/**
 * The expect-based checks the failover demos (test/e2e/failover*.test.ts) end their disruptions
 * with; bringing the lab up and down and the waits are in failover-lab-core.ts (re-exported).
 */
export * from './failover-lab-core.js';

/** When the current test fails, prints the tails of the lab's logs. */
export function dumpLabLogsOnFailure(dir: string): void {
  onTestFailed(() => {
    process.stderr.write(`\n==== lab logs (${dir})\n${logTails(dir)}\n`);
  });
}

/** Every assignment runs on its node, and every running instance on exactly one host. */
export async function expectNothingRunsTwice(api: LabApi, state: LabState): Promise<Map<string, string[]>> {
  const assignments = await api.assignments();
  const running = runningInstances(state);
  for (const a of assignments) expect(running.get(a.instanceId), a.instanceId).toEqual([a.nodeId]);
  for (const [id, hosts] of running) expect(hosts, `${id} runs on ${hosts.join(', ')}`).toHaveLength(1);
  return running;
}

/**
 * Two more seconds of load-balancer samples, then the figure for the disruption (from `t0`) and
 * the check that its failed requests stay within FAILURE_BUDGET_MS.
 */
export async function expectWithinBudget(
  client: LbClient,
  t0: number,
  figures: string[],
  figure: (lb: string) => string,
  settleMs = 2000,
): Promise<void> {
  if (settleMs) await sleep(settleMs);
  const until = Date.now();
  figures.push(figure(client.summary(t0, until)));
  expect(client.failedMs(t0, until), client.summary(t0, until)).toBeLessThanOrEqual(FAILURE_BUDGET_MS);
}
