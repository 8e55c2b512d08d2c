import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { roleProcesses } from '../../lab/collect.js';
import type { LabState } from '../../lab/index.js';
import { CLI, labLeftovers, labOk, readState } from '../helpers/lab-e2e.js';
import { labCliEnv, labSession, labUp } from '../helpers/lab-session.js';
import { paiConfigDir } from '../helpers/openpai-fixtures.js';
import { rmrf, tempDir, waitFor } from '../helpers/proc.js';

/**
 * A new user's report, replayed with real processes (nats-server, coordinator, 7 agents, etcd,
 * haproxy, stand-ins): `drover lab up` (examples/ha.yaml, cluster `ha`), then the documented
 * `drover import openpai DIR | drover apply -f -` pinning lab hosts. The second topology used to
 * re-home every unlabelled node (nodes without a cluster belonged to "the only topology"): the
 * OpenPAI instances failed with "pinned to node cp-1, which is not known", a later apply of ha.yaml
 * removed all 17 of its instances after a dry run that showed something else, and the agents kept
 * the processes running, unmanaged.
 *
 * Now membership is explicit (the lab labels its hosts `drover.dev/cluster: ha`): the second
 * topology takes no node; its pinned instances say which cluster the node is in; a dry run is what
 * the apply then does; `drover label` moves a node explicitly (refused while it runs instances,
 * unless --force); a node left in a cluster without a topology gets an empty plan and a
 * `node.orphaned` event, and its processes stop.
 */

interface Row {
  instanceId: string;
  role: string;
  nodeId: string;
  epoch: number;
  cluster: string;
}
interface Diff {
  dryRun: boolean;
  cluster: string;
  added: Row[];
  moved: Array<{ from: Row; to: Row }>;
  removed: Row[];
  unplaced: Array<{ instanceId: string; reason: string }>;
  nodesChanged: string[];
}
interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

const HA = new URL('../../examples/ha.yaml', import.meta.url).pathname;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe('lab: a second topology (an OpenPAI import) beside examples/ha.yaml', () => {
  const dir = tempDir('lab-second');
  let cfgDir = '';
  const lock = labSession(dir, () => {
    if (cfgDir) rmrf(cfgDir);
  });

  it('takes no node of ha, says why its pins cannot be placed, previews exactly what applies, and moves nodes only when labelled', async () => {
    await lock.take();
    const started = await labUp(dir, ['--subnet', '127.0.84']);
    expect(started.code).toBe(0);
    const state = readState(dir);
    const env = labCliEnv(dir);
    const sh = (script: string): Promise<RunResult> =>
      new Promise((resolve) =>
        execFile(
          'bash',
          ['-c', script],
          { env, timeout: 60_000, maxBuffer: 4 << 20 },
          (err, stdout, stderr) =>
            resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
        ),
      );
    const drover = (args: string) => sh(`'${process.execPath}' '${CLI}' ${args}`);
    const json = async <T>(args: string): Promise<T> => {
      const r = await drover(`${args} -o json`);
      expect(r.code, `drover ${args}: ${r.stderr}`).toBe(0);
      return JSON.parse(r.stdout) as T;
    };
    const token = readFileSync(state.coordinator.adminTokenFile, 'utf8').trim();
    const api = async <T>(path: string): Promise<T> => {
      const r = await fetch(`${state.coordinator.apiUrl}${path}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(r.status, path).toBe(200);
      return (await r.json()) as T;
    };
    const assignments = async (cluster: string) =>
      (await api<{ items: Row[] }>(`/v1/assignments?cluster=${cluster}`)).items
        .map((a) => `${a.instanceId}@${a.nodeId}/${a.epoch}`)
        .sort();
    const nodeClusters = async () =>
      Object.fromEntries(
        (await api<{ items: Array<{ id: string; cluster: string }> }>('/v1/nodes')).items.map((n) => [
          n.id,
          n.cluster,
        ]),
      );
    const processes = (s: LabState) =>
      s.nodes.flatMap((n) => roleProcesses(n).map((p) => `${n.name}:${p.instanceId}:${p.pid}`)).sort();
    const events = async (kind: string) =>
      (
        await api<{ items: Array<{ kind: string; nodeId?: string; message: string; cluster?: string }> }>(
          `/v1/events?kind=${kind}&limit=500`,
        )
      ).items;

    // the lab labelled every host explicitly
    const clusters = await nodeClusters();
    expect(Object.values(clusters)).toEqual(state.nodes.map(() => 'ha'));
    const haBefore = await assignments('ha');
    expect(haBefore).toHaveLength(17);
    const procsBefore = processes(state);
    expect(procsBefore).toHaveLength(17);

    // the user's step: OpenPAI's layout names lab hosts (cp-1 as master, worker-2 as worker)
    const addr = (name: string) => state.nodes.find((n) => n.name === name)!.address;
    cfgDir = paiConfigDir(
      [
        { hostname: 'cp-1', hostip: addr('cp-1'), role: 'master', etcdid: 'etcd1' },
        { hostname: 'worker-2', hostip: addr('worker-2'), role: 'worker' },
      ],
      { clusterid: 'openpai' },
    );
    const imported = await sh(
      `'${process.execPath}' '${CLI}' import openpai '${cfgDir}' | '${process.execPath}' '${CLI}' apply -f -`,
    );
    // applied, but its pinned instances cannot be placed: exit 1, and stderr says so
    expect(imported.code, imported.stderr).toBe(1);
    expect(imported.stderr).toMatch(/cannot be placed; the topology was applied all the same/);
    expect(imported.stdout).toMatch(/topology "openpai" applied/);
    // every OpenPAI instance is pinned to a node of cluster ha, and says so
    expect(imported.stdout).toMatch(
      /! \S+ cannot be placed: \S+: pinned to node cp-1, which is in cluster ha, not openpai: a node joins a cluster only explicitly \(`drover label cp-1 drover.dev\/cluster=openpai`\)/,
    );
    expect(imported.stdout).not.toMatch(/ \+ /);
    expect(imported.stdout).not.toMatch(/not known/);
    await sleep(3000); // several heartbeats and reconciles
    expect(await nodeClusters()).toEqual(clusters);
    expect(await assignments('ha')).toEqual(haBefore);
    expect(await assignments('openpai')).toEqual([]);
    expect(processes(state)).toEqual(procsBefore);
    const pai = await api<{ unplaced: Array<{ instanceId: string; reason: string }> }>(
      '/v1/assignments?cluster=openpai',
    );
    expect(pai.unplaced.length).toBeGreaterThan(0);
    for (const u of pai.unplaced)
      expect(u.reason).toMatch(/pinned to node (cp-1|worker-2), which is in cluster ha/);

    // re-applying ha.yaml: the dry run shows nothing, and nothing happens
    const dry = await json<Diff>(`diff -f '${HA}'`);
    expect([dry.added, dry.moved, dry.removed, dry.unplaced, dry.nodesChanged]).toEqual([[], [], [], [], []]);
    const same = await json<Diff>(`apply -f '${HA}'`);
    expect({ ...same, dryRun: true }).toEqual(dry);
    await sleep(2000);
    expect(await assignments('ha')).toEqual(haBefore);
    expect(processes(state)).toEqual(procsBefore);

    // a real change: the dry run is exactly what the apply then does
    const smaller = join(dir, 'ha-2-schedulers.yaml');
    const text = readFileSync(HA, 'utf8');
    writeFileSync(smaller, text.replace(/(kube-scheduler:\n\s+replicas:) 3/, '$1 2'));
    const preview = await json<Diff>(`diff -f '${smaller}'`);
    expect(preview.removed.map((a) => a.instanceId)).toEqual(['kube-scheduler#2']);
    expect([preview.added, preview.moved]).toEqual([[], []]);
    const removedBefore = (await events('role.removed')).length;
    const applied = await json<Diff>(`apply -f '${smaller}'`);
    expect({ ...applied, dryRun: true }).toEqual(preview);
    const expected = haBefore.filter((a) => !preview.removed.some((r) => a.startsWith(`${r.instanceId}@`)));
    await waitFor('the apply to happen', async () => (await assignments('ha')).length === expected.length, {
      timeoutMs: 10_000,
    });
    await sleep(1500);
    expect(await assignments('ha')).toEqual(expected);
    const removedEvents = (await events('role.removed')).slice(removedBefore);
    expect(removedEvents.map((e) => e.message)).toEqual([
      `kube-scheduler#2 removed from ${preview.removed[0]!.nodeId}`,
    ]);
    const gone = `${preview.removed[0]!.nodeId}:kube-scheduler#2:`;
    await waitFor('kube-scheduler#2 to stop', () => !processes(state).some((p) => p.startsWith(gone)), {
      timeoutMs: 15_000,
    });

    // `drover label`: moving a node that runs ha's instances is refused, and changes nothing
    const refused = await drover('label cp-1 drover.dev/cluster=openpai');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/node cp-1 still runs \d+ instance\(s\) of cluster ha \(.*etcd#0.*\)/);
    const bad = await drover('label cp-1 Bad_Key!=x');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/invalid label: key "Bad_Key!"/);
    expect((await nodeClusters())['cp-1']).toBe('ha');

    // --force moves worker-2 explicitly: ha's kubelet and kube-proxy leave it, openpai places its pins there
    const w2Before = processes(state).filter((p) => p.startsWith('worker-2:'));
    expect(w2Before.length).toBe(2);
    const moved = await drover('label worker-2 drover.dev/cluster=openpai --force');
    expect(moved.code, moved.stderr).toBe(0);
    expect(moved.stdout).toMatch(/node worker-2 labelled; it moved from cluster ha to openpai/);
    expect((await events('node.cluster-changed')).map((e) => e.message)).toEqual([
      expect.stringMatching(/^node worker-2 moved from cluster ha to cluster openpai \(forced: /),
    ]);
    await waitFor(
      'openpai to place its worker pins on worker-2',
      async () => (await assignments('openpai')).some((a) => a.includes('@worker-2/')),
      { timeoutMs: 15_000 },
    );
    const paiNow = await api<{ unplaced: Array<{ reason: string }> }>('/v1/assignments?cluster=openpai');
    expect(paiNow.unplaced.some((u) => /worker-2/.test(u.reason))).toBe(false);
    expect((await assignments('ha')).some((a) => a.includes('@worker-2/'))).toBe(false);
    await waitFor(
      "ha's instances to stop on worker-2",
      () => !processes(state).some((p) => w2Before.includes(p)),
      { timeoutMs: 20_000 },
    );

    // a node moved into a cluster without a topology: an empty plan, an event, its processes stop
    const w1 = processes(state).filter((p) => p.startsWith('worker-1:'));
    expect(w1.length).toBe(2);
    const orphan = await drover('label worker-1 drover.dev/cluster=nowhere --force');
    expect(orphan.code, orphan.stderr).toBe(0);
    await waitFor(
      'worker-1 to stop what it ran',
      () => !processes(state).some((p) => p.startsWith('worker-1:')),
      {
        timeoutMs: 20_000,
      },
    );
    const orphaned = (await events('node.orphaned')).filter((e) => e.nodeId === 'worker-1');
    expect(orphaned).toHaveLength(1);
    expect(orphaned[0]!.message).toMatch(
      /^node worker-1 is in cluster nowhere, which has no topology: its plan is now empty and its agent stops kube-proxy#\d, kubelet#\d/,
    );

    await labOk(dir, ['down']);
    expect(await labLeftovers(state)).toEqual([]);
  }, 300_000);
});
