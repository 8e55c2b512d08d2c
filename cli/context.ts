import { stringify as toYaml } from 'yaml';
import { type ParsedArgs, str } from './args.js';
import type { ApiClient } from './client.js';
import { usage } from './errors.js';

export type OutputFormat = 'table' | 'wide' | 'json' | 'yaml' | 'name';

/** What every command gets: the client, its arguments, and where to write. */
export interface CommandContext {
  client: ApiClient;
  args: ParsedArgs;
  out: (text: string) => void;
  err: (text: string) => void;
  /** cancelled on Ctrl-C so watches end cleanly */
  signal: AbortSignal;
  /** injectable for tests; default Date.now / setTimeout */
  now: () => number;
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** asks the user yes/no on a terminal; undefined without one (destructive commands need --yes) */
  confirm?: (question: string) => Promise<boolean>;
  /** bytes to standard output (a file download); undefined when stdout is a terminal */
  outBytes?: (bytes: Uint8Array) => void;
}

export function outputFormat(args: ParsedArgs): OutputFormat {
  const o = str(args.flags, 'output') ?? 'table';
  if (o === 'table' || o === 'wide' || o === 'json' || o === 'yaml' || o === 'name') return o;
  throw usage(`unknown output format ${JSON.stringify(o)}`, 'use -o json, -o yaml, -o wide or -o name');
}

/** Prints a structured value as JSON or YAML; returns false for table formats. */
export function printStructured(ctx: CommandContext, value: unknown): boolean {
  const f = outputFormat(ctx.args);
  if (f === 'json') {
    ctx.out(`${JSON.stringify(value, null, 2)}\n`);
    return true;
  }
  if (f === 'yaml') {
    ctx.out(toYaml(value));
    return true;
  }
  return false;
}

export { sleep } from '../lib/clock.js';
