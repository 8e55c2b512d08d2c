#!/usr/bin/env node
// Builds the Debian packages drover-agent_<version>_all.deb and drover-coordinator_<version>_all.deb
// into build/deb/ from a staging tree, with `dpkg-deb --build --root-owner-group` (no debhelper,
// no fakeroot). The packaging sources (units, default configs, maintainer scripts, man pages,
// changelog, copyright template) live in packaging/; see packaging/README.md.
//
// Usage: node scripts/package.mjs [--out DIR] [--no-build]
//   --out DIR    where the .deb files go (default build/deb)
//   --no-build   use dist/ as it is instead of running scripts/build.mjs first
//   --dist DIR   take the bundles from DIR instead of dist/ (implies --no-build)
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const P = (...p) => join(REPO, 'packaging', ...p);

class PackageError extends Error {}

function parseArgs(argv) {
  const opts = { out: join(REPO, 'build', 'deb'), build: true, dist: join(REPO, 'dist') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--no-build') opts.build = false;
    else if (a === '--out' && argv[i + 1]) opts.out = resolve(argv[++i]);
    else if (a.startsWith('--out=')) opts.out = resolve(a.slice(6));
    else if (a === '--dist' && argv[i + 1]) {
      opts.dist = resolve(argv[++i]);
      opts.build = false;
    } else if (a === '--help' || a === '-h') {
      process.stdout.write('Usage: node scripts/package.mjs [--out DIR] [--no-build] [--dist DIR]\n');
      process.exit(0);
    } else throw new PackageError(`unknown argument ${JSON.stringify(a)} (see --help)`);
  }
  return opts;
}

/** npm's semver → a Debian version: a pre-release `1.2.0-rc.1` becomes `1.2.0~rc.1` (sorts before 1.2.0). */
export function debianVersion(npmVersion) {
  const m = /^(\d+\.\d+\.\d+)(?:-([0-9A-Za-z.-]+))?(?:\+([0-9A-Za-z.-]+))?$/.exec(npmVersion);
  if (!m) throw new PackageError(`package.json version ${JSON.stringify(npmVersion)} is not semver`);
  let v = m[1];
  if (m[2]) v += `~${m[2].replace(/-/g, '.')}`;
  if (m[3]) v += `+${m[3].replace(/-/g, '.')}`;
  return v;
}

/** The newest entry of packaging/changelog: its version, maintainer and date. */
function readChangelog() {
  const text = readFileSync(P('changelog'), 'utf8');
  const head = /^drover \(([^)]+)\) [a-z-]+; urgency=[a-z]+$/m.exec(text);
  const trailer = /^ -- (.+ <[^>]+>) {2}(.+)$/m.exec(text);
  if (!head || !trailer) throw new PackageError('packaging/changelog: cannot parse its newest entry');
  const when = Date.parse(trailer[2]);
  if (Number.isNaN(when))
    throw new PackageError(`packaging/changelog: bad date ${JSON.stringify(trailer[2])}`);
  return { text, version: head[1], maintainer: trailer[1], epochSeconds: Math.floor(when / 1000) };
}

/** Drover's own files are Apache-2.0; every npm package in a bundle gets a stanza with its license. */
function bundledModules(bundles) {
  const mods = new Map();
  for (const b of bundles) {
    const mapFile = `${b}.map`;
    if (!existsSync(mapFile))
      throw new PackageError(`${relative(REPO, mapFile)} is missing: run npm run build`);
    const map = JSON.parse(readFileSync(mapFile, 'utf8'));
    for (const src of map.sources ?? []) {
      const abs = resolve(dirname(mapFile), src);
      const i = abs.lastIndexOf('/node_modules/');
      if (i < 0) continue;
      const rest = abs.slice(i + '/node_modules/'.length).split('/');
      const name = rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
      const dir = `${abs.slice(0, i)}/node_modules/${name}`;
      // nested copies (node_modules/a/node_modules/b) are separate stanzas: versions may differ
      if (!mods.has(dir)) mods.set(dir, { dir, name, path: relative(REPO, dir) });
    }
  }
  return [...mods.values()].sort((a, b) => a.path.localeCompare(b.path));
}

const COMMON_LICENSES = new Set(['Apache-2.0']);

function copyrightOf(mod) {
  const pkg = JSON.parse(readFileSync(join(mod.dir, 'package.json'), 'utf8'));
  const license = typeof pkg.license === 'string' ? pkg.license : pkg.license?.type;
  if (!license) throw new PackageError(`${mod.name}: package.json names no license`);
  const file = readdirSync(mod.dir).find((f) => /^(licen[cs]e|copying)(\.(md|txt))?$/i.test(f));
  const text = file ? readFileSync(join(mod.dir, file), 'utf8').replace(/\r\n?/g, '\n').trim() : undefined;
  const holders = new Set();
  for (const line of (text ?? '').split('\n')) {
    const m = /^\s*copyright\s+(?:\(c\)|©)?\s*(.*\d.*)$/i.exec(line);
    if (m?.[1].trim() && !/holders?\b/i.test(m[1])) holders.add(m[1].trim().replace(/\.$/, ''));
  }
  const author =
    (typeof pkg.author === 'string' ? pkg.author : pkg.author?.name)?.trim() || `the ${mod.name} authors`;
  if (holders.size === 0) holders.add(author);
  // a bare "Copyright (c) 2020" names no holder: the package's author is the best we know
  const named = [...holders].map((h) => (/[A-Za-z]/.test(h) ? h : `${h} ${author}`));
  let body;
  if (COMMON_LICENSES.has(license)) body = undefined;
  else if (text) body = text;
  else if (existsSync(P('licenses', license))) body = readFileSync(P('licenses', license), 'utf8').trim();
  else
    throw new PackageError(
      `${mod.name} (${license}) ships no license file and packaging/licenses/${license} is missing; add it`,
    );
  const lines = [`Files: ${mod.path}/*`, `Copyright: ${named.join('\n ')}`, `License: ${license}`];
  if (body)
    lines.push(...body.split('\n').map((l) => (l.trim() === '' ? ' .' : ` ${l.replace(/\s+$/, '')}`)));
  lines.push(`Comment: ${pkg.name} ${pkg.version}`);
  return `${lines.join('\n')}\n`;
}

function gzip9n(buf) {
  // zlib's gzip header carries no file name and mtime 0: the same bytes as `gzip -9n`, reproducible.
  return gzipSync(buf, { level: 9 });
}

/** Reads a bundle, dropping the sourceMappingURL comment: the packages do not ship source maps. */
function bundleText(file) {
  if (!existsSync(file)) throw new PackageError(`${relative(REPO, file)} is missing: run npm run build`);
  return readFileSync(file, 'utf8').replace(/\n\/\/# sourceMappingURL=[^\n]*\n?$/, '\n');
}

function packageSpecs(version, changelog, distDir) {
  const dist = (n) => join(distDir, `${n}.mjs`);
  const standin = existsSync(dist('drover-standin'));
  const changelogGz = gzip9n(Buffer.from(changelog.text));
  const agentBundles = ['drover-agent', ...(standin ? ['drover-standin'] : [])];
  const coordBundles = ['drover-coordinator', 'drover'];
  const copyright = (bundles) => {
    const stanzas = bundledModules(bundles.map(dist)).map(copyrightOf).join('\n');
    return readFileSync(P('copyright.in'), 'utf8')
      .replace('@MAINTAINER@', changelog.maintainer)
      .replace('@BUNDLED@\n', stanzas ? `${stanzas}\n` : '');
  };
  const common = (pkg, bundles) => [
    ...bundles.map((b) => ({ dest: `usr/lib/drover/${b}.mjs`, data: bundleText(dist(b)), mode: 0o644 })),
    { dest: `usr/share/doc/${pkg}/copyright`, data: copyright(bundles), mode: 0o644 },
    { dest: `usr/share/doc/${pkg}/changelog.gz`, data: changelogGz, mode: 0o644 },
  ];
  const file = (src, dest, mode = 0o644) => ({ dest, data: readFileSync(src), mode });
  const man = (src, dest) => ({ dest, data: gzip9n(readFileSync(src)), mode: 0o644 });
  return [
    {
      name: 'drover-agent',
      dir: 'agent',
      conffiles: ['/etc/drover/agent.yaml'],
      files: [
        ...common('drover-agent', agentBundles),
        file(P('bin', 'drover-agent'), 'usr/bin/drover-agent', 0o755),
        file(P('agent', 'agent.yaml'), 'etc/drover/agent.yaml'),
        file(P('agent', 'drover-agent.service'), 'lib/systemd/system/drover-agent.service'),
        man(P('agent', 'drover-agent.8'), 'usr/share/man/man8/drover-agent.8.gz'),
      ],
    },
    {
      name: 'drover-coordinator',
      dir: 'coordinator',
      conffiles: ['/etc/drover/coordinator.yaml'],
      files: [
        ...common('drover-coordinator', coordBundles),
        file(P('bin', 'drover-coordinator'), 'usr/bin/drover-coordinator', 0o755),
        file(P('bin', 'drover'), 'usr/bin/drover', 0o755),
        file(P('coordinator', 'coordinator.yaml'), 'etc/drover/coordinator.yaml'),
        file(P('coordinator', 'drover-coordinator.service'), 'lib/systemd/system/drover-coordinator.service'),
        // Debian's nats-server runs Drover's bus config (the postinst writes it)
        file(
          P('coordinator', 'nats-server-drover.conf'),
          'lib/systemd/system/nats-server.service.d/drover.conf',
        ),
        man(P('coordinator', 'drover-coordinator.8'), 'usr/share/man/man8/drover-coordinator.8.gz'),
        man(P('coordinator', 'drover.1'), 'usr/share/man/man1/drover.1.gz'),
      ],
    },
  ].map((s) => ({ ...s, version }));
}

function walk(dir) {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    out.push(p);
    if (e.isDirectory()) out.push(...walk(p));
  }
  return out;
}

function stage(spec, stageRoot, changelog) {
  const root = join(stageRoot, spec.name);
  rmSync(root, { recursive: true, force: true });
  mkdirSync(join(root, 'DEBIAN'), { recursive: true });
  for (const f of spec.files) {
    const p = join(root, f.dest);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, f.data);
    chmodSync(p, f.mode);
  }
  // dh_md5sums leaves conffiles out: dpkg tracks their hashes itself.
  const conf = new Set(spec.conffiles.map((c) => c.slice(1)));
  const md5 = spec.files
    .filter((f) => !conf.has(f.dest))
    .sort((a, b) => a.dest.localeCompare(b.dest))
    .map((f) => `${createHash('md5').update(f.data).digest('hex')}  ${f.dest}\n`)
    .join('');
  const tree = walk(root).filter((p) => !relative(root, p).startsWith('DEBIAN'));
  let kib = 0;
  for (const p of tree) kib += lstatSync(p).isDirectory() ? 1 : Math.ceil(statSync(p).size / 1024);
  const control = readFileSync(P(spec.dir, 'control'), 'utf8')
    .replace('@VERSION@', spec.version)
    .replace('@MAINTAINER@', changelog.maintainer)
    .replace('@INSTALLED_SIZE@', String(kib));
  const debian = {
    control: [control, 0o644],
    conffiles: [spec.conffiles.map((c) => `${c}\n`).join(''), 0o644],
    md5sums: [md5, 0o644],
    postinst: [readFileSync(P(spec.dir, 'postinst')), 0o755],
    prerm: [readFileSync(P(spec.dir, 'prerm')), 0o755],
    postrm: [readFileSync(P(spec.dir, 'postrm')), 0o755],
  };
  for (const [name, [data, mode]] of Object.entries(debian)) {
    writeFileSync(join(root, 'DEBIAN', name), data);
    chmodSync(join(root, 'DEBIAN', name), mode);
  }
  // Reproducible: every mtime is the changelog date; directories 0755 whatever the umask.
  for (const p of [root, ...walk(root)]) {
    if (lstatSync(p).isDirectory()) chmodSync(p, 0o755);
    utimesSync(p, changelog.epochSeconds, changelog.epochSeconds);
  }
  return root;
}

function run(cmd, args, env = {}) {
  const r = spawnSync(cmd, args, { cwd: REPO, encoding: 'utf8', env: { ...process.env, ...env } });
  if (r.error) throw new PackageError(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new PackageError(`${cmd} ${args.join(' ')} failed:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** Runs a command to completion, asynchronously so both packages compress at once (xz is the slow part). */
function runAsync(cmd, args, env = {}) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { cwd: REPO, env: { ...process.env, ...env } });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      out += d;
    });
    child.on('error', (err) => reject(new PackageError(`${cmd}: ${err.message}`)));
    child.on('close', (code) =>
      code === 0 ? resolvePromise(out) : reject(new PackageError(`${cmd} ${args.join(' ')} failed:\n${out}`)),
    );
  });
}

export async function main(argv) {
  const opts = parseArgs(argv);
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'));
  const version = debianVersion(pkg.version);
  const changelog = readChangelog();
  if (changelog.version !== version)
    throw new PackageError(
      `packaging/changelog's newest entry is ${changelog.version} but package.json's version is ` +
        `${pkg.version} (Debian ${version}): add a changelog entry for ${version}`,
    );
  if (opts.build) run(process.execPath, ['scripts/build.mjs']);
  const specs = packageSpecs(version, changelog, opts.dist);
  const stageRoot = join(opts.out, 'stage');
  mkdirSync(opts.out, { recursive: true });
  const built = await Promise.all(
    specs.map(async (spec) => {
      const root = stage(spec, stageRoot, changelog);
      const deb = join(opts.out, `${spec.name}_${version}_all.deb`);
      rmSync(deb, { force: true });
      await runAsync('dpkg-deb', ['--build', '--root-owner-group', '-Zxz', root, deb], {
        SOURCE_DATE_EPOCH: String(changelog.epochSeconds),
      });
      return deb;
    }),
  );
  return { version, debs: built, stageRoot };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const { debs } = await main(process.argv.slice(2));
    for (const d of debs) process.stdout.write(`${relative(process.cwd(), d)}\n`);
  } catch (err) {
    process.stderr.write(`package: ${err instanceof PackageError ? err.message : err.stack}\n`);
    process.exit(1);
  }
}
