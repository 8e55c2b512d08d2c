/**
 * CLI commands for the seed scenarios: `import openpai`, `kubeconfig admin`, `clean`, `tenants`
 * and `superclusters`. See docs/seeds.md for the paictl parity table.
 */
import { stringify as toYaml } from 'yaml';
import {
  OpenPaiError,
  openPaiTopologyDocument,
  parseOpenPai,
  readOpenPaiPath,
  unknownHostIpsWarning,
} from '../../coordinator/openpai/index.js';
import { validateTopology } from '../../coordinator/topology/index.js';
import { humanCpu, humanMemory } from '../../coordinator/vc/quantity.js';
import type { CleanResult } from '../../protocol/rest/schemas.js';
import type { TenantPartition } from '../../protocol/rest/seeds.js';
import type { SuperClusterView, TenantView } from '../../protocol/rest/vc.js';
import { bool, str } from '../args.js';
import { type CommandContext, outputFormat, printStructured } from '../context.js';
import { CliError, EXIT, usage } from '../errors.js';
import { checkWritable, writeSecretFile } from '../secret-file.js';
import { formatTable } from '../table.js';
import { convergence, timeoutMs, waitUntil } from './actions.js';

/** `drover import openpai FILE|DIR [-o yaml|json] [--cluster NAME]`: prints the topology; warnings go to stderr. */
export async function importCmd(ctx: CommandContext): Promise<number> {
  const [, kind, path] = ctx.args.positionals;
  if (kind !== 'openpai')
    throw usage(
      `unknown import source ${JSON.stringify(kind ?? '')}`,
      'drover import openpai FILE|DIR (OpenPAI cluster-configuration.yaml / layout.yaml and kubernetes-configuration.yaml)',
    );
  if (!path)
    throw usage(
      'import openpai needs a FILE or DIR',
      'e.g. drover import openpai cluster-cfg/ | drover apply -f -',
    );
  const name = str(ctx.args.flags, 'cluster');
  let doc: ReturnType<typeof openPaiTopologyDocument>['doc'];
  let warnings: string[];
  let source: ReturnType<typeof parseOpenPai>;
  try {
    source = parseOpenPai(await readOpenPaiPath(path));
    ({ doc, warnings } = openPaiTopologyDocument(source, name ? { name } : {}));
    validateTopology(doc, `openpai import of ${path}`);
  } catch (err) {
    if (err instanceof OpenPaiError) {
      const lines = err.problems.map(
        (p) =>
          `${[p.file, p.field].filter(Boolean).join(': ')}${p.node && !p.field.includes(`(${p.node})`) ? ` (node ${p.node})` : ''}: ${p.message}`,
      );
      throw new CliError(
        `invalid OpenPAI configuration (${lines.length} problem${lines.length > 1 ? 's' : ''}):\n  ${lines.join('\n  ')}`,
        EXIT.USAGE,
        'fix the configuration and run the import again',
      );
    }
    if ((err as Error).name === 'TopologyError')
      throw new CliError(`the imported topology is invalid: ${(err as Error).message}`, EXIT.USAGE);
    throw err;
  }
  const fleet = await knownNodes(ctx);
  const unknown = fleet ? unknownHostIpsWarning(source, fleet) : undefined;
  if (unknown) warnings.push(unknown);
  for (const w of warnings) ctx.err(`warning: ${w}\n`);
  const f = outputFormat(ctx.args);
  ctx.out(f === 'json' ? `${JSON.stringify(doc, null, 2)}\n` : toYaml(doc));
  return 0;
}

/**
 * The coordinator's nodes, when a coordinator is configured (a token is set) and answers within
 * 3 s; undefined otherwise, since the import itself needs no server.
 */
async function knownNodes(ctx: CommandContext): Promise<Array<{ id: string; address: string }> | undefined> {
  if (!ctx.client.settings.token) return undefined;
  try {
    const r = await ctx.client.request<{ items: Array<{ id: string; address: string }> }>(
      'GET',
      '/v1/nodes',
      {
        signal: AbortSignal.timeout(3000),
      },
    );
    return r.items;
  } catch {
    return undefined;
  }
}

/**
 * `drover kubeconfig admin [--cluster C] [-f FILE [--force]]`: prints the admin kubeconfig, or
 * writes it to FILE with mode 0600 (an existing FILE is kept unless --force).
 */
export async function kubeconfig(ctx: CommandContext): Promise<number> {
  const what = ctx.args.positionals[1];
  if (what !== 'admin')
    throw usage(
      `unknown kubeconfig ${JSON.stringify(what ?? '')}`,
      'drover kubeconfig admin > admin.conf (node components get theirs in their plans)',
    );
  const file = str(ctx.args.flags, 'filename');
  const force = bool(ctx.args.flags, 'force');
  if (file !== undefined) checkWritable(file, force);
  const text = await ctx.client.request<string>('GET', '/v1/kubeconfig/admin', {
    query: { cluster: str(ctx.args.flags, 'cluster') },
  });
  const body = typeof text === 'string' ? text : toYaml(text);
  if (file === undefined) {
    ctx.out(body);
    ctx.err('admin kubeconfig written: it holds a cluster-admin key, keep it private (chmod 600)\n');
    return 0;
  }
  writeSecretFile(file, body, force);
  ctx.err(`admin kubeconfig written to ${file} (mode 0600): it holds a cluster-admin key, keep it private\n`);
  return 0;
}

/** `drover clean [--purge] [--cluster C] --yes [--wait]`: paictl clean. */
export async function clean(ctx: CommandContext): Promise<number> {
  if (ctx.args.positionals.length > 1)
    throw usage('clean takes no arguments; name the cluster with --cluster');
  const cluster = str(ctx.args.flags, 'cluster');
  const purge = bool(ctx.args.flags, 'purge');
  if (!bool(ctx.args.flags, 'yes'))
    throw new CliError(
      `clean stops and removes every role on every node of ${cluster ? `cluster ${cluster}` : 'the cluster'}${purge ? ' and DELETES their data (etcd, kubelet, configs)' : ' (data is kept)'}; nothing was changed`,
      EXIT.USAGE,
      `run again with --yes to do it${purge ? '' : ', and --purge to delete the data too'}`,
    );
  const r = await ctx.client.post<CleanResult>('/v1/clean', { ...(cluster ? { cluster } : {}), purge });
  if (!printStructured(ctx, r)) {
    ctx.out(`${r.message}\n`);
    for (const s of r.stopping) ctx.out(`  - ${s.nodeId}: ${s.instances.join(', ')}\n`);
    for (const p of r.purging) ctx.out(`  x ${p.nodeId}: ${p.paths} path(s) deleted\n`);
  }
  if (bool(ctx.args.flags, 'wait'))
    await waitUntil(ctx, `cluster ${r.cluster} to stop`, () => convergence(ctx, r.cluster), {
      timeoutMs: timeoutMs(ctx),
    });
  return 0;
}

/** `drover tenants resolve NAME [--cluster C]`: which Arktos partition serves a tenant. */
export async function tenantsResolve(ctx: CommandContext, name: string | undefined): Promise<number> {
  if (!name) throw usage('tenants resolve needs a tenant name', 'e.g. drover tenants resolve acme');
  const r = await ctx.client.get<TenantPartition>(`/v1/tenants/${encodeURIComponent(name)}/partition`, {
    cluster: str(ctx.args.flags, 'cluster'),
  });
  if (printStructured(ctx, r)) return 0;
  const p = r.partition;
  const range = `[${p.isRangeStartValid ? JSON.stringify(p.rangeStart) : '(open)'}, ${p.isRangeEndValid ? JSON.stringify(p.rangeEnd) : '(open)'})`;
  ctx.out(
    `tenant ${JSON.stringify(r.tenant)} is served by ${p.name} (service group ${p.id}, tenants ${range}) in cluster ${r.cluster}\n`,
  );
  ctx.out(
    r.apiServers.length
      ? formatTable(
          ['API SERVER', 'NODE', 'URL'],
          r.apiServers.map((a) => [a.instanceId, a.nodeId, a.url]),
        )
      : 'no API server of this partition is placed yet\n',
  );
  return 0;
}

type TenantRow = TenantView;
type SuperClusterRow = SuperClusterView;

/** `cpu=200m,memory=200Mi` → `{ cpu, memory }`. */
function resources(flag: string, text: string): { cpu: string; memory: string } {
  const out: Record<string, string> = {};
  for (const part of text.split(',')) {
    const [k, v] = part.split('=').map((s) => s.trim());
    if ((k !== 'cpu' && k !== 'memory') || !v)
      throw usage(
        `--${flag} ${JSON.stringify(text)} is not cpu=Q,memory=Q`,
        `e.g. --${flag} cpu=200m,memory=200Mi`,
      );
    out[k] = v;
  }
  if (!out.cpu || !out.memory)
    throw usage(`--${flag} needs both cpu and memory`, `e.g. --${flag} cpu=200m,memory=200Mi`);
  return { cpu: out.cpu, memory: out.memory };
}

function tenantTable(rows: TenantRow[]): string {
  return formatTable(
    ['TENANT', 'SLICES', 'SLICE', 'PLACEMENTS', 'UNPLACED'],
    rows.map((t) => [
      t.name,
      t.slices,
      JSON.stringify({ cpu: t.slice.cpu, memory: t.slice.memory }),
      t.annotation,
      t.unplaced ? `${t.unplaced}: ${t.unplacedReason ?? ''}` : '-',
    ]),
  );
}

/** `drover tenants [resolve NAME | set NAME --slices N|--quota cpu=…,memory=… [--slice …] | delete NAME]` */
export async function tenants(ctx: CommandContext): Promise<number> {
  const [, sub, name] = ctx.args.positionals;
  const f = ctx.args.flags;
  if (sub === 'resolve') return tenantsResolve(ctx, name);
  if (sub === undefined || sub === 'list') {
    const r = await ctx.client.get<{ items: TenantRow[] }>('/v1/tenants');
    if (!printStructured(ctx, r))
      ctx.out(r.items.length ? tenantTable(r.items) : 'no tenants (drover tenants set NAME --slices N)\n');
    return 0;
  }
  if (sub === 'set') {
    if (!name) throw usage('tenants set needs a tenant name', 'e.g. drover tenants set default --slices 2');
    const slices = str(f, 'slices');
    const quota = str(f, 'quota');
    if ((slices === undefined) === (quota === undefined))
      throw usage(
        'tenants set needs --slices N or --quota cpu=Q,memory=Q (one of them)',
        'e.g. drover tenants set default --quota cpu=200m,memory=200Mi',
      );
    const n = Number(slices);
    if (slices !== undefined && (!Number.isInteger(n) || n < 0))
      throw usage(`--slices ${JSON.stringify(slices)} is not a count`);
    const slice = str(f, 'slice');
    const body = {
      ...(slices !== undefined ? { slices: n } : { quota: resources('quota', quota!) }),
      ...(slice ? { slice: resources('slice', slice) } : {}),
    };
    const t = await ctx.client.request<TenantRow>('PUT', `/v1/tenants/${encodeURIComponent(name)}`, { body });
    if (!printStructured(ctx, t)) ctx.out(tenantTable([t]));
    if (t.unplaced > 0) {
      // The quota is kept (capacity may join later and the slices are placed then), but the
      // command did not get the tenant what it asked for: say so and fail.
      ctx.err(
        `error: ${t.unplaced} of ${t.slices} slice(s) of tenant ${t.name} are unplaced: ${t.unplacedReason ?? 'no room'}\n` +
          'hint: the quota is stored and placed as capacity frees up or joins (`drover superclusters` shows what is free); lower it with `drover tenants set` or delete it\n',
      );
      return EXIT.FAILED;
    }
    return 0;
  }
  if (sub === 'delete') {
    if (!name) throw usage('tenants delete needs a tenant name');
    const r = await ctx.client.request<{ message: string }>(
      'DELETE',
      `/v1/tenants/${encodeURIComponent(name)}`,
    );
    if (!printStructured(ctx, r)) ctx.out(`${r.message}\n`);
    return 0;
  }
  throw usage(
    `unknown tenants command ${JSON.stringify(sub)}`,
    'drover tenants | tenants set NAME --slices N | tenants delete NAME | tenants resolve NAME',
  );
}

/** `drover superclusters`: each super cluster's capacity and what the slices use. */
export async function superclusters(ctx: CommandContext): Promise<number> {
  const r = await ctx.client.get<{ items: SuperClusterRow[] }>('/v1/superclusters');
  if (printStructured(ctx, r)) return 0;
  ctx.out(
    r.items.length
      ? formatTable(
          ['SUPER CLUSTER', 'NODES', 'CPU', 'MEMORY', 'USED CPU', 'USED MEMORY', 'FREE CPU', 'FREE MEMORY'],
          r.items.map((s) => [
            s.name,
            s.nodes,
            humanCpu(s.capacity.cpuMilli),
            humanMemory(s.capacity.memoryBytes),
            humanCpu(s.used.cpuMilli),
            humanMemory(s.used.memoryBytes),
            humanCpu(s.free.cpuMilli),
            humanMemory(s.free.memoryBytes),
          ]),
        )
      : 'no super clusters (a cluster whose topology has a kubelet role)\n',
  );
  return 0;
}
