/** `drover get topology [NAME]` (its listing) and `drover delete topology NAME`. */
import type { Topology } from '../../coordinator/topology/index.js';
import { bool } from '../args.js';
import { type CommandContext, printStructured } from '../context.js';
import { CliError, EXIT, usage } from '../errors.js';
import { REASON_WIDTH, truncate } from '../truncate.js';

export const TOPOLOGIES = {
  header: ['NAME', 'ROLES', 'INSTANCES', 'ROLE NAMES'],
  name: (t: Topology) => `topology/${t.metadata.name}`,
  row: (t: Topology, wide: boolean) => {
    const roles = Object.entries(t.roles ?? {});
    const names = roles.map(([r]) => r).join(',') || '-';
    const replicas = roles.reduce((n, [, s]) => n + (s.replicas ?? 0), 0);
    return [t.metadata.name, roles.length, replicas || '-', wide ? names : truncate(names, REASON_WIDTH)];
  },
};

/**
 * `drover delete topology NAME [--yes]`: removes the cluster's instances (its nodes get plans
 * without them; data stays). Asks on a terminal; without one it needs --yes.
 */
export async function deleteTopology(ctx: CommandContext): Promise<number> {
  const names = ctx.args.positionals.slice(2);
  if (names.length !== 1)
    throw usage(
      'delete topology takes one NAME',
      'e.g. drover delete topology default --yes (see `drover get topology`)',
    );
  const name = names[0]!;
  // fail on a wrong name before asking anything
  await ctx.client.get<Topology>(`/v1/topologies/${encodeURIComponent(name)}`);
  const what = `delete topology ${JSON.stringify(name)}: every instance of cluster ${name} is stopped and removed from its nodes (their data stays)`;
  if (!bool(ctx.args.flags, 'yes')) {
    if (!ctx.confirm)
      throw new CliError(
        `refusing to ${what} without confirmation; nothing was changed`,
        EXIT.USAGE,
        'run again with --yes (no terminal to ask on)',
      );
    if (!(await ctx.confirm(`${what}. Go on?`))) {
      ctx.err('nothing was changed\n');
      return EXIT.FAILED;
    }
  }
  const r = await ctx.client.request<{ message: string }>(
    'DELETE',
    `/v1/topologies/${encodeURIComponent(name)}`,
  );
  if (!printStructured(ctx, r)) ctx.out(`${r.message}\n`);
  return 0;
}
