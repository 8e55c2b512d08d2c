import { usage } from './errors.js';

/** Flags that take a value, with their short forms. Anything else starting with `-` is refused. */
const VALUE_FLAGS: Record<string, string> = {
  server: 'server',
  token: 'token',
  'token-file': 'token-file',
  config: 'config',
  'request-timeout': 'request-timeout',
  output: 'output',
  o: 'output',
  filename: 'filename',
  f: 'filename',
  timeout: 'timeout',
  to: 'to',
  cluster: 'cluster',
  kind: 'kind',
  node: 'node',
  role: 'role',
  severity: 'severity',
  limit: 'limit',
  since: 'since',
  instance: 'instance',
  command: 'command',
  tail: 'tail',
  interval: 'interval',
  state: 'state',
  member: 'member',
  snapshot: 'snapshot',
  slices: 'slices',
  quota: 'quota',
  slice: 'slice',
  selector: 'selector',
  l: 'selector',
  ttl: 'ttl',
  uses: 'uses',
  description: 'description',
};
const BOOL_FLAGS: Record<string, string> = {
  wait: 'wait',
  watch: 'watch',
  w: 'watch',
  'dry-run': 'dry-run',
  force: 'force',
  help: 'help',
  h: 'help',
  version: 'version',
  'no-headers': 'no-headers',
  purge: 'purge',
  yes: 'yes',
  y: 'yes',
  join: 'join',
  'require-approval': 'require-approval',
};

export interface ParsedArgs {
  positionals: string[];
  flags: Record<string, string | boolean>;
}

/** kubectl-style arguments: `-f FILE`, `-oyaml`, `-o=json`, `--wait`, `--timeout=2m`, `--` ends flags. */
export function parseArgs(argv: string[]): ParsedArgs {
  const positionals: string[] = [];
  const flags: Record<string, string | boolean> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (a === '-' || !a.startsWith('-')) {
      positionals.push(a);
      continue;
    }
    const long = a.startsWith('--');
    let name = a.slice(long ? 2 : 1);
    let value: string | undefined;
    const eq = name.indexOf('=');
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    } else if (!long && name.length > 1 && VALUE_FLAGS[name[0]!] && !VALUE_FLAGS[name] && !BOOL_FLAGS[name]) {
      // -ojson, -ffile.yaml
      value = name.slice(1);
      name = name[0]!;
    }
    if (!long && name.length > 1 && !VALUE_FLAGS[name] && !BOOL_FLAGS[name]) throw usage(`unknown flag ${a}`);
    if (VALUE_FLAGS[name]) {
      if (value === undefined) {
        value = argv[++i];
        if (value === undefined) throw usage(`flag ${a} needs a value`);
      }
      flags[VALUE_FLAGS[name]!] = value;
    } else if (BOOL_FLAGS[name]) {
      if (value !== undefined && value !== 'true' && value !== 'false')
        throw usage(`flag --${name} is true or false, not ${JSON.stringify(value)}`);
      flags[BOOL_FLAGS[name]!] = value !== 'false';
    } else {
      throw usage(`unknown flag ${a}`);
    }
  }
  return { positionals, flags };
}

export function str(flags: ParsedArgs['flags'], name: string): string | undefined {
  const v = flags[name];
  return typeof v === 'string' ? v : undefined;
}

export function bool(flags: ParsedArgs['flags'], name: string): boolean {
  return flags[name] === true;
}
