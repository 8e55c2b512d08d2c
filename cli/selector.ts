import { usage } from './errors.js';

/**
 * kubectl-style equality-based label selectors, `-l key=value,key!=value,key,!key`, matched in
 * the CLI against the labels the API returns (the API has no selector parameter). Parsing is
 * strict: an empty term, a key with characters a label key cannot have, or a set-based term
 * (`key in (a,b)`) is a usage error naming the term.
 */
export type Requirement =
  | { key: string; op: '=' | '!='; value: string }
  | { key: string; op: 'exists' | '!exists' };

const KEY = /^[A-Za-z0-9]([A-Za-z0-9._/-]{0,251}[A-Za-z0-9])?$/;
const VALUE = /^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$/;
const EXAMPLE = 'e.g. -l pool=control-plane,zone!=b,gpu (key=value, key!=value, key, !key)';

function bad(selector: string, term: string, why: string): Error {
  return usage(`invalid selector ${JSON.stringify(selector)}: ${JSON.stringify(term)} ${why}`, EXAMPLE);
}

export function parseSelector(selector: string): Requirement[] {
  if (!selector.trim()) throw usage('the selector is empty', EXAMPLE);
  const out: Requirement[] = [];
  for (const raw of selector.split(',')) {
    const term = raw.trim();
    if (!term) throw bad(selector, raw, 'is an empty term (two commas, or one at an end)');
    if (/\s(in|notin)\s*\(|[()]/.test(term))
      throw bad(
        selector,
        term,
        'is set-based (in, notin); only key=value, key!=value, key and !key are supported',
      );
    let req: Requirement;
    const m = /^([^=!]*)(!=|==|=)(.*)$/.exec(term);
    if (m) {
      const [, key, op, value] = m as unknown as [string, string, string, string];
      if (value.includes('=') || value.includes('!')) throw bad(selector, term, 'has more than one operator');
      req = { key: key.trim(), op: op === '!=' ? '!=' : '=', value: value.trim() };
      if (!VALUE.test(req.value))
        throw bad(
          selector,
          term,
          `has an invalid value ${JSON.stringify(req.value)} (letters, digits, ., _ and -, up to 63, starting and ending alphanumeric)`,
        );
    } else if (term.startsWith('!')) req = { key: term.slice(1).trim(), op: '!exists' };
    else req = { key: term, op: 'exists' };
    if (!req.key) throw bad(selector, term, 'has no key');
    if (!KEY.test(req.key))
      throw bad(
        selector,
        term,
        `has an invalid key ${JSON.stringify(req.key)} (letters, digits, ., _, / and -, starting and ending alphanumeric)`,
      );
    out.push(req);
  }
  return out;
}

export function matchesSelector(labels: Record<string, string> | undefined, reqs: Requirement[]): boolean {
  const l = labels ?? {};
  return reqs.every((r) => {
    const has = Object.hasOwn(l, r.key);
    if (!('value' in r)) return r.op === 'exists' ? has : !has;
    // kubectl: key!=value also matches nodes without the key
    return r.op === '=' ? has && l[r.key] === r.value : !has || l[r.key] !== r.value;
  });
}
