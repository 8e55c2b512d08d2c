import {
  DecodeError,
  type HealthProbe,
  type InstanceSpec,
  nodeTextProblem,
  type RunSpec,
} from '../../protocol/index.js';
import type { Assignment, NodeRecord } from '../model.js';
import { isBuiltinRole, type Topology } from '../topology/index.js';
import { ROLE_CATALOG, roleReads } from './catalog.js';
import { planCertificates, roleCertificates, serviceAccountFiles } from './certs.js';
import { DEFAULT_RESTART, withRestartOverrides } from './common.js';
import { resolveApiEndpoint } from './endpoint.js';
import { isPartitioned } from './partitions.js';
import { configDir, instanceCertDir } from './paths.js';
import { renderCustom } from './roles/custom.js';
import { rolePrivileges } from './roles/least-privilege.js';
import {
  type ApiEndpoint,
  type CertRenewalExtras,
  type EtcdAssignmentExtras,
  isParked,
  type Member,
  type RenderContext,
  type RenderedInstance,
  type RenderInput,
  type RenderOptions,
  type RoleDefinition,
} from './types.js';

const byOrdinal = (a: Member, b: Member) =>
  a.assignment.ordinal - b.assignment.ordinal || (a.assignment.instanceId < b.assignment.instanceId ? -1 : 1);

/**
 * Renders every node's instances from the topology, the assignments and the nodes' facts. Pure
 * and deterministic: the same input gives the same output, and an instance's content depends only
 * on its own role's settings, its node, and the roles `roleDependencies()` names, so a change
 * re-renders exactly the plans that read it.
 *
 * Every node in `nodes` gets an entry (empty when nothing is assigned to it), with instances
 * sorted by id. Assignments to unknown nodes, and to roles no longer in the topology, are skipped.
 */
export function renderPlans(input: RenderInput): Map<string, RenderedInstance[]> {
  const { topology, nodes } = input;
  const cache = input.options?.cache;
  const out = new Map<string, RenderedInstance[]>();
  for (const id of [...nodes.keys()].sort()) out.set(id, []);
  const byRole = membersByRole(input.assignments, nodes);
  const members = (role: string): Member[] => byRole.get(role) ?? [];
  const api = resolveApiEndpoint(topology, members);
  const base = cache
    ? `${cache.topologyId(topology)}\u0001${JSON.stringify(input.options?.standin ?? null)}\u0001${api.url}\u0001${etcdTlsOn(input.options)}`
    : '';
  const seen = new Set<string>();
  for (const [role, list] of [...byRole].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const spec = topology.roles[role];
    if (!spec || (!isBuiltinRole(role) && !topology.customRoles[role])) continue;
    // the API endpoint is in `base`; here, the roles it reads directly
    const deps = cache ? dependencySignature(roleReads(role, topology), members) : '';
    for (const m of list) {
      const node = m.node;
      let rendered: RenderedInstance | undefined;
      let key = '';
      if (cache) {
        key = instanceKey(base, deps, m);
        rendered = cache.get(m.assignment.instanceId, key);
      }
      if (!rendered) {
        const ctx: RenderContext = { topology, role, spec, assignment: m.assignment, node, members, api };
        rendered = renderInstance(ctx, input.options);
        cache?.set(m.assignment.instanceId, key, rendered);
      }
      seen.add(m.assignment.instanceId);
      out.get(node.id)!.push(rendered);
    }
  }
  cache?.retain(seen);
  for (const list of out.values()) list.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return out;
}

/**
 * Whether a node's reported address and hostname may be written into config (its own and other
 * hosts'): an IP address and an RFC 1123 host name. Intake refuses anything else, so only a record
 * stored before that check can fail here; such a node is rendered nowhere.
 */
export function isRenderableNode(node: Pick<NodeRecord, 'id' | 'address' | 'hostname'>): boolean {
  return nodeTextProblem(node) === undefined;
}

/**
 * Placed instances by role, each list by ordinal; assignments to unknown nodes, and to nodes whose
 * address or hostname is not renderable (`isRenderableNode`), are left out.
 */
export function membersByRole(
  assignments: readonly Assignment[],
  nodes: ReadonlyMap<string, NodeRecord>,
): Map<string, Member[]> {
  const byRole = new Map<string, Member[]>();
  for (const a of assignments) {
    const node = nodes.get(a.nodeId);
    // a member a restore holds out of the cluster is rendered nowhere, and no one's peer
    if (!node || !isRenderableNode(node) || isParked(a)) continue;
    const list = byRole.get(a.role) ?? [];
    if (list.length === 0) byRole.set(a.role, list);
    list.push({ assignment: a, node });
  }
  for (const list of byRole.values()) list.sort(byOrdinal);
  return byRole;
}

/** The API endpoint of a cluster as its plans render it (`drover kubeconfig admin` uses it too). */
export function apiEndpointFor(
  topology: Topology,
  assignments: readonly Assignment[],
  nodes: ReadonlyMap<string, NodeRecord>,
): ApiEndpoint {
  const byRole = membersByRole(assignments, nodes);
  return resolveApiEndpoint(topology, (role) => byRole.get(role) ?? []);
}

/** What an instance's rendering reads from its own assignment and node. */
function instanceKey(base: string, deps: string, m: Member): string {
  const a = m.assignment as Member['assignment'] & EtcdAssignmentExtras;
  const n = m.node;
  const def = isBuiltinRole(a.role) ? ROLE_CATALOG[a.role] : undefined;
  const bin = def
    ? [def.binary, ...(def.simulator?.binaries ?? [])].map((b) => n.facts.binaries[b]?.path ?? '-').join(',')
    : '';
  return [
    base,
    deps,
    a.instanceId,
    a.epoch,
    a.since,
    a.previousNodeId ?? '',
    a.existing === true ? 'x' : '',
    a.initialCluster ?? '',
    a.seed?.snapshotId ?? '',
    JSON.stringify((a as Member['assignment'] & CertRenewalExtras).certRenew ?? null),
    n.id,
    n.address,
    n.hostname,
    bin,
  ].join('\u0001');
}

/** What an instance's rendering reads from the roles it depends on. */
function dependencySignature(roles: string[], members: (role: string) => Member[]): string {
  const parts: string[] = [];
  for (const r of roles)
    for (const m of members(r)) {
      const a = m.assignment as Member['assignment'] & EtcdAssignmentExtras;
      parts.push(
        `${a.instanceId}@${m.node.address}/${a.epoch}/${a.since}/${a.previousNodeId ?? ''}/${a.existing === true}`,
      );
    }
  return parts.join(',');
}

/**
 * Memo for `renderPlans` (pass it as `options.cache` and keep it between calls): an instance whose
 * inputs did not change (its assignment, its node's address, hostname and binary, the roles it
 * depends on, the API endpoint, the stand-in, and the topology object) is not rendered again. Cost
 * then follows change rather than fleet size. Outputs are shared between calls: treat them as
 * read-only, and never mutate a topology object after rendering with it (a new topology object
 * re-renders everything).
 */
export class RenderCache {
  private readonly entries = new Map<string, { key: string; out: RenderedInstance }>();
  private readonly topologies = new WeakMap<Topology, number>();
  private nextTopology = 1;
  hits = 0;
  misses = 0;

  topologyId(t: Topology): number {
    let id = this.topologies.get(t);
    if (id === undefined) {
      id = this.nextTopology++;
      this.topologies.set(t, id);
    }
    return id;
  }

  get(instanceId: string, key: string): RenderedInstance | undefined {
    const e = this.entries.get(instanceId);
    if (e && e.key === key) {
      this.hits++;
      return e.out;
    }
    this.misses++;
    return undefined;
  }

  set(instanceId: string, key: string, out: RenderedInstance): void {
    this.entries.set(instanceId, { key, out });
  }

  /** Forgets instances the last render did not produce. */
  retain(ids: ReadonlySet<string>): void {
    for (const id of this.entries.keys()) if (!ids.has(id)) this.entries.delete(id);
  }

  get size(): number {
    return this.entries.size;
  }
}

/**
 * Renders one instance (exported for `drover plan explain`-style tools and tests). Refuses
 * (DROVER_ERR_DECODE, naming the node and field) a node whose address or hostname could inject
 * text into the config, and leaves such nodes out of every member list the renderers see.
 */
export function renderInstance(input: RenderContext, options: RenderOptions = {}): RenderedInstance {
  const bad = nodeTextProblem(input.node);
  if (bad) throw new DecodeError('DROVER_ERR_DECODE', `/nodes/${input.node.id}/${bad.field}`, bad.message);
  const ctx: RenderContext = {
    ...input,
    members: (r) => input.members(r).filter((m) => isRenderableNode(m.node)),
    etcdTls: input.etcdTls ?? etcdTlsOn(options),
  };
  const { role, spec, assignment: a } = ctx;
  const base = {
    id: a.instanceId,
    role,
    epoch: a.epoch,
  };
  if (!isBuiltinRole(role)) {
    const c = renderCustom(ctx.topology.customRoles[role]!, ctx);
    const run: RunSpec = {
      ...c.run,
      args: [...c.run.args, ...spec.extraArgs],
      env: { ...c.run.env, ...spec.env },
    };
    return clean({
      ...base,
      simulated: false,
      files: c.files,
      run,
      health: c.health,
      restart: withRestartOverrides(DEFAULT_RESTART, spec.repair.restart),
      commands: c.commands,
      ports: [...ctx.topology.customRoles[role]!.ports],
      dataPaths: ownedPaths(a, c.files, []),
    });
  }
  const def: RoleDefinition = ROLE_CATALOG[role];
  const sim = simulatorPaths(def, ctx.topology, ctx.node);
  if (sim) return renderSimulated(ctx, def, sim, options);
  const r = def.render(ctx);
  const certificates = options.pki ? planCertificates(ctx, options.pki) : [];
  const files = [...(r.files ?? []), ...(options.pki ? serviceAccountFiles(ctx, options.pki) : [])];
  const owned = roleCertificates(role, ctx.etcdTls === true) ? [instanceCertDir(ctx.topology, a)] : [];
  const flags = [...r.args, ...spec.extraArgs];
  const { command, simulated } = resolveCommand(def, ctx.topology, ctx.node, options);
  const run: RunSpec = {
    command,
    args: simulated ? [...options.standin!.args, role, ...flags] : flags,
    env: { ...(r.env ?? {}), ...spec.env },
  };
  // least privilege on the host: a real etcd or haproxy runs as its own system user, and every
  // unit gets its role's sandboxing (roles/least-privilege.ts)
  const host = rolePrivileges(def.name, ctx.topology);
  if (host.runAs && !simulated) run.runAs = { ...host.runAs };
  const sandbox = Object.keys(host.sandbox).length > 0 ? { ...host.sandbox } : undefined;
  if (r.unit || sandbox) {
    // a stand-in does not speak sd_notify: a notify unit would wait for it forever
    const { type, ...rest } = r.unit ?? {};
    const base = simulated ? rest : (r.unit ?? {});
    const unit = sandbox ? { ...base, extraService: { ...sandbox, ...(base.extraService ?? {}) } } : base;
    if (Object.keys(unit).length > 0) run.unit = unit;
  }
  if (r.stopTimeoutMs !== undefined) run.stopTimeoutMs = r.stopTimeoutMs;
  if (r.reloadSignal) run.reloadSignal = r.reloadSignal;
  return clean({
    ...base,
    simulated,
    ...(simulated ? { simulator: 'standin' as const } : {}),
    files,
    run,
    health: def.probe(ctx),
    restart: withRestartOverrides(def.restart, spec.repair.restart),
    commands: r.commands,
    ports: def.ports(ctx.topology),
    certificates,
    dataPaths: ownedPaths(a, files, [...(r.dataPaths ?? []), ...owned]),
    ...(r.seed ? { seed: r.seed } : {}),
  });
}

/** Whether etcd runs TLS under these options: with a cluster PKI, unless the cluster is a legacy plain one. */
export function etcdTlsOn(options: RenderOptions | undefined): boolean {
  return !!options?.pki && options.etcdTransport !== 'plain';
}

/**
 * The simulator's binary paths when `def` has one and the node lacks the real binary but has the
 * simulator's (the kubelet on a worker with kwok): then the role runs simulated. A binary pinned
 * in `cluster.binaries` is always the real one.
 */
export function simulatorPaths(
  def: RoleDefinition,
  t: Topology,
  node: NodeRecord,
): Record<string, string> | undefined {
  const sim = def.simulator;
  if (!sim || t.cluster.binaries[def.name] || node.facts.binaries[def.binary] || isPartitioned(t))
    return undefined;
  const paths: Record<string, string> = {};
  for (const b of sim.binaries) {
    const found = node.facts.binaries[b];
    if (!found) return undefined;
    paths[b] = found.path;
  }
  return paths;
}

function renderSimulated(
  ctx: RenderContext,
  def: RoleDefinition,
  paths: Record<string, string>,
  options: RenderOptions,
): RenderedInstance {
  const sim = def.simulator!;
  const r = sim.render(ctx, paths);
  const files = r.files ?? [];
  const owned = [instanceCertDir(ctx.topology, ctx.assignment)];
  return clean({
    id: ctx.assignment.instanceId,
    role: ctx.role,
    epoch: ctx.assignment.epoch,
    simulated: true,
    simulator: sim.name,
    files,
    // the role's extraArgs are the real binary's flags: the simulator does not take them
    run: { command: r.command, args: r.args, env: { ...(r.env ?? {}), ...ctx.spec.env } },
    health: sim.probe(ctx),
    restart: withRestartOverrides(def.restart, ctx.spec.repair.restart),
    ports: sim.ports(ctx.topology),
    certificates: options.pki ? planCertificates(ctx, options.pki, sim.certificates) : [],
    dataPaths: ownedPaths(ctx.assignment, files, [...(r.dataPaths ?? []), ...owned]),
  });
}

/**
 * What an instance owns on its node, for `drover clean --purge`: its config dir (when its files
 * are there), any other file it is given, and the data dirs its role names. Sorted, unique.
 */
export function ownedPaths(
  a: Pick<Assignment, 'role' | 'ordinal'>,
  files: ReadonlyArray<{ path: string }>,
  dataPaths: readonly string[],
): string[] {
  const dir = configDir(a);
  const out = new Set<string>(dataPaths);
  const inOwnedDir = (p: string) => [dir, ...dataPaths].some((d) => p.startsWith(`${d}/`));
  for (const f of files) out.add(f.path.startsWith(`${dir}/`) ? dir : inOwnedDir(f.path) ? '' : f.path);
  out.delete('');
  return [...out].sort();
}

/**
 * The binary to run: `cluster.binaries[role]`, else the path the agent found, else the bare name.
 * A Kubernetes component whose binary the node does not have runs as the lab stand-in when one is
 * configured, and so does every Kubernetes component of a partitioned (Arktos) cluster there.
 * etcd and haproxy are always real.
 */
export function resolveCommand(
  def: RoleDefinition,
  t: Topology,
  node: NodeRecord,
  options: RenderOptions = {},
): { command: string; simulated: boolean } {
  const found = node.facts.binaries[def.binary];
  // Arktos is a fork: upstream binaries lack its partition flags (and space-separated kubeconfig
  // lists), so where the lab has a stand-in, a partitioned cluster's components run as stand-ins
  if ((!found || isPartitioned(t)) && def.kubernetes && options.standin)
    return { command: options.standin.command, simulated: true };
  return { command: t.cluster.binaries[def.name] ?? found?.path ?? def.binary, simulated: false };
}

function clean(
  i: RenderedInstance & { health?: HealthProbe; commands?: InstanceSpec['commands'] },
): RenderedInstance {
  const out = { ...i };
  if (out.health === undefined) delete out.health;
  if (out.commands === undefined || Object.keys(out.commands).length === 0) delete out.commands;
  if (out.ports !== undefined && out.ports.length === 0) delete out.ports;
  if (out.dataPaths !== undefined && out.dataPaths.length === 0) delete out.dataPaths;
  if (out.certificates !== undefined && out.certificates.length === 0) delete out.certificates;
  return out;
}
