import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseTopology, validateTopology } from '../../coordinator/topology/index.js';
import { paiConfigDir, paiKubernetesYaml } from '../helpers/openpai-fixtures.js';
import { rmrf } from '../helpers/proc.js';
import { droverCli } from '../helpers/seeds.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmrf(d);
});

const SOLUTION_2 = [
  { hostname: 'm1', hostip: '10.0.0.11', role: 'master' as const, etcdid: 'e1', dashboard: true },
  { hostname: 'm2', hostip: '10.0.0.12', role: 'master' as const, etcdid: 'e2' },
  { hostname: 'm3', hostip: '10.0.0.13', role: 'master' as const, etcdid: 'e3' },
  { hostname: 'w1', hostip: '10.0.0.21', role: 'worker' as const },
  { hostname: 'lb', hostip: '10.0.0.5', role: 'proxy' as const },
];

describe('drover import openpai', () => {
  it('prints a topology (YAML by default) that drover apply accepts; warnings go to stderr', async () => {
    const dir = paiConfigDir(SOLUTION_2, { lb: '10.0.0.5' });
    dirs.push(dir);
    const r = await droverCli(['import', 'openpai', dir]);
    expect(r.code, r.stderr).toBe(0);
    // stdout is only the topology: it parses and validates as the file `apply -f -` would read
    const t = parseTopology(r.stdout, 'stdout');
    expect(t.metadata.name).toBe('pai-test');
    expect(t.cluster.apiEndpoint).toEqual({ mode: 'haproxy', address: '10.0.0.5', port: 6443 });
    expect(t.roles.etcd!.pins).toEqual(['m1', 'm2', 'm3']);
    expect(t.roles.kubelet!.pins).toEqual(['m1', 'm2', 'm3', 'w1']);
    expect(t.roles['load-balancer']!.pins).toEqual(['lb']);
    expect(t.roles.dashboard!.pins).toEqual(['m1']);
    expect(r.stderr).toMatch(/^warning: cluster\.clusterDNS set to 10\.254\.0\.10/m);
    expect(r.stdout).not.toMatch(/warning/);
  });

  it('-o json prints JSON; --cluster renames the cluster; a single FILE works too', async () => {
    const dir = paiConfigDir(SOLUTION_2.slice(0, 1).concat([SOLUTION_2[3]!]));
    dirs.push(dir);
    const file = join(dir, 'all.yaml');
    const { readFileSync } = await import('node:fs');
    writeFileSync(
      file,
      `${readFileSync(join(dir, 'cluster-configuration.yaml'), 'utf8')}\n${paiKubernetesYaml()}`,
    );
    const r = await droverCli(['import', 'openpai', file, '-o', 'json', '--cluster', 'lab-pai']);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    const t = validateTopology(doc);
    expect(t.metadata.name).toBe('lab-pai');
    // HA solution 3: one master, no balancer
    expect(t.cluster.apiEndpoint.mode).toBe('direct');
    expect(parseYaml(r.stdout)).toEqual(doc);
  });

  it('a bad configuration exits 2 naming every problem (node and field), and prints no topology', async () => {
    const dir = paiConfigDir([
      { hostname: 'm1', hostip: '10.0.0.11', role: 'master', etcdid: 'e1' },
      { hostname: 'm2', hostip: '10.0.0.11', role: 'master', etcdid: 'e2' },
      { hostname: 'w1', hostip: '10.0.0.21', role: 'worker' as never },
    ]);
    dirs.push(dir);
    const { readFileSync } = await import('node:fs');
    const cfg = join(dir, 'cluster-configuration.yaml');
    writeFileSync(cfg, readFileSync(cfg, 'utf8').replace('k8s-role: worker', 'k8s-role: wrker'));
    const r = await droverCli(['import', 'openpai', dir]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/invalid OpenPAI configuration \(2 problems\)/);
    // every problem, each with the node and the field, in one pass
    expect(r.stderr).toMatch(/\(m2\)\.hostip: duplicate hostip/);
    expect(r.stderr).toMatch(/\(w1\)\.k8s-role/);
  });

  it('usage errors: no path, an unknown source, a missing directory', async () => {
    expect((await droverCli(['import', 'openpai'])).code).toBe(2);
    const unknown = await droverCli(['import', 'kubespray', '/tmp']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown import source "kubespray"/);
    const missing = await droverCli(['import', 'openpai', '/nonexistent/cfg']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read/);
  });
});

describe('drover clean and kubeconfig: usage', () => {
  it('clean refuses without --yes and changes nothing (no server is even contacted)', async () => {
    const r = await droverCli(['clean', '--purge', '--server', 'http://127.0.0.1:1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/DELETES their data/);
    expect(r.stderr).toMatch(/--yes/);
    expect(r.stderr).not.toMatch(/cannot reach/);
  });

  it('kubeconfig needs the admin argument', async () => {
    const r = await droverCli(['kubeconfig', 'scheduler']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/drover kubeconfig admin/);
  });
});
