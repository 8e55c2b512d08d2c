/**
 * OpenPAI configuration directories shaped like seed 004, for the seed tests: `cluster-configuration.yaml`
 * (machine-sku + machine-list) and `kubernetes-configuration.yaml`.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './proc.js';

export interface PaiMachine {
  hostname: string;
  hostip: string;
  role: 'master' | 'worker' | 'proxy';
  etcdid?: string;
  dashboard?: boolean;
}

export function paiClusterYaml(machines: PaiMachine[], clusterid = 'pai-test'): string {
  const list = machines
    .map(
      (m) =>
        `    - hostname: ${m.hostname}\n      hostip: ${m.hostip}\n      machine-type: D8SV3\n` +
        `${m.etcdid ? `      etcdid: ${m.etcdid}\n` : ''}      k8s-role: ${m.role}\n` +
        `${m.dashboard ? '      dashboard: "true"\n' : ''}`,
    )
    .join('\n');
  return `cluster:
  clusterid: ${clusterid}
machine-sku:
  D8SV3:
    mem: 32
    gpu:
      type: generic
      count: 0
    cpu:
      vcore: 8
    os: ubuntu16.04
machine-list:
${list}`;
}

export function paiKubernetesYaml(o: { lb?: string; serviceRange?: string } = {}): string {
  return `kubernetes:
  cluster-dns: 10.0.3.2
${o.lb ? `  load-balance-ip: ${o.lb}\n` : ''}  service-cluster-ip-range: ${o.serviceRange ?? '10.254.0.0/16'}
  storage-backend: etcd3
  apiserver-version: v1.28.15
`;
}

/** Writes a configuration directory; returns its path. */
export function paiConfigDir(machines: PaiMachine[], o: { lb?: string; clusterid?: string } = {}): string {
  const dir = tempDir('openpai-cfg');
  writeFileSync(join(dir, 'cluster-configuration.yaml'), paiClusterYaml(machines, o.clusterid));
  writeFileSync(join(dir, 'kubernetes-configuration.yaml'), paiKubernetesYaml(o));
  return dir;
}
