import { readFileSync } from 'node:fs';

function fromPackageJson(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? '0.0.0-unknown';
  } catch {
    return '0.0.0-unknown';
  }
}

/** Bundles get the version baked in by scripts/build.mjs; source runs read package.json. */
export const DROVER_VERSION: string = process.env.DROVER_BUILD_VERSION ?? fromPackageJson();
