import { resolve, sep } from 'node:path';
import { AgentError } from './errors.js';

/** Where a plan file lands: under the root dir, never outside it (`..` is refused). */
export function filePathUnderRoot(rootDir: string, path: string): string {
  const root = resolve(rootDir);
  const full = resolve(root, `.${path}`);
  if (full !== root && !full.startsWith(root === sep ? root : `${root}${sep}`)) {
    throw new AgentError('DROVER_ERR_PLAN_INVALID', `file ${path} escapes the root dir`, {
      details: { path },
    });
  }
  return full;
}
