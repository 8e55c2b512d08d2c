import { readFileSync } from 'node:fs';
import { type Static, type TObject, type TSchema, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import YAML from 'yaml';
import { parseDuration } from './duration.js';

/**
 * Options in three steps: a schema whose every field is optional (the `XOptions`), `DEFAULT_*`
 * values, and `compileConfig()`, which merges file < env < flags, rejects unknown keys by name,
 * turns durations into milliseconds and freezes the result.
 *
 * Mark a duration field with `Duration()`: it accepts `2000`, `"2s"` or `"1m30s"`.
 */
export const Duration = (opts: { description?: string } = {}) =>
  Type.Union([Type.Number({ minimum: 0 }), Type.String()], { ...opts, 'x-duration': true });

export class ConfigError extends Error {
  readonly field: string;
  readonly source: string;
  constructor(source: string, field: string, message: string) {
    super(`${source}: ${field ? `${field}: ` : ''}${message}`);
    this.name = 'ConfigError';
    this.field = field;
    this.source = source;
  }
}

type Leaf = { path: string[]; schema: TSchema };

function leaves(schema: TObject, prefix: string[] = []): Leaf[] {
  const out: Leaf[] = [];
  for (const [k, s] of Object.entries(schema.properties)) {
    const p = [...prefix, k];
    if ((s as TSchema).type === 'object' && (s as TObject).properties && !(s as TSchema)['x-duration']) {
      out.push(...leaves(s as TObject, p));
    } else out.push({ path: p, schema: s as TSchema });
  }
  return out;
}

const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const envName = (prefix: string, path: string[]) =>
  `${prefix}_${path.map((p) => kebab(p).replace(/-/g, '_').toUpperCase()).join('_')}`;
const flagName = (path: string[]) => path.map(kebab).join('-');

function coerce(schema: TSchema, raw: string): unknown {
  if (schema['x-duration']) return raw;
  switch (schema.type) {
    case 'integer':
    case 'number': {
      const n = Number(raw);
      return raw.trim() === '' || Number.isNaN(n) ? raw : n;
    }
    case 'boolean':
      return raw === 'true' || raw === '1' || raw === ''
        ? true
        : raw === 'false' || raw === '0'
          ? false
          : raw;
    case 'array':
      return raw === '' ? [] : raw.split(',').map((s) => s.trim());
    case 'object': {
      const o: Record<string, string> = {};
      for (const kv of raw.split(',').filter(Boolean)) {
        const i = kv.indexOf('=');
        if (i < 1) return raw;
        o[kv.slice(0, i).trim()] = kv.slice(i + 1).trim();
      }
      return o;
    }
    default:
      return raw;
  }
}

function setPath(obj: Record<string, unknown>, path: string[], v: unknown): void {
  let cur = obj;
  for (const p of path.slice(0, -1)) {
    if (typeof cur[p] !== 'object' || cur[p] === null) cur[p] = {};
    cur = cur[p] as Record<string, unknown>;
  }
  cur[path[path.length - 1]!] = v;
}

function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const cur = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && cur && typeof cur === 'object' && !Array.isArray(cur)
        ? deepMerge(cur as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

/** Rejects unknown keys: TypeBox objects default to allowing extras, config must not. */
function strict(schema: TSchema): TSchema {
  if (schema.type === 'object' && schema.properties) {
    const props: Record<string, TSchema> = {};
    for (const [k, s] of Object.entries(schema.properties as Record<string, TSchema>)) props[k] = strict(s);
    return { ...schema, properties: props, additionalProperties: false } as TSchema;
  }
  return schema;
}

function convertDurations(schema: TSchema, value: unknown, path: string, source: string): unknown {
  if (schema['x-duration']) {
    const ms = parseDuration(value);
    if (ms === undefined)
      throw new ConfigError(
        source,
        path,
        `not a duration: ${JSON.stringify(value)} (use e.g. 2s, 500ms, 1m)`,
      );
    return ms;
  }
  if (schema.type === 'object' && schema.properties && value && typeof value === 'object') {
    const out: Record<string, unknown> = { ...(value as Record<string, unknown>) };
    for (const [k, s] of Object.entries(schema.properties as Record<string, TSchema>)) {
      if (out[k] !== undefined) out[k] = convertDurations(s, out[k], path ? `${path}.${k}` : k, source);
    }
    return out;
  }
  return value;
}

function validate(schema: TSchema, value: unknown, source: string): void {
  const errs = [...Value.Errors(strict(schema), value)];
  if (errs.length === 0) return;
  const e = errs[0]!;
  const field = e.path.replace(/^\//, '').replace(/\//g, '.');
  const msg = e.type === 0 || /additional/i.test(e.message) ? 'unknown option' : e.message.toLowerCase();
  throw new ConfigError(source, field, msg);
}

export interface CompileConfigInput {
  /** YAML text of the config file and its path (for messages); absent when there is no file */
  file?: { path: string; text: string };
  env?: Record<string, string | undefined>;
  envPrefix?: string;
  /** `--kebab-case-path value` flags, already split into a map */
  flags?: Record<string, string | boolean>;
}

/** Reads the config file if it exists; a missing default file is not an error, a missing explicit one is. */
export function readConfigFile(path: string, explicit: boolean): { path: string; text: string } | undefined {
  try {
    return { path, text: readFileSync(path, 'utf8') };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !explicit) return undefined;
    throw new ConfigError(path, '', `cannot read config file: ${(err as Error).message}`);
  }
}

/** Merges file < env < flags over defaults, validates, converts durations, freezes. */
export function compileConfig<S extends TObject, D>(
  schema: S,
  defaults: D,
  input: CompileConfigInput,
): Readonly<D> {
  let fromFile: Record<string, unknown> = {};
  if (input.file) {
    let doc: unknown;
    try {
      doc = YAML.parse(input.file.text);
    } catch (err) {
      throw new ConfigError(input.file.path, '', `invalid YAML: ${(err as Error).message}`);
    }
    if (doc != null && (typeof doc !== 'object' || Array.isArray(doc))) {
      throw new ConfigError(input.file.path, '', 'expected a mapping at the top level');
    }
    fromFile = (doc ?? {}) as Record<string, unknown>;
    validate(schema, fromFile, input.file.path);
    fromFile = convertDurations(schema, fromFile, '', input.file.path) as Record<string, unknown>;
  }
  const all = leaves(schema);
  const fromEnv: Record<string, unknown> = {};
  const prefix = input.envPrefix ?? 'DROVER';
  for (const leaf of all) {
    const raw = input.env?.[envName(prefix, leaf.path)];
    if (raw !== undefined) setPath(fromEnv, leaf.path, coerce(leaf.schema, raw));
  }
  validate(schema, fromEnv, 'environment');
  const envConv = convertDurations(schema, fromEnv, '', 'environment') as Record<string, unknown>;

  const fromFlags: Record<string, unknown> = {};
  const byFlag = new Map(all.map((l) => [flagName(l.path), l]));
  for (const [name, raw] of Object.entries(input.flags ?? {})) {
    const leaf = byFlag.get(name);
    if (!leaf) throw new ConfigError('flags', `--${name}`, 'unknown flag');
    setPath(fromFlags, leaf.path, typeof raw === 'boolean' ? raw : coerce(leaf.schema, raw));
  }
  validate(schema, fromFlags, 'flags');
  const flagConv = convertDurations(schema, fromFlags, '', 'flags') as Record<string, unknown>;

  const merged = deepMerge(
    deepMerge(deepMerge(defaults as Record<string, unknown>, fromFile), envConv),
    flagConv,
  );
  return deepFreeze(merged) as Readonly<D>;
}

/** Lists the env var and flag for every option, for `--help`. */
export function describeOptions(
  schema: TObject,
  envPrefix = 'DROVER',
): Array<{ flag: string; env: string; description: string }> {
  return leaves(schema).map((l) => ({
    flag: `--${flagName(l.path)}`,
    env: envName(envPrefix, l.path),
    description: (l.schema.description as string | undefined) ?? '',
  }));
}

export function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

/**
 * Splits argv into positionals and `--flag value` / `--flag=value` / `--bool` pairs. A flag is
 * boolean when the next token is another flag or absent.
 */
export function splitArgs(
  argv: string[],
  booleanFlags: ReadonlySet<string> = new Set(),
): {
  positionals: string[];
  flags: Record<string, string | boolean>;
} {
  const positionals: string[] = [];
  const flags: Record<string, string | boolean> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      if (eq > 0) flags[a.slice(2, eq)] = a.slice(eq + 1);
      else {
        const name = a.slice(2);
        const nxt = argv[i + 1];
        if (booleanFlags.has(name) || nxt === undefined || nxt.startsWith('--')) flags[name] = true;
        else {
          flags[name] = nxt;
          i++;
        }
      }
    } else positionals.push(a);
  }
  return { positionals, flags };
}

export type { Static };
