// What `vitest` resolves to while benches run (bench/run.ts registers bench/vitest-hooks.mjs):
// test/helpers/proc.ts imports `onTestFinished` from vitest, and vitest cannot be imported outside
// its runner. Outside a test, autoCleanup falls back to file-scoped cleanups (never run by benches).
export function onTestFinished() {
  throw new Error('not inside a vitest test (bench run)');
}
