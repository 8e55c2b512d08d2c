import { bool } from '../args.js';
import { type CommandContext, printStructured } from '../context.js';
import { usage } from '../errors.js';

export const LABEL_USAGE = 'e.g. drover label cp-1 pool=control-plane zone- (KEY=VALUE sets, KEY- removes)';

/** Parses `KEY=VALUE` and `KEY-` arguments; key and value syntax is checked by the server. */
export function parseLabelArgs(args: string[]): { set: Record<string, string>; remove: string[] } {
  const set: Record<string, string> = {};
  const remove: string[] = [];
  for (const a of args) {
    const eq = a.indexOf('=');
    if (eq > 0) {
      const k = a.slice(0, eq);
      if (k in set || remove.includes(k)) throw usage(`label ${k} is given twice`, LABEL_USAGE);
      set[k] = a.slice(eq + 1);
    } else if (eq < 0 && a.length > 1 && a.endsWith('-')) {
      const k = a.slice(0, -1);
      if (k in set || remove.includes(k)) throw usage(`label ${k} is given twice`, LABEL_USAGE);
      remove.push(k);
    } else throw usage(`${JSON.stringify(a)} is neither KEY=VALUE nor KEY-`, LABEL_USAGE);
  }
  return { set, remove };
}

/** `drover label NODE KEY=VALUE… KEY-… [--force]` */
export async function label(ctx: CommandContext): Promise<number> {
  const [, node, ...rest] = ctx.args.positionals;
  if (!node) throw usage('label needs a node and at least one KEY=VALUE or KEY-', LABEL_USAGE);
  if (rest.length === 0) throw usage(`label ${node}: nothing to change`, LABEL_USAGE);
  const change = parseLabelArgs(rest);
  const r = await ctx.client.request<{ message: string }>(
    'PATCH',
    `/v1/nodes/${encodeURIComponent(node)}/labels`,
    { body: { ...change, ...(bool(ctx.args.flags, 'force') ? { force: true } : {}) } },
  );
  if (!printStructured(ctx, r)) ctx.out(`${r.message}\n`);
  return 0;
}
