import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where a lab keeps its files, all under one directory (default `./.lab`). */
export const labPaths = (dir: string) => ({
  state: join(dir, 'lab.json'),
  logs: join(dir, 'logs'),
  natsDir: join(dir, 'nats'),
  natsConfig: join(dir, 'nats', 'nats.conf'),
  coordinatorDir: join(dir, 'coordinator'),
  coordinatorConfig: join(dir, 'coordinator', 'coordinator.yaml'),
  coordinatorData: join(dir, 'coordinator', 'data'),
  cliConfig: join(dir, 'drover.yaml'),
  topology: join(dir, 'topology.yaml'),
  nodesDir: join(dir, 'nodes'),
  node: (name: string) => ({
    dir: join(dir, 'nodes', name),
    config: join(dir, 'nodes', name, 'agent.yaml'),
    dataDir: join(dir, 'nodes', name, 'data'),
    rootDir: join(dir, 'nodes', name, 'root'),
  }),
  log: (name: string) => join(dir, 'logs', `${name}.log`),
});

/** What `lab down` deletes: only what `lab up` created (logs stay for the post-mortem). */
export const labCreated = (dir: string): string[] => {
  const p = labPaths(dir);
  return [p.natsDir, p.coordinatorDir, p.nodesDir, p.cliConfig, p.topology, p.state];
};

/**
 * The directory holding drover-agent.mjs, drover-coordinator.mjs and drover-standin.mjs: next to
 * this module when it runs bundled (dist/drover.mjs), else the repository's dist/.
 */
export function defaultDistDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const c of [here, resolve(here, '..', 'dist')]) if (existsSync(join(c, 'drover-agent.mjs'))) return c;
  return resolve(here, '..', 'dist');
}

/** examples/ha.yaml of the checkout or package the bundles came from. */
export function defaultTopologyFile(distDir: string): string {
  return resolve(distDir, '..', 'examples', 'ha.yaml');
}
