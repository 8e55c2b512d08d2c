import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { expect } from 'vitest';

const DIR = join(process.cwd(), 'test', 'golden');

/**
 * Compares `value` with `test/golden/<name>.json`. `UPDATE_GOLDEN=1` rewrites the file instead; a
 * missing file fails (so a golden test can never pass by writing its own expectation).
 */
export function expectGolden(name: string, value: unknown): void {
  const path = join(DIR, `${name}.json`);
  const text = `${JSON.stringify(value, null, 2)}\n`;
  if (process.env.UPDATE_GOLDEN === '1') {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
    return;
  }
  if (!existsSync(path))
    throw new Error(`golden file ${path} is missing: run with UPDATE_GOLDEN=1 to create it, then review it`);
  expect(JSON.parse(text)).toEqual(JSON.parse(readFileSync(path, 'utf8')));
}
