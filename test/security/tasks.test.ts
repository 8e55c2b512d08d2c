import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from '../../agent/agent.js';
import { parseTopology } from '../../coordinator/topology/index.js';
import {
  decodeMessage,
  encode,
  generateSigningKey,
  PROTOCOL_VERSION,
  type SignedTask,
  type SigningKeyPair,
  signingKeyFromPem,
  signTask,
  subjects,
  type Task,
  type TaskResult,
} from '../../protocol/index.js';
import { startTestAgent, testAgentOptions } from '../helpers/agent-harness.js';
import { startTestDaemon, type TestDaemon } from '../helpers/daemons.js';
import { waitFor } from '../helpers/servers.js';

/**
 * Issue 15, point 6: tasks are signed like plans, with an issue time and an expiry, and the agent
 * refuses a replayed, expired, unsigned, forged or misaddressed task — running nothing. Real
 * nats-server, the real coordinator (in process), one real agent (process runtime) running a
 * `web` sleeper; the attacker is a plain NATS client publishing on the agent's task subject (the
 * test nats-server has no authorisation: that is the threat). "Ran nothing" is checked on the
 * agent's task counter and on the sleeper, which a `stop` task would stop.
 */

const NODE = 'st-a';
const TOPOLOGY = `
apiVersion: drover.dev/v1
kind: Topology
metadata: { name: st }
cluster: { name: st }
customRoles:
  web:
    command: /bin/sleep
    args: ["1000"]
roles:
  web: { replicas: 1 }
`;

let d: TestDaemon;
let agent: Agent;
let attacker: NatsConnection;
/** the coordinator's plan-signing key, read from its data dir: a validly signed task can still be refused */
let coordinatorKey: SigningKeyPair;
/** every task envelope seen on the node's subject (what an eavesdropper captures) */
const captured: SignedTask[] = [];

const webPid = () => agent.runtime.status('web#0')?.pid;

async function send(body: unknown, node = NODE): Promise<TaskResult> {
  const m = await attacker.request(subjects.task(node), encode(body), { timeout: 10_000 });
  return decodeMessage('TaskResult', m.data);
}

function task(over: Partial<Task> = {}): Task {
  const now = Date.now();
  return {
    v: PROTOCOL_VERSION,
    type: 'task',
    id: `evil-${Math.random().toString(36).slice(2, 10)}`,
    nodeId: NODE,
    kind: 'stop',
    instanceId: 'web#0',
    timeoutMs: 5000,
    issuedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + 7000).toISOString(),
    ...over,
  };
}

/** Sends `body`, expects the refusal `code`, and checks that nothing ran. */
async function refused(body: unknown, code: string): Promise<TaskResult> {
  const runBefore = agent.counters().tasksRun;
  const pid = webPid();
  const r = await send(body);
  expect(r.ok, JSON.stringify(r)).toBe(false);
  expect(r.error?.code, r.error?.message).toBe(code);
  expect(agent.counters().tasksRun).toBe(runBefore);
  expect(webPid()).toBe(pid);
  expect(agent.runtime.status('web#0')?.state).toBe('running');
  return r;
}

beforeAll(async () => {
  d = await startTestDaemon({ name: 'signed-tasks' });
  coordinatorKey = signingKeyFromPem(
    readFileSync(join(d.dir, 'coordinator', 'plan-signing-key.pem'), 'utf8'),
  );
  // The bus lets only the coordinator publish tasks (test/security covers that); this attacker
  // has got past it (a leaked coordinator creds file, a misconfigured server): the agent's
  // signature, expiry and replay checks are the second line, tested here.
  attacker = await d.nats.connectAs({ coordinator: true }, { name: 'attacker' });
  attacker.subscribe(subjects.task(NODE), {
    callback: (_e, m) => {
      try {
        captured.push(decodeMessage('SignedTask', m.data));
      } catch {
        // our own forged messages
      }
    },
  });
  const opts = testAgentOptions(d.nats.url, {
    nodeId: NODE,
    advertiseAddress: '127.0.94.2',
    labels: { pool: 'w', 'drover.dev/cluster': 'st' },
  });
  agent = await startTestAgent(opts);
  await waitFor('node registered', () => d.coord.engine.nodes.get(NODE), { timeoutMs: 20_000 });
  await d.coord.engine.applyTopology(parseTopology(TOPOLOGY, 'st.yaml'));
  await waitFor('web#0 running', () => agent.runtime.status('web#0')?.state === 'running', {
    timeoutMs: 30_000,
  });
}, 90_000);

afterAll(async () => {
  await attacker?.close();
  await d?.coord.close();
  await d?.nats.stop();
});

describe('signed tasks (issue 15, point 6)', () => {
  it('the coordinator signs its tasks; the agent runs them once', async () => {
    const r = await d.coord.engine.runTask({ nodeId: NODE, kind: 'diagnostics', instanceId: 'web#0' });
    expect(r.ok, JSON.stringify(r.error)).toBe(true);
    const env = await waitFor('the task seen on the wire', () => captured.at(-1));
    expect(env.signature).toBeTruthy();
    expect(env.keyId).toBe(coordinatorKey.fingerprint);
    expect(env.task.nodeId).toBe(NODE);
    expect(Date.parse(env.task.expiresAt) - Date.parse(env.task.issuedAt)).toBe(env.task.timeoutMs + 2000);
  });

  it('an expired task is refused, even validly signed', async () => {
    const past = Date.now() - 10 * 60_000;
    await refused(
      signTask(
        task({ issuedAt: new Date(past).toISOString(), expiresAt: new Date(past + 7000).toISOString() }),
        coordinatorKey,
      ),
      'DROVER_ERR_TASK_EXPIRED',
    );
  });

  it('an unsigned task is refused: a bare Task (an older coordinator) and an envelope without a signature', async () => {
    const bare = await refused(task(), 'DROVER_ERR_TASK_UNSIGNED');
    expect(bare.error?.message).toMatch(/older than signed tasks/);
    const { signature: _s, ...unsigned } = signTask(task(), coordinatorKey);
    await refused(unsigned, 'DROVER_ERR_TASK_UNSIGNED');
  });

  it('a forged task is refused: signed by another key, or altered after signing', async () => {
    await refused(signTask(task(), generateSigningKey()), 'DROVER_ERR_TASK_SIGNATURE');
    const good = signTask(task({ kind: 'diagnostics', instanceId: undefined }), coordinatorKey);
    await refused(
      { ...good, task: { ...good.task, kind: 'stop', instanceId: 'web#0' } },
      'DROVER_ERR_TASK_SIGNATURE',
    );
  });

  it('a task for another node is refused, even validly signed', async () => {
    const r = await refused(
      signTask(task({ nodeId: 'st-other' }), coordinatorKey),
      'DROVER_ERR_TASK_WRONG_NODE',
    );
    expect(r.error?.message).toContain('st-other');
  });

  it('malformed bytes are answered with a decode error and run nothing', async () => {
    await refused({ v: PROTOCOL_VERSION, type: 'task-push', task: { id: 'x' } }, 'DROVER_ERR_DECODE');
  });
  // last: the agent it restarts is stopped when this test ends
  it('a replayed task is refused, and still refused after the agent restarts', async () => {
    const r = await d.coord.engine.runTask({ nodeId: NODE, kind: 'diagnostics', instanceId: 'web#0' });
    expect(r.ok).toBe(true);
    const env = await waitFor('the task seen on the wire', () => captured.find((c) => c.task.id === r.id));
    // the eavesdropper turns the captured diagnostics into nothing: it can only replay it as it was
    const first = await refused(env, 'DROVER_ERR_TASK_REPLAYED');
    expect(first.error?.message).toContain(env.task.id);
    // a replay of a captured stop task would stop web#0: sign one as the coordinator would, run
    // it once for real, start web#0 again, then replay the stop across an agent restart
    const stop = signTask(task({ kind: 'stop' }), coordinatorKey);
    expect((await send(stop)).ok).toBe(true);
    expect((await d.coord.engine.runTask({ nodeId: NODE, kind: 'start', instanceId: 'web#0' })).ok).toBe(
      true,
    );
    await waitFor('web#0 running again', () => agent.runtime.status('web#0')?.state === 'running');
    const opts = agent.options;
    await agent.close();
    agent = await startTestAgent(opts);
    await waitFor('web#0 re-adopted', () => agent.runtime.status('web#0')?.state === 'running', {
      timeoutMs: 30_000,
    });
    await waitFor('agent registered again', () => agent.session?.currentState === 'ready', {
      timeoutMs: 20_000,
    });
    await refused(stop, 'DROVER_ERR_TASK_REPLAYED');
  }, 90_000);
});
