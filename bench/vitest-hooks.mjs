// Module resolve hook for bench runs: `vitest` → bench/vitest-shim.mjs (see there).
export async function resolve(specifier, context, next) {
  if (specifier === 'vitest')
    return { url: new URL('./vitest-shim.mjs', import.meta.url).href, shortCircuit: true };
  return next(specifier, context);
}
