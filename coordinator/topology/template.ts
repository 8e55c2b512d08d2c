/**
 * Placeholders in custom roles: `{{ node.address }}` and friends are replaced per instance when the
 * plan is rendered. Only `{{ word.word… }}` forms are placeholders, so Go templates (`{{ .Values }}`)
 * and Jinja (`{{ name }}`) in a file's content pass through untouched.
 */
export const STATIC_PLACEHOLDERS = [
  'node.address',
  'node.hostname',
  'node.id',
  'instance.id',
  'instance.name',
  'instance.ordinal',
  'cluster.name',
  'api.host',
  'api.port',
  'api.url',
] as const;

/** `role.<name>.addresses` (comma-separated, by ordinal) and `role.<name>.count`. */
const ROLE_REF = /^role\.([a-z0-9][a-z0-9-]{0,62})\.(addresses|count)$/;
const PLACEHOLDER = /\{\{\s*([a-z]+(?:\.[A-Za-z0-9-]+)+)\s*\}\}/g;

export interface PlaceholderRef {
  name: string;
  /** for `role.X.*` references */
  role?: string;
}

export function placeholders(text: string): PlaceholderRef[] {
  const out: PlaceholderRef[] = [];
  for (const m of text.matchAll(PLACEHOLDER)) {
    const name = m[1]!;
    const r = ROLE_REF.exec(name);
    out.push(r ? { name, role: r[1] } : { name });
  }
  return out;
}

/** A message naming the first unknown placeholder or unknown role, or undefined when all are fine. */
export function checkPlaceholders(text: string, knownRoles: ReadonlySet<string>): string | undefined {
  for (const p of placeholders(text)) {
    if (p.role !== undefined) {
      if (!knownRoles.has(p.role))
        return `{{${p.name}}} refers to role ${p.role}, which is not in this topology`;
    } else if (!(STATIC_PLACEHOLDERS as readonly string[]).includes(p.name)) {
      return `unknown placeholder {{${p.name}}}; known: ${[...STATIC_PLACEHOLDERS, 'role.<name>.addresses', 'role.<name>.count'].join(', ')}`;
    }
  }
  return undefined;
}

/** Replaces every placeholder with `lookup(name)`; names the lookup does not know are left as they are. */
export function renderTemplate(text: string, lookup: (name: string) => string | undefined): string {
  return text.replace(PLACEHOLDER, (whole, name: string) => lookup(name) ?? whole);
}
