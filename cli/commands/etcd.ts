/**
 * `drover etcd snapshot save|list|get|delete`: etcd snapshots kept by the coordinator
 * (coordinator/etcd/snapshot-book.ts). `get ID > file` (or `-f FILE`) exports one, checked against
 * its SHA-256 on the way. `drover etcd restore`: rebuilds a cluster's etcd from one after a lost
 * quorum (coordinator/etcd/restore.ts).
 */
import { createHash } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import type { EtcdRestoreView, EtcdSnapshot } from '../../protocol/rest/schemas.js';
import { bool, str } from '../args.js';
import { type CommandContext, printStructured } from '../context.js';
import { CliError, EXIT, usage } from '../errors.js';
import { age, formatTable } from '../table.js';
import { timeoutMs, waitUntil } from './actions.js';

const HINT =
  'drover etcd snapshot save [--cluster C] | list [--cluster C] | get ID [-f FILE [--force]] | delete ID [--yes]; drover etcd restore --snapshot ID --yes [--force] [--dry-run] [--wait] | restore status';
const RESTORE_HINT = 'drover etcd restore --snapshot ID --yes [--force] [--dry-run] [--wait [--timeout 10m]]';

const size = (n: number) =>
  n < 1024 ? `${n} B` : n < 1024 ** 2 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 ** 2).toFixed(1)} MiB`;

export async function etcd(ctx: CommandContext): Promise<number> {
  const [, what, sub, id] = ctx.args.positionals;
  const cluster = str(ctx.args.flags, 'cluster');
  const query = cluster ? { cluster } : undefined;
  if (what === 'restore') return sub === 'status' ? restoreStatus(ctx, query) : restore(ctx, query, sub);
  if (what !== 'snapshot') throw usage(`unknown etcd command ${JSON.stringify(what ?? '')}`, HINT);
  if (sub === 'save') {
    const r = await ctx.client.request<{ message: string; data: EtcdSnapshot }>(
      'POST',
      '/v1/etcd/snapshots',
      {
        query,
      },
    );
    if (!printStructured(ctx, r.data)) ctx.out(`${r.message}\n`);
    return 0;
  }
  if (sub === 'list') {
    const { items } = await ctx.client.get<{ items: EtcdSnapshot[] }>('/v1/etcd/snapshots', query);
    if (printStructured(ctx, items)) return 0;
    const now = ctx.now();
    ctx.out(
      formatTable(
        ['ID', 'CLUSTER', 'REVISION', 'SIZE', 'AGE', 'TRIGGER', 'SHA256'],
        items.map((s) => [
          s.id,
          s.cluster,
          s.revision,
          size(s.size),
          age(s.takenAt, now),
          s.trigger,
          `${s.sha256.slice(0, 12)}…`,
        ]),
      ),
    );
    return 0;
  }
  if (!id) throw usage(`etcd snapshot ${sub ?? ''} needs a snapshot ID`.replace(/ +/g, ' '), HINT);
  const path = `/v1/etcd/snapshots/${encodeURIComponent(id)}`;
  if (sub === 'get') {
    const file = str(ctx.args.flags, 'filename');
    if (file && existsSync(file) && !bool(ctx.args.flags, 'force'))
      throw usage(`${file} exists; nothing was written`, 'give another FILE, or --force to replace it');
    if (!file && !ctx.outBytes)
      throw usage(
        'a snapshot is binary: not written to a terminal',
        `redirect it (drover etcd snapshot get ${id} > ${id}.db) or give -f FILE`,
      );
    const { bytes, headers } = await ctx.client.bytes('GET', path);
    const want = headers.get('x-drover-sha256');
    const sum = createHash('sha256').update(bytes).digest('hex');
    if (want && want !== sum)
      throw new CliError(
        `the snapshot arrived damaged (sha256 ${sum.slice(0, 16)}…, the coordinator says ${want.slice(0, 16)}…); nothing was written`,
        EXIT.FAILED,
      );
    if (file) {
      writeFileSync(file, bytes, { mode: 0o600 });
      ctx.err(`etcd snapshot ${id}: ${bytes.length} bytes written to ${file} (sha256 ${sum})\n`);
    } else ctx.outBytes!(bytes);
    return 0;
  }
  if (sub === 'delete') {
    if (!bool(ctx.args.flags, 'yes')) {
      const what = `delete etcd snapshot ${id}`;
      if (!ctx.confirm)
        throw new CliError(
          `refusing to ${what} without confirmation; nothing was changed`,
          EXIT.USAGE,
          'run again with --yes',
        );
      if (!(await ctx.confirm(`${what}? It cannot be brought back.`))) {
        ctx.err('nothing was changed\n');
        return EXIT.FAILED;
      }
    }
    const r = await ctx.client.request<{ message: string }>('DELETE', path);
    if (!printStructured(ctx, r)) ctx.out(`${r.message}\n`);
    return 0;
  }
  throw usage(`unknown etcd snapshot command ${JSON.stringify(sub ?? '')}`, HINT);
}

/**
 * `drover backup [--cluster C] [-f FILE [--force]]`: a cluster backup (a fresh etcd snapshot, the
 * topology, the PKI, the plan-signing key) to FILE (mode 0600) or a pipe, never a terminal.
 */
export async function backup(ctx: CommandContext): Promise<number> {
  if (ctx.args.positionals.length > 1)
    throw usage('backup takes no arguments', 'drover backup [--cluster C] -f FILE (or > FILE)');
  const file = str(ctx.args.flags, 'filename');
  if (!file && !ctx.outBytes)
    throw usage(
      'a backup holds every secret of the cluster: not written to a terminal',
      'give -f FILE (written mode 0600), or redirect it: drover backup > backup.json',
    );
  if (file && existsSync(file) && !bool(ctx.args.flags, 'force'))
    throw usage(`${file} exists; nothing was written`, 'give another FILE, or --force to replace it');
  const cluster = str(ctx.args.flags, 'cluster');
  const b = await ctx.client.request<{ sha256: string; cluster: string; snapshot: { record: EtcdSnapshot } }>(
    'POST',
    '/v1/backup',
    { query: cluster ? { cluster } : undefined },
  );
  const text = `${JSON.stringify(b)}\n`;
  if (file) writeFileSync(file, text, { mode: 0o600 });
  else ctx.outBytes!(Buffer.from(text));
  ctx.err(
    `cluster backup of ${b.cluster}: etcd snapshot ${b.snapshot.record.id} (revision ${b.snapshot.record.revision}), the topology and the PKI${file ? ` written to ${file}` : ''} (sha256 ${b.sha256.slice(0, 16)}…); keep it encrypted\n`,
  );
  return 0;
}

const restoreLine = (r: EtcdRestoreView): string => {
  const members = r.parked.length + 1;
  const back = r.phase === 'complete' ? members : r.phase === 'rejoining' ? r.rejoined.length + 1 : 0;
  const joining = r.joining ? `, ${r.joining} joining` : '';
  return `${r.phase}: ${back} of ${members} members back${joining}`;
};

/**
 * `drover etcd restore --snapshot ID --yes`: the way back from a lost quorum. Refused (exit 1,
 * nothing changed) while quorum holds unless --force, for another cluster's snapshot, for a damaged
 * one. `--dry-run` lists the steps; `--wait` follows the restore until every member is back.
 */
async function restore(
  ctx: CommandContext,
  query: Record<string, string> | undefined,
  extra: string | undefined,
): Promise<number> {
  if (extra) throw usage(`unexpected ${JSON.stringify(extra)} after etcd restore`, RESTORE_HINT);
  const snapshot = str(ctx.args.flags, 'snapshot');
  if (!snapshot)
    throw usage('etcd restore needs --snapshot ID (see `drover etcd snapshot list`)', RESTORE_HINT);
  const dryRun = bool(ctx.args.flags, 'dry-run');
  const force = bool(ctx.args.flags, 'force');
  if (!dryRun && !bool(ctx.args.flags, 'yes')) {
    const what = `restore etcd from snapshot ${snapshot}`;
    if (!ctx.confirm)
      throw new CliError(
        `refusing to ${what} without confirmation; nothing was changed`,
        EXIT.USAGE,
        'a restore replaces the whole key space with the snapshot: check with --dry-run, then run again with --yes',
      );
    if (!(await ctx.confirm(`${what}? Every write since the snapshot is lost.`))) {
      ctx.err('nothing was changed\n');
      return EXIT.FAILED;
    }
  }
  const r = await ctx.client.request<{ message: string; steps: string[]; data: EtcdRestoreView }>(
    'POST',
    '/v1/etcd/restore',
    { query, body: { snapshot, ...(force ? { force } : {}), ...(dryRun ? { dryRun } : {}) } },
  );
  if (printStructured(ctx, r)) return 0;
  ctx.out(`${r.message}\n${r.steps.map((s, i) => `  ${i + 1}. ${s}`).join('\n')}\n`);
  if (dryRun || !bool(ctx.args.flags, 'wait')) return 0;
  await waitUntil(
    ctx,
    `etcd restore ${r.data.id}`,
    async () => {
      const { items } = await ctx.client.get<{ items: EtcdRestoreView[] }>('/v1/etcd/restore', {
        cluster: r.data.cluster,
      });
      const cur = items.find((x) => x.id === r.data.id);
      if (!cur) return { done: false, progress: 'not recorded yet' };
      return { done: cur.phase === 'complete', progress: restoreLine(cur) };
    },
    {
      timeoutMs: str(ctx.args.flags, 'timeout') ? timeoutMs(ctx) : 600_000,
      hint: 'the restore goes on in the background: `drover etcd restore status` and `drover events` show where it is',
    },
  );
  return 0;
}

async function restoreStatus(
  ctx: CommandContext,
  query: Record<string, string> | undefined,
): Promise<number> {
  const { items } = await ctx.client.get<{ items: EtcdRestoreView[] }>('/v1/etcd/restore', query);
  if (printStructured(ctx, items)) return 0;
  const now = ctx.now();
  ctx.out(
    formatTable(
      ['ID', 'CLUSTER', 'SNAPSHOT', 'TARGET', 'PROGRESS', 'STARTED'],
      items.map((r) => [
        r.id,
        r.cluster,
        r.snapshotId,
        `${r.target.instanceId}@${r.target.nodeId}`,
        restoreLine(r),
        age(r.startedAt, now),
      ]),
    ),
  );
  return 0;
}
