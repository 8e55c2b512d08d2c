import type { HealthProbe, PlanFile, RunSpec } from '../../../protocol/index.js';
import type { CustomRoleSpec, Topology } from '../../topology/index.js';
import { customTexts, placeholders, renderTemplate } from '../../topology/index.js';
import { endpointDependencies } from '../endpoint.js';
import { instanceName } from '../paths.js';
import type { RenderContext } from '../types.js';

/** The value of every placeholder a custom role may use, for one instance. */
export function placeholderLookup(ctx: RenderContext): (name: string) => string | undefined {
  const a = ctx.assignment;
  const fixed: Record<string, string> = {
    'node.address': ctx.node.address,
    'node.hostname': ctx.node.hostname,
    'node.id': ctx.node.id,
    'instance.id': a.instanceId,
    'instance.name': instanceName(a),
    'instance.ordinal': String(a.ordinal),
    'cluster.name': ctx.topology.cluster.name,
    'api.host': ctx.api.host,
    'api.port': String(ctx.api.port),
    'api.url': ctx.api.url,
  };
  return (name) => {
    if (Object.hasOwn(fixed, name)) return fixed[name];
    const m = /^role\.([a-z0-9-]+)\.(addresses|count)$/.exec(name);
    if (!m) return undefined;
    const members = ctx.members(m[1]!);
    return m[2] === 'count' ? String(members.length) : members.map((x) => x.node.address).join(',');
  };
}

/** Roles a custom role's placeholders read directly (`{{role.X.*}}`), and whether it uses the API endpoint. */
export function customReads(c: CustomRoleSpec): { reads: string[]; usesApiEndpoint: boolean } {
  const reads = new Set<string>();
  let usesApiEndpoint = false;
  for (const [, text] of customTexts(c))
    for (const p of placeholders(text)) {
      if (p.role) reads.add(p.role);
      else if (p.name.startsWith('api.')) usesApiEndpoint = true;
    }
  return { reads: [...reads].sort(), usesApiEndpoint };
}

/** Roles whose placement a custom role's rendered plan reads (through its placeholders). */
export function customRenderDependencies(c: CustomRoleSpec, topology?: Topology): string[] {
  const { reads, usesApiEndpoint } = customReads(c);
  return [...new Set([...reads, ...(usesApiEndpoint ? endpointDependencies(topology) : [])])].sort();
}

export function renderCustom(
  c: CustomRoleSpec,
  ctx: RenderContext,
): {
  run: RunSpec;
  files: PlanFile[];
  health?: HealthProbe;
  commands?: Record<string, { command: string; args: string[]; timeoutMs: number }>;
} {
  const look = placeholderLookup(ctx);
  const r = (s: string) => renderTemplate(s, look);
  const run: RunSpec = {
    command: r(c.command),
    args: c.args.map(r),
    env: Object.fromEntries(Object.entries(c.env).map(([k, v]) => [k, r(v)])),
  };
  if (c.cwd) run.cwd = r(c.cwd);
  if (c.stopTimeout !== undefined) run.stopTimeoutMs = c.stopTimeout;
  if (c.reloadSignal) run.reloadSignal = c.reloadSignal;
  const files: PlanFile[] = c.files.map((f) => ({
    path: r(f.path),
    mode: f.mode,
    content: f.encoding === 'base64' ? f.content : r(f.content),
    ...(f.encoding ? { encoding: f.encoding } : {}),
  }));
  let health: HealthProbe | undefined;
  if (c.health) {
    const h = c.health;
    health = {
      kind: h.kind,
      ...(h.kind !== 'exec' ? { host: r(h.host ?? '{{node.address}}') } : {}),
      ...(h.port !== undefined ? { port: h.port } : {}),
      ...(h.path !== undefined ? { path: r(h.path) } : {}),
      ...(h.insecure !== undefined ? { insecure: h.insecure } : {}),
      ...(h.command !== undefined ? { command: r(h.command) } : {}),
      ...(h.args !== undefined ? { args: h.args.map(r) } : {}),
      periodMs: h.period,
      timeoutMs: h.timeout,
      initialDelayMs: h.initialDelay,
      failureThreshold: h.failureThreshold,
      successThreshold: h.successThreshold,
    };
  }
  const names = Object.keys(c.commands);
  const commands =
    names.length === 0
      ? undefined
      : Object.fromEntries(
          names.sort().map((n) => {
            const cmd = c.commands[n]!;
            return [n, { command: r(cmd.command), args: cmd.args.map(r), timeoutMs: cmd.timeout }];
          }),
        );
  return { run, files, health, commands };
}
