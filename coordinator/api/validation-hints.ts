/**
 * Request validation errors in the user's terms: a refused instance id says what an instance id
 * looks like rather than quoting its regular expression, and a value outside a fixed set lists the
 * allowed values. Used by the API's error handler (app.ts) on Ajv's errors (verbose mode, so each
 * error carries its schema and the refused value).
 */
import { InstanceId, NodeId, RoleName } from '../../protocol/index.js';

/** pattern → what a value of it looks like */
const PATTERN_HINTS = new Map<string, string>([
  [InstanceId.pattern as string, 'an instance id; an instance id is <role>#<ordinal>, e.g. kube-apiserver#2'],
  [NodeId.pattern as string, 'a node id (letters, digits, _ and -, up to 128), e.g. node-1'],
  [RoleName.pattern as string, 'a role name (lower-case letters, digits and -), e.g. kube-apiserver'],
]);

export interface AjvErrorLike {
  keyword: string;
  instancePath?: string;
  message?: string;
  params?: Record<string, unknown>;
  schema?: unknown;
  data?: unknown;
}

function shown(data: unknown): string {
  return data === undefined ? 'the value' : JSON.stringify(data);
}

/** The allowed values of an `anyOf` of constants (TypeBox's Union of Literals), or undefined. */
function constants(schema: unknown): unknown[] | undefined {
  if (!Array.isArray(schema)) return undefined;
  const out: unknown[] = [];
  for (const s of schema) {
    if (!s || typeof s !== 'object' || !('const' in s)) return undefined;
    out.push((s as { const: unknown }).const);
  }
  return out;
}

/**
 * A message for the first validation error, or undefined to keep the default. `all` is every
 * error Ajv reported: a Union of Literals fails with one `const` error per literal, then `anyOf`.
 */
export function validationHint(first: AjvErrorLike, all: AjvErrorLike[]): string | undefined {
  if (first.keyword === 'pattern') {
    const hint = PATTERN_HINTS.get(String(first.params?.pattern));
    return hint ? `${shown(first.data)} is not ${hint}` : undefined;
  }
  if (first.keyword === 'enum' && Array.isArray(first.params?.allowedValues))
    return `${shown(first.data)} is not one of: ${(first.params.allowedValues as unknown[]).join(', ')}`;
  if (first.keyword === 'const' || first.keyword === 'anyOf') {
    const union = all.find((e) => e.keyword === 'anyOf' && e.instancePath === first.instancePath);
    const allowed = constants(union?.schema);
    if (allowed) return `${shown(union?.data ?? first.data)} is not one of: ${allowed.join(', ')}`;
  }
  return undefined;
}
