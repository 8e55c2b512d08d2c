/**
 * paictl parity end to end (seed 004): an OpenPAI configuration directory is imported and applied
 * through a pipe (`drover import openpai DIR | drover apply -f -`) onto two real agents; the
 * control plane comes up (real etcd, lab stand-ins for the Kubernetes binaries); `drover kubeconfig
 * admin` prints a working admin.conf; `drover clean` stops everything and keeps the data; `drover
 * clean --purge` deletes it; and the cluster can be deployed again.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { Agent } from '../../agent/agent.js';
import type { CoordinatorHandle } from '../../coordinator/daemon.js';
import {
  type RunResult,
  readyNodes,
  runCaptured,
  startJoinedAgents,
  startTestDaemon,
} from '../helpers/daemons.js';
import { paiConfigDir } from '../helpers/openpai-fixtures.js';
import { rmrf, tcpOpen } from '../helpers/proc.js';
import { waitFor } from '../helpers/servers.js';

const DROVER = join(process.cwd(), 'dist', 'drover.mjs');
const MASTER = { id: 'pai-m1', addr: '127.0.8.1' };
const WORKER = { id: 'pai-w1', addr: '127.0.8.2' };

let coord: CoordinatorHandle;
let dir: string;
let cfgDir: string;
let env: NodeJS.ProcessEnv;
const agents: Agent[] = [];

const sh = (script: string): Promise<RunResult> =>
  runCaptured('bash', ['-c', script], { env, timeout: 150_000 });
const drover = (args: string) => `'${process.execPath}' '${DROVER}' ${args}`;

const etcdDataDir = () => join(agents[0]!.options.rootDir, 'var/lib/etcd/etcd-0-e1');
const kubeletConfigDir = () => join(agents[0]!.options.rootDir, 'etc/drover/kubelet-0');

beforeAll(async () => {
  const d = await startTestDaemon({ name: 'seeds-openpai', standin: true });
  ({ dir, coord, cliEnv: env } = d);
  agents.push(
    ...(await startJoinedAgents(
      d.nats.url,
      // the import names the cluster after OpenPAI's clusterid: the hosts join it explicitly
      [MASTER, WORKER].map((n) => ({
        nodeId: n.id,
        advertiseAddress: n.addr,
        labels: { 'drover.dev/cluster': 'pai' },
      })),
    )),
  );
  await waitFor('two Ready agents', () => readyNodes(coord) === 2, { timeoutMs: 30_000 });
  // HA solution 3: one master (etcd + control plane) and one worker; OpenPAI names them by hostname
  cfgDir = paiConfigDir(
    [
      { hostname: MASTER.id, hostip: MASTER.addr, role: 'master', etcdid: 'etcd1' },
      { hostname: WORKER.id, hostip: WORKER.addr, role: 'worker' },
    ],
    { clusterid: 'pai' },
  );
}, 60_000);

afterAll(async () => {
  await coord?.close();
  rmrf(dir);
  if (cfgDir) rmrf(cfgDir);
});

describe('paictl parity with real agents', () => {
  it('deploy: import openpai | apply -f - --wait brings the control plane up on the pinned nodes', async () => {
    const r = await sh(
      `${drover(`import openpai '${cfgDir}'`)} | ${drover('apply -f - --wait --timeout 120s')}`,
    );
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/topology "pai" applied/);
    expect(r.stderr).toMatch(/warning: cluster\.clusterDNS/);
    const byNode = (id: string) =>
      coord.engine
        .currentAssignments('pai')
        .filter((a) => a.nodeId === id)
        .map((a) => a.role)
        .sort();
    expect(byNode(MASTER.id)).toEqual([
      'etcd',
      'kube-apiserver',
      'kube-controller-manager',
      'kube-proxy',
      'kube-scheduler',
      'kubelet',
    ]);
    expect(byNode(WORKER.id)).toEqual(['kube-proxy', 'kubelet']);
    expect(await tcpOpen(MASTER.addr, 2379)).toBe(true);
    expect(await tcpOpen(MASTER.addr, 6443)).toBe(true);
    expect(existsSync(etcdDataDir())).toBe(true);
  }, 150_000);

  it('install_kubectl: kubeconfig admin prints an admin.conf for the API endpoint', async () => {
    const file = join(dir, 'admin.conf');
    const r = await sh(`${drover('kubeconfig admin')} > '${file}'`);
    expect(r.code, r.stderr).toBe(0);
    const kc = parseYaml(readFileSync(file, 'utf8'));
    expect(kc.clusters[0].cluster.server).toBe(`https://${MASTER.addr}:6443`);
    expect(kc.users[0].user['client-key-data']).toBeTruthy();
    expect(r.stderr).toMatch(/keep it private/);
  });

  it('clean: every role stops and is removed on every node, data stays; --purge deletes it', async () => {
    const r = await sh(drover('clean --yes --wait --timeout 60s'));
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/cluster pai cleaned: 8 instance\(s\) on 2 node\(s\) stop; data is kept/);
    for (const a of agents) expect(a.runtime.list().filter((s) => s.state === 'running')).toEqual([]);
    await waitFor(
      'etcd and the API server port closed',
      async () => !(await tcpOpen(MASTER.addr, 2379)) && !(await tcpOpen(MASTER.addr, 6443)),
    );
    expect(existsSync(etcdDataDir())).toBe(true);
    expect(existsSync(kubeletConfigDir())).toBe(true);

    const p = await sh(drover('clean --purge --yes --wait --timeout 60s'));
    expect(p.code, `${p.stdout}\n${p.stderr}`).toBe(0);
    expect(p.stdout).toMatch(/path\(s\) on 2 node\(s\) are deleted/);
    await waitFor(
      'etcd data and configs purged',
      () => !existsSync(etcdDataDir()) && !existsSync(kubeletConfigDir()),
    );
    // the agent deleted only what the instances owned: its own state and the root stay
    expect(existsSync(agents[0]!.options.dataDir)).toBe(true);
    expect(existsSync(join(agents[0]!.options.rootDir, 'var/lib/etcd'))).toBe(true);
  }, 120_000);

  it('deploy again after a purge: a fresh cluster comes up', async () => {
    const r = await sh(
      `${drover(`import openpai '${cfgDir}'`)} | ${drover('apply -f - --wait --timeout 120s')}`,
    );
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(await coord.store.get('clean/pai')).toBeUndefined();
    expect(coord.engine.desiredPlan(MASTER.id)!.purge).toBeUndefined();
    expect(existsSync(etcdDataDir())).toBe(true);
    writeFileSync(join(dir, 'done'), 'ok');
  }, 150_000);
});
