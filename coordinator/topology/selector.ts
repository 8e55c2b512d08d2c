import type { Labels } from '../../protocol/index.js';
import type { SelectorOp } from './schema.js';
import type { SelectorTerm } from './types.js';

export interface SelectorRequirement {
  key: string;
  op: SelectorOp;
  values: string[];
}

/** The selector as explicit requirements, sorted by key (a bare value means `In [value]`). */
export function selectorRequirements(selector: Record<string, SelectorTerm>): SelectorRequirement[] {
  return Object.keys(selector)
    .sort()
    .map((key) => {
      const t = selector[key]!;
      return typeof t === 'string'
        ? { key, op: 'In' as const, values: [t] }
        : { key, op: t.op, values: t.values ?? [] };
    });
}

export function matchesRequirement(labels: Labels, r: SelectorRequirement): boolean {
  const has = Object.hasOwn(labels, r.key);
  const v = has ? labels[r.key]! : undefined;
  switch (r.op) {
    case 'In':
      return v !== undefined && r.values.includes(v);
    case 'NotIn':
      return v === undefined || !r.values.includes(v);
    case 'Exists':
      return has;
    case 'DoesNotExist':
      return !has;
    case 'Gt':
    case 'Lt': {
      if (v === undefined || !/^-?\d+$/.test(v)) return false;
      const n = Number(v);
      const bound = Number(r.values[0]);
      return r.op === 'Gt' ? n > bound : n < bound;
    }
  }
}

export function matchesSelector(labels: Labels, selector: Record<string, SelectorTerm>): boolean {
  return selectorRequirements(selector).every((r) => matchesRequirement(labels, r));
}

/** `pool=control-plane, drover.dev/cpu-cores>2, zone in (a,b)`: drops the `drover.dev/` prefix for brevity. */
export function describeRequirement(r: SelectorRequirement): string {
  const k = r.key.startsWith('drover.dev/') ? r.key.slice('drover.dev/'.length) : r.key;
  switch (r.op) {
    case 'In':
      return r.values.length === 1 ? `${k}=${r.values[0]}` : `${k} in (${r.values.join(',')})`;
    case 'NotIn':
      return r.values.length === 1 ? `${k}!=${r.values[0]}` : `${k} not in (${r.values.join(',')})`;
    case 'Exists':
      return `has ${k}`;
    case 'DoesNotExist':
      return `no ${k}`;
    case 'Gt':
      return `${k}>${r.values[0]}`;
    case 'Lt':
      return `${k}<${r.values[0]}`;
  }
}

export function describeSelector(selector: Record<string, SelectorTerm>): string {
  return selectorRequirements(selector).map(describeRequirement).join(', ');
}
