// The coordinator's error registry is static and typed: `coordinatorError` takes only a registered
// code (an unknown one does not compile, see the @ts-expect-error below, checked by `npm run
// typecheck`), and every code has its status without any module having to register it first.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
// Deliberately only coordinator/errors.ts: the API's codes must be there without loading the API.
import {
  COORDINATOR_ERRORS,
  type CoordinatorErrorCode,
  coordinatorError,
  isCoordinatorErrorCode,
} from '../../coordinator/errors.js';
import { DroverError } from '../../protocol/index.js';

/** Never called: it exists for the compiler. */
function typeChecks(): void {
  // @ts-expect-error an unknown code is a type error, not a 500 at run time
  coordinatorError('DROVER_ERR_NO_SUCH_CODE', 'x');
  const known: CoordinatorErrorCode = 'DROVER_ERR_NODE_NOT_FOUND';
  // @ts-expect-error a plain string is not a code: check it with isCoordinatorErrorCode first
  coordinatorError('DROVER_ERR_NODE_NOT_FOUND' as string, 'x');
  const s: string = known;
  if (isCoordinatorErrorCode(s)) coordinatorError(s, 'narrowed');
}
void typeChecks;

describe('the static error registry', () => {
  it('every code has an HTTP status and a description, and coordinatorError answers with it', () => {
    const codes = Object.keys(COORDINATOR_ERRORS) as CoordinatorErrorCode[];
    expect(codes.length).toBeGreaterThan(50);
    for (const code of codes) {
      const spec = COORDINATOR_ERRORS[code]!;
      expect(Number.isInteger(spec.status) && spec.status >= 400 && spec.status <= 599, code).toBe(true);
      expect(spec.description.trim().length, `${code} description`).toBeGreaterThan(10);
      const e = coordinatorError(code, 'm', { a: 1 });
      expect(e).toBeInstanceOf(DroverError);
      expect(e.code).toBe(code);
      expect(e.status, code).toBe(spec.status);
    }
  });

  it('holds the API and topology codes statically, without the API having been loaded', () => {
    expect(coordinatorError('DROVER_ERR_NOT_FOUND', 'no route').status).toBe(404);
    expect(coordinatorError('DROVER_ERR_TOKEN_EXISTS', 'dup').status).toBe(409);
    expect(coordinatorError('DROVER_ERR_UNSUPPORTED_MEDIA_TYPE', 'xml').status).toBe(415);
    expect(coordinatorError('DROVER_ERR_TOPOLOGY_INVALID', 'bad').status).toBe(400);
  });

  it('isCoordinatorErrorCode tells registered codes from other strings', () => {
    expect(isCoordinatorErrorCode('DROVER_ERR_NODE_NOT_FOUND')).toBe(true);
    expect(isCoordinatorErrorCode('DROVER_ERR_NO_SUCH_CODE')).toBe(false);
    expect(isCoordinatorErrorCode('toString')).toBe(false);
    expect(isCoordinatorErrorCode(404)).toBe(false);
  });

  it('docs/errors.md lists every code with its status', () => {
    const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
    for (const [code, spec] of Object.entries(COORDINATOR_ERRORS))
      expect(doc, `${code} in docs/errors.md`).toContain(`| \`${code}\` | ${spec.status} |`);
  });
});
