import type { TopologyProblem } from './errors.js';

/** A problem with its path as segments too, so `parseTopology` can point at the YAML line. */
export interface LocatedProblem extends TopologyProblem {
  segments: Array<string | number>;
}

/** `['roles','etcd','nodeSelector','drover.dev/arch']` → `roles.etcd.nodeSelector["drover.dev/arch"]`. */
export function formatPath(segments: ReadonlyArray<string | number>): string {
  let out = '';
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else if (/^[A-Za-z0-9_-]+$/.test(s)) out += out ? `.${s}` : s;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out;
}

export function problem(segments: Array<string | number>, message: string): LocatedProblem {
  return { path: formatPath(segments), message, segments };
}
