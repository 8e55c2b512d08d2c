import { readFileSync } from 'node:fs';
import { formatDuration, parseDuration } from '../../lib/duration.js';
import type { Event } from '../../protocol/index.js';
import type {
  DrainStatus,
  EtcdMemberReplaceResult,
  StatusView,
  TaskRecord,
  TokenInfo,
  TopologyDiff,
} from '../../protocol/rest/schemas.js';
import { bool, str } from '../args.js';
import { type CommandContext, printStructured } from '../context.js';
import { CliError, EXIT, usage } from '../errors.js';
import { formatTable } from '../table.js';
import { REASON_WIDTH, truncate } from '../truncate.js';
import { convergenceCheck, summarize, unplacedLines, unplacedOf } from './converge.js';
import type { AssignmentRow, JoinTokenView } from './get.js';

const DEFAULT_TIMEOUT_MS = 120_000;

export function timeoutMs(ctx: CommandContext): number {
  const t = str(ctx.args.flags, 'timeout');
  if (t === undefined) return DEFAULT_TIMEOUT_MS;
  const ms = parseDuration(t);
  if (ms === undefined || ms <= 0)
    throw usage(`--timeout ${JSON.stringify(t)} is not a duration`, 'e.g. --timeout 90s or --timeout 5m');
  return ms;
}

/**
 * Polls `check` until it reports done, printing its progress line (to stderr, so `-o json` output
 * stays parseable) whenever it changes. Gives up with exit code 5 after the timeout, and at once
 * with exit code 1 when `check` reports `fatal` (waiting cannot help).
 */
export async function waitUntil(
  ctx: CommandContext,
  what: string,
  check: () => Promise<{ done: boolean; progress: string; detail?: string[]; fatal?: string }>,
  opts: { timeoutMs: number; intervalMs?: number; hint?: string },
): Promise<void> {
  const start = ctx.now();
  let last = '';
  let lastDetail: string[] = [];
  for (;;) {
    const r = await check();
    if (r.done) {
      ctx.err(`${what}: done in ${formatDuration(ctx.now() - start)}\n`);
      return;
    }
    lastDetail = r.detail ?? [];
    if (r.progress !== last) {
      ctx.err(`${what}: ${r.progress}\n`);
      last = r.progress;
    }
    if (r.fatal)
      throw new CliError(
        `gave up waiting for ${what} after ${formatDuration(ctx.now() - start)}: ${r.fatal}`,
        EXIT.FAILED,
        'this needs a change before it can converge (more or other nodes, fewer replicas, other placement); `drover get roles -o wide` shows every reason',
      );
    if (ctx.signal.aborted) throw new CliError(`interrupted while waiting for ${what}`, EXIT.TIMEOUT);
    if (ctx.now() - start >= opts.timeoutMs) {
      throw new CliError(
        `timed out after ${formatDuration(opts.timeoutMs)} waiting for ${what}: ${last}${lastDetail.length ? `\n  ${lastDetail.slice(0, 10).join('\n  ')}` : ''}`,
        EXIT.TIMEOUT,
        opts.hint ??
          'the operation goes on in the background; `drover get roles -o wide` and `drover events` show why, or raise --timeout',
      );
    }
    await ctx.sleep(opts.intervalMs ?? 1000, ctx.signal);
  }
}

function readInput(file: string): { text: string; contentType: string } {
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw usage(
      `cannot read ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
      'pass the topology file with -f FILE (or -f - for stdin)',
    );
  }
  if (!text.trim()) throw usage(`${file} is empty`);
  const json = file.endsWith('.json') || (file === '-' && text.trimStart().startsWith('{'));
  return { text, contentType: json ? 'application/json' : 'application/yaml' };
}

function diffLines(d: TopologyDiff): string {
  let s = '';
  for (const a of d.added) s += `  + ${a.instanceId} on ${a.nodeId}\n`;
  for (const m of d.moved)
    s += `  ~ ${m.to.instanceId} moves ${m.from.nodeId} -> ${m.to.nodeId} (epoch ${m.to.epoch})\n`;
  for (const a of d.removed) s += `  - ${a.instanceId} from ${a.nodeId}\n`;
  for (const u of d.unplaced) s += `  ! ${u.instanceId} cannot be placed: ${u.reason}\n`;
  if (!s) s = '  no instance changes\n';
  s += d.nodesChanged.length
    ? `  plans change on ${d.nodesChanged.length} node(s): ${d.nodesChanged.join(', ')}\n`
    : '  no node plans change\n';
  return s;
}

async function putTopology(ctx: CommandContext, dryRun: boolean): Promise<TopologyDiff> {
  const file = str(ctx.args.flags, 'filename') ?? ctx.args.positionals[1];
  if (!file)
    throw usage(
      `${dryRun ? 'diff' : 'apply'} needs -f FILE`,
      `e.g. drover ${dryRun ? 'diff' : 'apply'} -f topology.yaml`,
    );
  const input = readInput(file);
  const d = await ctx.client.request<TopologyDiff>('PUT', '/v1/topology', {
    text: { body: input.text, contentType: input.contentType },
    query: { dryRun: dryRun || undefined },
  });
  for (const w of d.warnings ?? []) ctx.err(`warning: ${w}\n`);
  return d;
}

/** Convergence line for one cluster, and the reasons behind it. */
export async function convergence(
  ctx: CommandContext,
  cluster: string | undefined,
): Promise<{ done: boolean; progress: string; detail: string[] }> {
  return summarize(await ctx.client.get<StatusView>('/v1/status', { cluster }));
}

/**
 * `drover apply -f FILE [--dry-run] [--wait] [--timeout 2m]`. The topology is applied even when
 * some instances cannot be placed; the command then lists them and exits 1. `--wait` exits 0 once
 * converged, 1 as soon as the coordinator reports instances it cannot place, 5 on the timeout.
 */
export async function apply(ctx: CommandContext): Promise<number> {
  const dryRun = bool(ctx.args.flags, 'dry-run');
  const d = await putTopology(ctx, dryRun);
  if (!printStructured(ctx, d))
    ctx.out(
      `topology ${JSON.stringify(d.cluster)} ${dryRun ? 'would be applied (dry run)' : 'applied'}\n${diffLines(d)}`,
    );
  if (!dryRun && bool(ctx.args.flags, 'wait')) {
    await waitUntil(ctx, `cluster ${d.cluster} to converge`, convergenceCheck(ctx, d.cluster), {
      timeoutMs: timeoutMs(ctx),
    });
    return 0;
  }
  if (d.unplaced.length) {
    ctx.err(
      `drover: ${d.unplaced.length} instance(s) ${dryRun ? 'would not be placed' : 'cannot be placed'}; the topology ${dryRun ? 'would still be applied' : 'was applied all the same'}:\n  ${unplacedLines(d.unplaced).join('\n  ')}\n  hint: add nodes that fit, lower replicas or change placement; \`drover get roles -o wide\` shows every reason\n`,
    );
    return EXIT.FAILED;
  }
  return 0;
}

/** `drover diff -f FILE`: what apply would change. */
export async function diff(ctx: CommandContext): Promise<number> {
  const d = await putTopology(ctx, true);
  if (!printStructured(ctx, d)) ctx.out(`topology ${JSON.stringify(d.cluster)}:\n${diffLines(d)}`);
  return 0;
}

/**
 * `drover status [--wait]`: is everything converged? Exits 0 when it is, 1 when it is not (still
 * converging or instances unplaced; the reasons are printed), 5 when `--wait` timed out.
 */
export async function status(ctx: CommandContext): Promise<number> {
  const cluster = str(ctx.args.flags, 'cluster');
  if (bool(ctx.args.flags, 'wait')) {
    await waitUntil(
      ctx,
      cluster ? `cluster ${cluster} to converge` : 'convergence',
      convergenceCheck(ctx, cluster),
      { timeoutMs: timeoutMs(ctx) },
    );
  }
  const s = await ctx.client.get<StatusView>('/v1/status', { cluster });
  const code = s.converged ? 0 : EXIT.FAILED;
  if (printStructured(ctx, s)) return code;
  ctx.out(
    `${s.converged ? 'converged' : 'converging'} (coordinator epoch ${s.epoch}, NATS ${s.natsConnected ? 'connected' : 'DISCONNECTED'})\n`,
  );
  ctx.out(
    `nodes: ${
      Object.entries(s.nodes)
        .map(([k, v]) => `${v} ${k}`)
        .join(', ') || 'none'
    }\n`,
  );
  ctx.out(
    formatTable(
      ['CLUSTER', 'CONVERGED', 'ROLES', 'UNPLACED', 'FIRST REASON'],
      s.clusters.map((c) => [
        c.name,
        c.converged ? 'yes' : 'no',
        `${c.healthyRoles}/${c.roles}`,
        c.unplaced,
        truncate(c.reasons[0] ?? '-', REASON_WIDTH),
      ]),
    ),
  );
  if (!s.converged) {
    const unplaced = s.clusters.some((c) => c.unplaced > 0) ? await unplacedOf(ctx, cluster) : [];
    const reasons = s.clusters.flatMap((c) =>
      c.reasons.filter((r) => !/ unschedulable: /.test(r)).map((r) => `${c.name}: ${r}`),
    );
    if (unplaced.length)
      ctx.out(
        `\n${unplaced.length} instance(s) cannot be placed:\n  ${unplacedLines(unplaced).join('\n  ')}\n`,
      );
    if (reasons.length) ctx.out(`\nstill converging:\n  ${reasons.join('\n  ')}\n`);
  }
  return code;
}

type NodeAction = 'approve' | 'cordon' | 'uncordon' | 'drain' | 'repair' | 'remove';

/** `drover approve|cordon|uncordon|drain|repair|remove NODE` */
export async function nodeAction(ctx: CommandContext, action: NodeAction): Promise<number> {
  const id = ctx.args.positionals[1];
  if (!id) throw usage(`${action} needs a node`, `e.g. drover ${action} NODE (see \`drover get nodes\`)`);
  if (action === 'repair' && id === 'etcd') {
    const member = str(ctx.args.flags, 'member');
    if (!member) throw usage('repair etcd needs --member NAME', 'e.g. drover repair etcd --member etcd-1');
    // --dry-run: what the replacement would do (quorum permitting); nothing is done
    const r = await ctx.client.post<EtcdMemberReplaceResult>(
      `/v1/etcd/members/${encodeURIComponent(member)}/replace`,
      {},
      { dryRun: bool(ctx.args.flags, 'dry-run') || undefined },
    );
    if (!printStructured(ctx, r)) ctx.out(`${r.message}\n`);
    return 0;
  }
  if (ctx.args.positionals.length > 2)
    throw usage(`${action} takes one node, got ${ctx.args.positionals.length - 1}`);
  const path = `/v1/nodes/${encodeURIComponent(id)}`;
  if (action === 'repair') return repairNode(ctx, id, path);
  const r =
    action === 'remove'
      ? await ctx.client.request<{ message: string }>('DELETE', path, { query: removeQuery(ctx) })
      : await ctx.client.post<{ message: string }>(`${path}/${action}`, undefined);
  if (!printStructured(ctx, r)) ctx.out(`${r.message}\n`);
  if (action === 'drain' && bool(ctx.args.flags, 'wait')) await waitForDrain(ctx, id, path);
  return 0;
}

interface RepairAnswer {
  ok: boolean;
  message: string;
  data: {
    mode: 'reprovision' | 'reassign' | 'none';
    instances: string[];
    tasks: Array<{ instanceId: string; taskId: string }>;
    failed?: Array<{ instanceId: string; taskId: string; error: string }>;
  };
}

/**
 * `drover repair NODE [--force] [--wait]`: prints what the repair does (the re-provision task of
 * each instance, or the reassignment); `--wait` waits for the tasks (exit 1 if one failed) or,
 * for an Unreachable node, until its instances run elsewhere.
 */
async function repairNode(ctx: CommandContext, id: string, path: string): Promise<number> {
  const wait = bool(ctx.args.flags, 'wait');
  const r = await ctx.client.post<RepairAnswer>(
    `${path}/repair`,
    { force: bool(ctx.args.flags, 'force') },
    { wait: wait || undefined },
  );
  if (!printStructured(ctx, r)) {
    ctx.out(`${r.message}\n`);
    if (wait && r.data.mode === 'reprovision')
      for (const t of r.data.tasks) {
        const f = r.data.failed?.find((x) => x.instanceId === t.instanceId);
        ctx.out(
          `  ${f ? 'x' : '+'} ${t.instanceId}: task ${t.taskId} ${f ? `failed: ${f.error}` : 'succeeded'}\n`,
        );
      }
    else if (r.data.tasks.length) ctx.out('  `drover get tasks` shows their results\n');
  }
  if (!r.ok) return EXIT.FAILED;
  if (wait && r.data.mode === 'reassign')
    await waitUntil(
      ctx,
      `the instances of ${id} to run elsewhere`,
      async () => {
        const all = await ctx.client.get<{ items: AssignmentRow[] }>('/v1/assignments');
        const left = all.items.filter((a) => r.data.instances.includes(a.instanceId) && a.nodeId === id);
        return {
          done: left.length === 0,
          progress: left.length
            ? `${left.length} still on ${id}: ${left.map((a) => a.instanceId).join(', ')}`
            : 'moved',
        };
      },
      { timeoutMs: timeoutMs(ctx) },
    );
  return 0;
}

/**
 * `drain NODE --wait`: returns when the node is empty, its agent stopped everything and every
 * replacement is healthy (GET /v1/nodes/:id/drain, under the disruption budget); fails (exit 1)
 * with the reasons when the drain cannot finish without an operator, or was cancelled.
 */
async function waitForDrain(ctx: CommandContext, id: string, path: string): Promise<void> {
  let blockedSeen = 0;
  await waitUntil(
    ctx,
    `node ${id} to drain`,
    async () => {
      const d = await ctx.client.get<DrainStatus>(`${path}/drain`);
      if (d.done) return { done: true, progress: 'done' };
      if (d.state !== 'Draining' && d.state !== 'Unreachable')
        throw new CliError(
          `node ${id} is no longer draining (it is ${d.state}): the drain was cancelled`,
          EXIT.FAILED,
          `\`drover drain ${id} --wait\` starts it again`,
        );
      const blocked = d.items.filter((i) => i.state === 'blocked');
      blockedSeen = blocked.length ? blockedSeen + 1 : 0;
      // seen twice in a row, so a reconcile in between cannot make it look stuck
      if (blockedSeen >= 2)
        throw new CliError(
          `the drain of ${id} cannot finish:\n  ${blocked.map((i) => `${i.instanceId}: ${i.reason ?? 'blocked'}`).join('\n  ')}`,
          EXIT.FAILED,
          `the node stays Draining (everything else has moved); fix the cause, or \`drover uncordon ${id}\` to end the drain`,
        );
      const on = d.items.filter((i) => i.nodeId === id);
      const starting = d.items.filter((i) => i.state === 'starting');
      const parts = [
        ...on.map((i) => `${i.instanceId} ${i.state}${i.reason ? ` (${i.reason})` : ''}`),
        ...starting.map((i) => `${i.instanceId} starting on ${i.nodeId}`),
      ];
      return {
        done: false,
        progress: parts.length
          ? `${on.length} instance(s) left, ${starting.length} replacement(s) starting: ${parts.join('; ')}`
          : 'waiting for the agent to stop its instances',
        detail: parts,
      };
    },
    { timeoutMs: timeoutMs(ctx), intervalMs: 500 },
  );
}

/** `remove NODE [--force [--timeout 15s]]`: a forced removal of a live node waits for its agent to stop its instances. */
function removeQuery(ctx: CommandContext): Record<string, string | number | boolean | undefined> {
  const force = bool(ctx.args.flags, 'force');
  if (!force) {
    if (str(ctx.args.flags, 'timeout') !== undefined)
      throw usage('--timeout goes with --force', 'e.g. drover remove NODE --force --timeout 30s');
    return {};
  }
  const t = str(ctx.args.flags, 'timeout');
  if (t === undefined) return { force: true };
  const ms = parseDuration(t);
  if (ms === undefined || ms < 1000 || ms > 600_000)
    throw usage(`--timeout ${JSON.stringify(t)} is not a duration from 1s to 10m`, 'e.g. --timeout 30s');
  return { force: true, timeout: Math.ceil(ms / 1000) };
}

/** `drover move INSTANCE --to NODE [--wait]` */
export async function move(ctx: CommandContext): Promise<number> {
  const instance = ctx.args.positionals[1];
  const to = str(ctx.args.flags, 'to');
  if (!instance || !to)
    throw usage('move needs an instance and --to NODE', 'e.g. drover move kube-apiserver#1 --to node-3');
  const wait = bool(ctx.args.flags, 'wait');
  // events after this seq tell whether the move was dropped or held while we wait
  const since = wait
    ? ((await ctx.client.get<{ items: Event[] }>('/v1/events', { limit: 1 })).items.at(-1)?.seq ?? 0)
    : 0;
  // A target that cannot take the instance is refused here (409 DROVER_ERR_MOVE_REFUSED, exit 1).
  const r = await ctx.client.post<{ message: string }>(
    `/v1/assignments/${encodeURIComponent(instance)}/move`,
    { to, ...(bool(ctx.args.flags, 'force') ? { force: true } : {}) },
  );
  if (!printStructured(ctx, r)) ctx.out(`${r.message}\n`);
  if (wait) {
    let held = '';
    await waitUntil(
      ctx,
      `${instance} to run on ${to}`,
      async () => {
        const ev = await ctx.client.get<{ items: Event[] }>('/v1/events', { since });
        const mine = ev.items.filter((e) => e.instanceId === instance);
        const refused = mine.find((e) => e.kind === 'role.move-refused');
        if (refused) throw new CliError(refused.message, EXIT.FAILED);
        held = mine.find((e) => e.kind === 'repair.held')?.message ?? held;
        const all = await ctx.client.get<{ items: AssignmentRow[] }>('/v1/assignments');
        const a = all.items.find((x) => x.instanceId === instance);
        if (!a) return { done: false, progress: 'not assigned anywhere' };
        const healthy = (a.phase === 'Healthy' || a.phase === 'Running') && a.health !== 'unhealthy';
        return {
          done: a.nodeId === to && healthy,
          progress: held && a.nodeId !== to ? held : `on ${a.nodeId}, ${a.phase}`,
        };
      },
      {
        timeoutMs: timeoutMs(ctx),
        hint: `the move stays requested until ${instance} runs on ${to} or is refused; \`drover events --kind role.move\` and \`drover events --kind repair.held\` show why it waits`,
      },
    );
  }
  return 0;
}

/** `drover task NODE KIND [--instance ID] [--command NAME] [--tail N] [--wait]` */
export async function task(ctx: CommandContext): Promise<number> {
  const [, nodeId, kind] = ctx.args.positionals;
  if (!nodeId || !kind)
    throw usage('task needs a node and a kind', 'e.g. drover task node-1 restart --instance etcd#0 --wait');
  const f = ctx.args.flags;
  const body: Record<string, unknown> = { nodeId, kind };
  if (str(f, 'instance')) body.instanceId = str(f, 'instance');
  if (str(f, 'command')) body.command = str(f, 'command');
  if (str(f, 'tail')) body.tailLines = Number(str(f, 'tail'));
  if (str(f, 'timeout')) body.timeoutMs = timeoutMs(ctx);
  const wait = bool(f, 'wait');
  // with wait=true the server answers when the task ends (its timeout, default 30 s, plus the bus's)
  const client = wait
    ? ctx.client.forLongRequest((body.timeoutMs as number | undefined) ?? 30_000)
    : ctx.client;
  const t = await client.post<TaskRecord>('/v1/tasks', body, { wait: wait || undefined });
  if (printStructured(ctx, t)) return t.state === 'failed' ? EXIT.FAILED : 0;
  ctx.out(`task ${t.id} ${t.state}\n`);
  if (t.result?.output) ctx.out(t.result.output.endsWith('\n') ? t.result.output : `${t.result.output}\n`);
  if (t.error) ctx.err(`${t.error.code}: ${t.error.message}\n`);
  return t.state === 'failed' ? EXIT.FAILED : 0;
}

/** `drover token create --join [--ttl 1h] [--uses 1] [--description D] [--require-approval]`: prints the token and the join command. */
async function createJoinToken(ctx: CommandContext, extra: string | undefined): Promise<number> {
  if (extra)
    throw usage(
      `token create --join takes no name (got ${JSON.stringify(extra)})`,
      'describe it with --description, e.g. drover token create --join --description rack-4',
    );
  if (str(ctx.args.flags, 'role') !== undefined) throw usage('--role is for API tokens, not with --join');
  const body: Record<string, unknown> = {};
  const ttl = str(ctx.args.flags, 'ttl');
  if (ttl !== undefined) body.ttl = ttl;
  const uses = str(ctx.args.flags, 'uses');
  if (uses !== undefined) {
    if (!/^\d+$/.test(uses))
      throw usage(`--uses: ${JSON.stringify(uses)} is not a whole number`, 'e.g. --uses 5');
    body.uses = Number(uses);
  }
  const description = str(ctx.args.flags, 'description');
  if (description !== undefined) body.description = description;
  if (bool(ctx.args.flags, 'require-approval')) body.requireApproval = true;
  const t = await ctx.client.post<JoinTokenView & { token: string; joinCommand: string }>(
    '/v1/join-tokens',
    body,
  );
  if (!printStructured(ctx, t)) {
    ctx.err(
      `created join token ${t.id} (${t.uses} use(s), expires ${t.expiresAt}${t.requireApproval ? '; hosts wait Pending for `drover approve`' : ''}); it is shown once, store it now:\n`,
    );
    ctx.out(`${t.token}\n`);
    ctx.err('join a host with (as root on it):\n');
    ctx.err(`  ${t.joinCommand}\n`);
  }
  return 0;
}

async function revokeJoinToken(ctx: CommandContext, id: string | undefined): Promise<number> {
  if (!id) throw usage('token revoke needs a join token id', 'see `drover get tokens` (KIND join)');
  const t = await ctx.client.request<JoinTokenView>('DELETE', `/v1/join-tokens/${encodeURIComponent(id)}`);
  if (!printStructured(ctx, t)) ctx.out(`join token ${t.id} revoked\n`);
  return 0;
}

/**
 * `drover token create NAME [--role viewer|operator|admin] | token delete NAME|ID` (API tokens),
 * `drover token create --join [--ttl 1h] [--uses 1] [--description D] | token revoke ID |
 * token delete --join ID` (join tokens). The role defaults to viewer (the least one); API token
 * names are unique.
 */
export async function token(ctx: CommandContext): Promise<number> {
  const [, sub, arg] = ctx.args.positionals;
  const joinFlag = bool(ctx.args.flags, 'join');
  if (
    !joinFlag &&
    ((str(ctx.args.flags, 'ttl') ?? str(ctx.args.flags, 'uses') ?? str(ctx.args.flags, 'description')) !==
      undefined ||
      bool(ctx.args.flags, 'require-approval'))
  )
    throw usage('--ttl, --uses, --description and --require-approval are for join tokens: add --join');
  if (sub === 'create' && joinFlag) return createJoinToken(ctx, arg);
  if (sub === 'revoke' || (sub === 'delete' && joinFlag)) return revokeJoinToken(ctx, arg);
  if (sub === 'create') {
    const role = str(ctx.args.flags, 'role') ?? 'viewer';
    if (!arg)
      throw usage(
        'token create needs a name (or --join for a join token)',
        'e.g. drover token create ci-bot --role operator, or drover token create --join --ttl 1h',
      );
    const t = await ctx.client.post<TokenInfo & { token: string }>('/v1/tokens', { name: arg, role });
    if (!printStructured(ctx, t)) {
      ctx.err(`created token ${t.id} (${t.name}, ${t.role}); it is shown once, store it now:\n`);
      ctx.out(`${t.token}\n`);
    }
    return 0;
  }
  if (sub === 'delete') {
    if (!arg) throw usage('token delete needs a token name or id', 'see `drover get tokens`');
    const t = await ctx.client.request<TokenInfo>('DELETE', `/v1/tokens/${encodeURIComponent(arg)}`);
    if (!printStructured(ctx, t)) ctx.out(`token ${t.id} (${t.name}) deleted\n`);
    return 0;
  }
  throw usage(
    `unknown token command ${JSON.stringify(sub ?? '')}`,
    'drover token create NAME [--role viewer|operator|admin] (default viewer), drover token delete NAME|ID, drover token create --join [--ttl 1h] [--uses 1] [--description D], drover token revoke ID, drover get tokens',
  );
}
