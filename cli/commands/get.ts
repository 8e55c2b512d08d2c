import type { Topology } from '../../coordinator/topology/index.js';
import type { Event } from '../../protocol/index.js';
import type {
  Assignment,
  CertificateItem,
  CoordinatorItem,
  InstanceView,
  NodeView,
  RoleView,
  TaskRecord,
  TokenInfo,
} from '../../protocol/rest/schemas.js';
import { bool, str } from '../args.js';
import { type CommandContext, outputFormat, printStructured } from '../context.js';
import { CliError, usage } from '../errors.js';
import { matchesSelector, parseSelector } from '../selector.js';
import { StreamTable } from '../stream-table.js';
import { age, formatTable } from '../table.js';
import { REASON_WIDTH, truncate } from '../truncate.js';
import { TOPOLOGIES } from './topology.js';

export type AssignmentRow = Assignment & InstanceView;
interface Listing<T> {
  header: string[];
  wide?: string[];
  row: (x: T, wide: boolean) => Array<string | number | undefined>;
  name: (x: T) => string;
  /** widths a streamed table (`--watch`) reserves for values that change */
  minWidths?: number[];
}

const sim = (i: { simulated: boolean; simulator?: string }) =>
  i.simulated ? (i.simulator === 'kwok' ? ' (sim: kwok)' : ' (sim)') : '';

export function nodeStatus(n: NodeView): string {
  return n.cordoned && n.state !== 'Cordoned' && n.state !== 'Draining' ? `${n.state},Cordoned` : n.state;
}

function countHealthy(items: InstanceView[]): string {
  const assigned = items.filter((i) => i.assigned);
  const healthy = assigned.filter(
    (i) => (i.phase === 'Healthy' || i.phase === 'Running') && i.health !== 'unhealthy',
  ).length;
  const sims = assigned.filter((i) => i.simulated).length;
  return `${healthy}/${assigned.length}${sims ? ` (${sims} sim)` : ''}`;
}

export const NODES: Listing<NodeView> = {
  header: ['NAME', 'STATUS', 'ADDRESS', 'CLUSTER', 'INSTANCES', 'HEARTBEAT'],
  wide: ['HOSTNAME', 'CPU', 'MEMORY', 'PLAN', 'ROLES', 'MACHINE-ID'],
  name: (n) => `node/${n.id}`,
  minWidths: [0, 'Unreachable,Cordoned'.length, 0, 0, '10/10 (10 sim)'.length],
  row: (n, wide) => {
    const base = [
      n.id,
      nodeStatus(n),
      n.address,
      n.cluster,
      countHealthy(n.instances),
      n.lastHeartbeat ? `${age(n.lastHeartbeat)} ago` : '<never>',
    ];
    if (!wide) return base;
    const plan = n.plan.converged
      ? `gen ${n.plan.generation}`
      : `gen ${n.plan.generation} (applied ${n.plan.appliedGeneration ?? '-'})`;
    const roles = n.instances.map((i) => `${i.id}${sim(i)}`).join(',');
    return [
      ...base,
      n.hostname,
      n.cpuCores,
      `${(n.memoryBytes / 1024 ** 3).toFixed(1)}Gi`,
      plan,
      roles || '-',
      n.machineId || '-',
    ];
  },
};

/** REASONS is cut to REASON_WIDTH characters (…) in the table; `-o wide` and json show them all. */
export const ROLES: Listing<RoleView> = {
  header: ['NAME', 'CLUSTER', 'STATUS', 'HEALTHY', 'SIMULATED', 'NODES', 'REASONS'],
  name: (r) => `role/${r.name}`,
  row: (r, wide) => {
    const reasons = r.reasons.join('; ') || '-';
    return [
      r.name,
      r.cluster,
      r.status,
      `${r.healthy}/${r.desired}`,
      r.simulated ? `${r.simulated}/${r.placed}` : '-',
      r.instances.map((i) => `${i.nodeId ?? '?'}${sim(i)}`).join(',') || '-',
      wide ? reasons : truncate(reasons, REASON_WIDTH),
    ];
  },
};

export const ASSIGNMENTS: Listing<AssignmentRow> = {
  header: ['INSTANCE', 'NODE', 'EPOCH', 'PHASE', 'HEALTH', 'RESTARTS', 'SIM'],
  wide: ['CLUSTER', 'SINCE', 'LAST ERROR'],
  name: (a) => `instance/${a.instanceId}`,
  row: (a, wide) => {
    const base = [a.instanceId, a.nodeId, a.epoch, a.phase, a.health, a.restarts, a.simulated ? 'yes' : '-'];
    return wide ? [...base, a.cluster, `${age(a.since)} ago`, a.lastError ?? '-'] : base;
  },
};

export const EVENTS: Listing<Event> = {
  header: ['SEQ', 'TIME', 'SEVERITY', 'KIND', 'OBJECT', 'MESSAGE'],
  name: (e) => `event/${e.seq}`,
  minWidths: [5, 8, 'warning'.length, 'role.unschedulable'.length + 4, 'kube-controller-manager#0'.length],
  row: (e) => [
    e.seq,
    e.time.slice(11, 19),
    e.severity,
    e.kind,
    e.instanceId ?? (e.nodeId ? `node/${e.nodeId}` : (e.role ?? e.cluster ?? '-')),
    e.message,
  ],
};

/** One coordinator (GET /v1/coordinators): with HA, leader or follower. */
export type CoordinatorRow = CoordinatorItem;

const ms = (v: number | undefined) =>
  v === undefined ? '-' : v < 10_000 ? `${(v / 1000).toFixed(1)}s` : `${Math.round(v / 1000)}s`;

export const COORDINATORS: Listing<CoordinatorRow> = {
  header: ['ID', 'ADDRESS', 'ROLE', 'EPOCH', 'LEASE AGE'],
  wide: ['TERM', 'HOST', 'PID', 'SEEN'],
  name: (c) => `coordinator/${c.id}`,
  row: (c, wide) => {
    const base = [c.id, c.api ?? '-', c.role, c.epoch ?? '-', c.role === 'leader' ? ms(c.leaseAgeMs) : '-'];
    return wide ? [...base, c.term ?? '-', c.host ?? '-', c.pid ?? '-', `${ms(c.seenAgoMs)} ago`] : base;
  },
};

/** Days (or hours) until `iso`; negative once past. */
const until = (iso: string, now: number) => {
  const ms = Date.parse(iso) - now;
  const d = ms / 86_400_000;
  return Math.abs(d) >= 2 ? `${Math.trunc(d)}d` : `${Math.trunc(ms / 3_600_000)}h`;
};

export const CERTIFICATES: Listing<CertificateItem> = {
  header: ['KIND', 'CLUSTER', 'NODE', 'INSTANCE', 'PROFILE', 'EXPIRES', 'EXPIRES IN', 'RENEW AT'],
  wide: ['SERIAL'],
  name: (c) => `certificate/${c.kind === 'ca' ? c.profile : `${c.node}/${c.instance}/${c.profile}`}`,
  row: (c, wide) => {
    const base = [
      c.kind,
      c.cluster || '-',
      c.node || '-',
      c.instance || '-',
      c.profile,
      c.notAfter.slice(0, 10),
      until(c.notAfter, Date.now()),
      c.renewAt.slice(0, 10),
    ];
    return wide ? [...base, c.serialNumber] : base;
  },
};

export const TASKS: Listing<TaskRecord> = {
  header: ['ID', 'NODE', 'KIND', 'INSTANCE', 'STATE', 'AGE', 'RESULT'],
  name: (t) => `task/${t.id}`,
  row: (t) => [
    t.id,
    t.request.nodeId,
    t.request.kind,
    t.request.instanceId ?? '-',
    t.state,
    age(t.createdAt),
    t.error
      ? `${t.error.code}: ${t.error.message}`
      : t.result
        ? (t.result.output ?? 'ok').split('\n')[0]!.slice(0, 60)
        : '-',
  ],
};

import type { JoinTokenView } from '../../protocol/rest/schemas.js';

/** A join token as the API shows it (GET /v1/join-tokens). */
export type { JoinTokenView } from '../../protocol/rest/schemas.js';

/** `drover get tokens` lists both kinds: API tokens (`kind: api`) and join tokens (`kind: join`). */
export type TokenRow = (TokenInfo & { kind: 'api' }) | (JoinTokenView & { kind: 'join' });

export const TOKENS: Listing<TokenRow> = {
  header: ['KIND', 'ID', 'NAME', 'ROLE/STATE', 'USES', 'EXPIRES', 'AGE'],
  name: (t) => `${t.kind === 'join' ? 'join-token' : 'token'}/${t.id}`,
  row: (t) =>
    t.kind === 'api'
      ? ['api', t.id, t.name, t.role, '-', '-', age(t.createdAt)]
      : [
          'join',
          t.id,
          t.description || '-',
          t.state,
          `${t.used}/${t.uses}`,
          t.state === 'active' ? t.expiresAt : '-',
          age(t.createdAt),
        ],
};

export function printList<T>(
  ctx: CommandContext,
  listing: Listing<T>,
  items: T[],
  raw?: unknown,
  opts: { noHeaders?: boolean } = {},
): void {
  if (printStructured(ctx, raw ?? { items })) return;
  const f = outputFormat(ctx.args);
  if (f === 'name') {
    ctx.out(items.map((x) => `${listing.name(x)}\n`).join(''));
    return;
  }
  const wide = f === 'wide';
  const header = wide ? [...listing.header, ...(listing.wide ?? [])] : listing.header;
  if (!items.length && !opts.noHeaders) {
    ctx.err('No resources found.\n');
    return;
  }
  ctx.out(
    formatTable(
      header,
      items.map((x) => listing.row(x, wide)),
      { noHeaders: opts.noHeaders ?? bool(ctx.args.flags, 'no-headers') },
    ),
  );
}

const KIND_ALIASES: Record<string, string> = {
  node: 'nodes',
  nodes: 'nodes',
  no: 'nodes',
  role: 'roles',
  roles: 'roles',
  assignment: 'assignments',
  assignments: 'assignments',
  instances: 'assignments',
  instance: 'assignments',
  event: 'events',
  events: 'events',
  ev: 'events',
  task: 'tasks',
  tasks: 'tasks',
  token: 'tokens',
  tokens: 'tokens',
  topology: 'topologies',
  topologies: 'topologies',
  coordinator: 'coordinators',
  coordinators: 'coordinators',
  certificate: 'certificates',
  certificates: 'certificates',
  certs: 'certificates',
  cert: 'certificates',
};

export function resourceKind(word: string | undefined, allowed: string[]): string {
  const k = word ? KIND_ALIASES[word.toLowerCase()] : undefined;
  if (!k || !allowed.includes(k))
    throw usage(
      word ? `unknown resource ${JSON.stringify(word)}` : 'which resource?',
      `one of: ${allowed.join(', ')}`,
    );
  return k;
}

interface Fetched<T> {
  items: T[];
  raw: unknown;
}

export async function fetchResource(
  ctx: CommandContext,
  kind: string,
  name?: string,
): Promise<Fetched<unknown>> {
  const c = ctx.client;
  const f = ctx.args.flags;
  const cluster = str(f, 'cluster');
  switch (kind) {
    case 'nodes': {
      if (name) {
        const n = await c.get<NodeView>(`/v1/nodes/${encodeURIComponent(name)}`);
        return { items: [n], raw: n };
      }
      const r = await c.get<{ items: NodeView[] }>('/v1/nodes', { cluster, state: str(f, 'state') });
      const selector = str(f, 'selector');
      if (selector === undefined) return { items: r.items, raw: r };
      // -l is matched here, on the labels the API returns (the API has no selector parameter)
      const reqs = parseSelector(selector);
      const items = r.items.filter((n) => matchesSelector(n.labels, reqs));
      return { items, raw: { ...r, items } };
    }
    case 'roles': {
      if (name) {
        const r = await c.get<RoleView>(`/v1/roles/${encodeURIComponent(name)}`, { cluster });
        return { items: [r], raw: r };
      }
      const r = await c.get<{ items: RoleView[] }>('/v1/roles', { cluster });
      return { items: r.items, raw: r };
    }
    case 'assignments': {
      const r = await c.get<{ items: AssignmentRow[]; unplaced: unknown[] }>('/v1/assignments', {
        cluster,
        node: str(f, 'node'),
        role: str(f, 'role'),
      });
      const items = name ? r.items.filter((a) => a.instanceId === name) : r.items;
      if (name && !items.length)
        throw c.errorFrom(404, {
          code: 'DROVER_ERR_INSTANCE_NOT_FOUND',
          message: `no instance ${JSON.stringify(name)}`,
        });
      return { items, raw: name ? items[0] : r };
    }
    case 'events': {
      const r = await c.get<{ items: Event[] }>('/v1/events', {
        kind: str(f, 'kind'),
        node: str(f, 'node'),
        role: str(f, 'role'),
        severity: str(f, 'severity'),
        since: str(f, 'since'),
        limit: str(f, 'limit'),
      });
      return { items: r.items, raw: r };
    }
    case 'tasks': {
      if (name) {
        const t = await c.get<TaskRecord>(`/v1/tasks/${encodeURIComponent(name)}`);
        return { items: [t], raw: t };
      }
      const r = await c.get<{ items: TaskRecord[] }>('/v1/tasks', {
        node: str(f, 'node'),
        state: str(f, 'state'),
        limit: str(f, 'limit'),
      });
      return { items: r.items, raw: r };
    }
    case 'tokens': {
      const r = await c.get<{ items: TokenInfo[] }>('/v1/tokens');
      let joins: JoinTokenView[] = [];
      try {
        joins = (await c.get<{ items: JoinTokenView[] }>('/v1/join-tokens')).items;
      } catch (err) {
        // a coordinator without bus authorisation has no join tokens
        if (!(err instanceof CliError && err.code === 'DROVER_ERR_BUS_UNAVAILABLE')) throw err;
      }
      const items: TokenRow[] = [
        ...r.items.map((t) => ({ kind: 'api' as const, ...t })),
        ...joins.map((t) => ({ kind: 'join' as const, ...t })),
      ];
      return { items, raw: { items } };
    }
    case 'certificates': {
      const r = await c.get<{ items: CertificateItem[] }>('/v1/certificates');
      const items = name ? r.items.filter((x) => x.node === name || x.profile === name) : r.items;
      return { items, raw: { items } };
    }
    case 'coordinators': {
      const r = await c.get<{ items: CoordinatorRow[] }>('/v1/coordinators');
      const items = name ? r.items.filter((x) => x.id === name) : r.items;
      return { items, raw: r };
    }
    case 'topologies': {
      if (name) {
        const t = await c.get<Topology>(`/v1/topologies/${encodeURIComponent(name)}`);
        return { items: [t], raw: t };
      }
      const r = await c.get<{ items: Topology[] }>('/v1/topologies');
      return { items: r.items, raw: r };
    }
  }
  throw usage(`unknown resource ${kind}`);
}

export function listingFor(kind: string): Listing<unknown> {
  const m: Record<string, Listing<never>> = {
    nodes: NODES,
    roles: ROLES,
    assignments: ASSIGNMENTS,
    events: EVENTS,
    tasks: TASKS,
    tokens: TOKENS,
    topologies: TOPOLOGIES,
    coordinators: COORDINATORS,
    certificates: CERTIFICATES,
  };
  return m[kind] as unknown as Listing<unknown>;
}

function keyOf(kind: string, x: unknown): string {
  const o = x as { id?: string; name?: string; instanceId?: string; cluster?: string };
  if (kind === 'certificates') {
    const c = x as CertificateItem;
    return `${c.cluster}/${c.node}/${c.instance}/${c.profile}`;
  }
  return kind === 'assignments'
    ? o.instanceId!
    : kind === 'roles'
      ? `${o.cluster}/${o.name}`
      : (o.id ?? o.name ?? '');
}

/** `drover get KIND [NAME] [-o …] [--watch]` */
export async function get(ctx: CommandContext): Promise<number> {
  const [, word, name] = ctx.args.positionals;
  const kind = resourceKind(word, [
    'nodes',
    'roles',
    'assignments',
    'events',
    'tasks',
    'tokens',
    'topologies',
    'coordinators',
    'certificates',
  ]);
  const selector = str(ctx.args.flags, 'selector');
  if (selector !== undefined && kind !== 'nodes')
    throw usage(`-l/--selector works with \`get nodes\`, not with ${kind}`);
  if (selector !== undefined && name) throw usage('get nodes takes a NAME or -l SELECTOR, not both');
  if (selector !== undefined) parseSelector(selector); // a bad selector fails before any request
  if (bool(ctx.args.flags, 'watch')) return kind === 'events' ? watchEvents(ctx) : pollWatch(ctx, kind, name);
  const { items, raw } = await fetchResource(ctx, kind, name);
  printList(ctx, listingFor(kind), items, raw);
  return 0;
}

/**
 * `--watch` for lists without a stream: polls, prints the table once, then only rows that changed
 * or appeared (and `<kind> NAME deleted` for ones that went away), like `kubectl get -w`.
 */
async function pollWatch(ctx: CommandContext, kind: string, name?: string): Promise<number> {
  const listing = listingFor(kind);
  const interval = Number(str(ctx.args.flags, 'interval') ?? 2000);
  const structured = ['json', 'yaml'].includes(outputFormat(ctx.args));
  const seen = new Map<string, string>();
  // ages tick every poll; a row only counts as changed when something else did
  const cols = [...listing.header, ...(listing.wide ?? [])];
  const volatile = new Set(cols.flatMap((h, i) => (['HEARTBEAT', 'AGE', 'SINCE'].includes(h) ? [i] : [])));
  let first = true;
  const wide = outputFormat(ctx.args) === 'wide';
  const table = new StreamTable(wide ? cols : listing.header, {
    noHeaders: bool(ctx.args.flags, 'no-headers'),
    minWidths: listing.minWidths,
  });
  while (!ctx.signal.aborted) {
    const { items } = await fetchResource(ctx, kind, name);
    const changed = items.filter((x) => {
      const k = keyOf(kind, x);
      const v = JSON.stringify(listing.row(x, true).filter((_, i) => !volatile.has(i)));
      const was = seen.get(k);
      seen.set(k, v);
      return was !== v;
    });
    const present = new Set(items.map((x) => keyOf(kind, x)));
    for (const k of [...seen.keys()]) {
      if (present.has(k)) continue;
      seen.delete(k);
      if (!structured) ctx.out(`${kind.replace(/s$/, '')}/${k} deleted\n`);
    }
    if (changed.length || first) {
      if (structured) for (const x of changed) printStructured(ctx, x);
      else if (outputFormat(ctx.args) === 'name') printList(ctx, listing, changed);
      else if (first && !items.length) ctx.err('No resources found.\n');
      else if (changed.length) ctx.out(table.rows(changed.map((x) => listing.row(x, wide))));
    }
    first = false;
    await ctx.sleep(interval, ctx.signal);
  }
  return 0;
}

/** `drover events --watch` / `get events --watch`: the retained history, then live events over SSE. */
export async function watchEvents(ctx: CommandContext): Promise<number> {
  const f = ctx.args.flags;
  const structured = ['json', 'yaml'].includes(outputFormat(ctx.args));
  const since = str(f, 'since') ?? '0';
  const recent = await ctx.client.get<{ items: Event[] }>('/v1/events', {
    kind: str(f, 'kind'),
    node: str(f, 'node'),
    role: str(f, 'role'),
    severity: str(f, 'severity'),
    since,
    limit: str(f, 'limit') ?? 20,
  });
  let last = recent.items.at(-1)?.seq ?? Number(since);
  // the history sets the column widths; live rows keep them (a wider cell widens later rows)
  const table = new StreamTable(EVENTS.header, {
    noHeaders: bool(f, 'no-headers'),
    minWidths: EVENTS.minWidths,
  });
  const show = (e: Event) => {
    if (structured) {
      if (outputFormat(ctx.args) === 'json') ctx.out(`${JSON.stringify(e)}\n`);
      else printStructured(ctx, e);
      return;
    }
    ctx.out(table.rows([EVENTS.row(e, false)]));
  };
  if (structured) for (const e of recent.items) show(e);
  else if (recent.items.length) ctx.out(table.rows(recent.items.map((e) => EVENTS.row(e, false))));
  else ctx.out(table.rows([]));
  // Reconnect with the last seq we saw, so a dropped stream loses nothing the history still holds.
  while (!ctx.signal.aborted) {
    try {
      for await (const e of ctx.client.stream<Event>(
        '/v1/events',
        {
          kind: str(f, 'kind'),
          node: str(f, 'node'),
          role: str(f, 'role'),
          severity: str(f, 'severity'),
          since: last,
        },
        ctx.signal,
      )) {
        if (e.seq <= last) continue;
        last = e.seq;
        show(e);
      }
    } catch (err) {
      if (ctx.signal.aborted || (err as Error).name === 'AbortError') break;
      if (
        (err as { exitCode?: number }).exitCode !== undefined &&
        (err as { exitCode: number }).exitCode !== 1
      )
        throw err;
      ctx.err(`event stream interrupted (${(err as Error).message}); reconnecting\n`);
    }
    await ctx.sleep(1000, ctx.signal);
  }
  return 0;
}
