import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { connect as natsConnect } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  freePort,
  hasBinary,
  killAndWait,
  rmrf,
  type Spawned,
  spawnLogged,
  tempDir,
  waitFor,
} from '../helpers/proc.js';

/**
 * Builds the two .deb packages with `npm run package`'s script, then checks what issue 9 asks:
 * lintian reports no errors or warnings (and packaging/README.md explains every remaining tag),
 * `systemd-analyze verify` is clean for both units, and, as root, the round trip
 * dpkg -i → run the installed commands → dpkg -r → dpkg -P leaves nothing behind.
 *
 * The round trip really installs the packages on this host (that is the point), so it refuses to
 * run where a drover package is already installed, and purges whatever it installed in afterAll.
 */

const REPO = new URL('../..', import.meta.url).pathname;
const AGENT = 'drover-agent';
const COORD = 'drover-coordinator';

function sh(cmd: string, args: string[], env: Record<string, string> = {}): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, {
    encoding: 'utf8',
    cwd: '/',
    env: { ...process.env, ...env },
    timeout: 120_000,
  });
}
const out = (r: SpawnSyncReturns<string>) => `${r.stdout ?? ''}${r.stderr ?? ''}`;
function ok(cmd: string, args: string[], env: Record<string, string> = {}): string {
  const r = sh(cmd, args, env);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}:\n${out(r)}`);
  return r.stdout;
}
const dpkgStatus = (pkg: string) => sh('dpkg-query', ['-W', `-f=\${Status}`, pkg]).stdout.trim();
/** "install ok installed", not "deinstall ok config-files" nor "unknown ok not-installed" */
const installed = (pkg: string) => / installed$/.test(dpkgStatus(pkg));
/** anything dpkg still has a record of: installed, half-installed, config-files … */
const known = (pkg: string) => dpkgStatus(pkg) !== '' && !dpkgStatus(pkg).endsWith('not-installed');

/** verify checks Documentation=man: pages with man(1); minimal images lack man-db, so say so and skip that part. */
function manCheck(): string[] {
  if (hasBinary('man')) return [];
  console.warn('packaging test: man-db is not installed; systemd-analyze verify runs with --man=no');
  return ['--man=no'];
}

const skipReason =
  process.getuid?.() !== 0
    ? 'not root: building with --root-owner-group works, but dpkg -i needs root'
    : !hasBinary('dpkg') || !hasBinary('dpkg-deb')
      ? 'dpkg/dpkg-deb are missing (not a Debian host)'
      : undefined;

const pkgVersion = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version as string;
const debVersion = pkgVersion.replace(/-/, '~').replace(/-/g, '.');

describe.skipIf(skipReason)(`packaging${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let outDir: string;
  let debs: Record<string, string>;
  let userExisted = false;
  let weInstalled = false;

  beforeAll(() => {
    outDir = tempDir('deb');
    // dist/ was built by vitest's globalSetup; --no-build keeps this file from racing it.
    ok(process.execPath, [join(REPO, 'scripts/package.mjs'), '--no-build', '--out', outDir]);
    debs = {
      [AGENT]: join(outDir, `${AGENT}_${debVersion}_all.deb`),
      [COORD]: join(outDir, `${COORD}_${debVersion}_all.deb`),
    };
    userExisted = sh('getent', ['passwd', 'drover']).status === 0;
  });

  afterAll(() => {
    // Only a failed round trip gets here with the packages still installed.
    if (weInstalled) for (const p of [AGENT, COORD]) if (known(p)) sh('dpkg', ['--purge', p]);
    if (weInstalled && !userExisted && sh('getent', ['passwd', 'drover']).status === 0) {
      sh('userdel', ['drover']);
      sh('groupdel', ['drover']);
    }
    if (outDir) rmrf(outDir);
  });

  it('builds both packages with the declared metadata and layout', () => {
    for (const [name, deb] of Object.entries(debs)) {
      expect(existsSync(deb), deb).toBe(true);
      const field = (f: string) => ok('dpkg-deb', ['-f', deb, f]).trim();
      expect(field('Package')).toBe(name);
      expect(field('Version')).toBe(debVersion);
      expect(field('Architecture')).toBe('all');
      expect(field('Depends')).toMatch(/^nodejs \(>= 20\)/);
    }
    const list = (deb: string) =>
      ok('dpkg-deb', ['-c', deb])
        .split('\n')
        .map((l) => l.split(/\s+/).slice(5).join(' ').replace(/^\.\//, '/'))
        .filter(Boolean);
    expect(list(debs[AGENT]!)).toEqual(
      expect.arrayContaining([
        '/usr/bin/drover-agent',
        '/usr/lib/drover/drover-agent.mjs',
        '/etc/drover/agent.yaml',
        '/lib/systemd/system/drover-agent.service',
        '/usr/share/doc/drover-agent/copyright',
        '/usr/share/doc/drover-agent/changelog.gz',
        '/usr/share/man/man8/drover-agent.8.gz',
      ]),
    );
    expect(list(debs[COORD]!)).toEqual(
      expect.arrayContaining([
        '/usr/bin/drover-coordinator',
        '/usr/bin/drover',
        '/usr/lib/drover/drover-coordinator.mjs',
        '/usr/lib/drover/drover.mjs',
        '/etc/drover/coordinator.yaml',
        '/lib/systemd/system/drover-coordinator.service',
        '/usr/share/man/man1/drover.1.gz',
      ]),
    );
    if (existsSync(join(REPO, 'dist/drover-standin.mjs')))
      expect(list(debs[AGENT]!)).toContain('/usr/lib/drover/drover-standin.mjs');
    expect(ok('dpkg-deb', ['-I', debs[AGENT]!, 'conffiles'])).toBe('/etc/drover/agent.yaml\n');
    expect(ok('dpkg-deb', ['-I', debs[COORD]!, 'conffiles'])).toBe('/etc/drover/coordinator.yaml\n');
  });

  it('passes lintian with no errors or warnings; packaging/README.md explains every other tag', () => {
    expect(hasBinary('lintian'), 'lintian is not installed: apt-get install -y lintian').toBe(true);
    const r = sh('lintian', [
      '--tag-display-limit',
      '0',
      '-I',
      '-E',
      '--pedantic',
      debs[AGENT]!,
      debs[COORD]!,
    ]);
    const lines = out(r)
      .split('\n')
      .filter((l) => /^[A-Z]: /.test(l));
    expect(lines.filter((l) => /^[EW]: /.test(l))).toEqual([]);
    const readme = readFileSync(join(REPO, 'packaging/README.md'), 'utf8');
    const tags = new Set(lines.map((l) => /^[A-Z]: [^:]+: (\S+)/.exec(l)?.[1]).filter(Boolean));
    for (const tag of tags)
      expect(readme, `packaging/README.md does not explain lintian tag ${tag}`).toContain(tag!);
  });

  it('has systemd units that systemd-analyze verify finds clean', () => {
    expect(hasBinary('systemd-analyze'), 'systemd-analyze is missing: apt-get install -y systemd').toBe(true);
    // systemd is not PID 1 here, so verify runs against a root holding both staged packages and
    // the host's targets: it checks ExecStart= binaries inside that root and (via MANPATH) that
    // every Documentation=man: page exists.
    const root = tempDir('unitroot');
    for (const p of [AGENT, COORD])
      cpSync(join(outDir, 'stage', p), root, { recursive: true, verbatimSymlinks: true });
    rmrf(join(root, 'DEBIAN'));
    const unitDir = join(root, 'lib/systemd/system');
    for (const f of readdirSync('/lib/systemd/system'))
      if (f.endsWith('.target'))
        cpSync(join('/lib/systemd/system', f), join(unitDir, f), { dereference: true });
    const r = sh(
      'systemd-analyze',
      ['verify', ...manCheck(), `--root=${root}`, `${AGENT}.service`, `${COORD}.service`],
      {
        MANPATH: join(root, 'usr/share/man'),
      },
    );
    expect(out(r)).toBe('');
    expect(r.status).toBe(0);
    rmrf(root);
  });

  it('installs, runs, removes and purges without leaving anything behind', async (ctx) => {
    // a host with Drover installed for real: never purge it from a test
    if (known(AGENT) || known(COORD)) ctx.skip('drover packages are already installed on this host');
    // nodejs (>= 20) must be a package dpkg knows for a plain `dpkg -i`; on a host where node 20
    // came from elsewhere (Debian 12's own nodejs is 18) the dependency is forced, and said so.
    const nodeVersion = sh('dpkg-query', ['-W', `-f=\${Version}`, 'nodejs']).stdout;
    const nodeOk =
      nodeVersion !== '' && sh('dpkg', ['--compare-versions', nodeVersion, 'ge', '20']).status === 0;
    const force = nodeOk ? [] : ['--force-depends'];
    if (!nodeOk)
      console.warn(
        `packaging test: nodejs ${nodeVersion || 'not'} installed as a package; using --force-depends`,
      );

    weInstalled = true;
    const first = ok('dpkg', ['-i', ...force, debs[AGENT]!, debs[COORD]!]);
    // unconfigured: postinst does not start the agent and says how to join
    expect(first).toMatch(/drover-agent: not started: \/etc\/drover\/agent.yaml names no NATS server yet/);
    expect(installed(AGENT) && installed(COORD)).toBe(true);

    // the installed commands run from /usr/lib/drover, with no node_modules anywhere near them
    expect(ok('/usr/bin/drover-agent', ['--version'])).toContain(pkgVersion);
    expect(ok('/usr/bin/drover', ['--version'])).toContain(pkgVersion);
    expect(ok('/usr/bin/drover-coordinator', ['--version'])).toContain(pkgVersion);

    // postinst: user, dirs, config modes, units enabled (offline: systemd is not running)
    expect(ok('getent', ['passwd', 'drover'])).toMatch(
      /^drover:x:\d+:\d+:.*:\/var\/lib\/drover\/coordinator:/,
    );
    const mode = (p: string) => statSync(p).mode & 0o7777;
    expect(mode('/etc/drover/agent.yaml')).toBe(0o600);
    expect(mode('/etc/drover/coordinator.yaml')).toBe(0o640);
    expect(ok('stat', ['-c', '%U:%G', '/etc/drover/coordinator.yaml']).trim()).toBe('root:drover');
    expect(ok('stat', ['-c', '%U:%G %a', '/var/lib/drover/coordinator']).trim()).toBe('drover:drover 750');
    expect(mode('/var/lib/drover/agent')).toBe(0o700);
    for (const u of [AGENT, COORD])
      expect(lstatSync(`/etc/systemd/system/multi-user.target.wants/${u}.service`).isSymbolicLink()).toBe(
        true,
      );

    // the installed units, checked where they are, man pages included
    const v = sh('systemd-analyze', [
      'verify',
      ...manCheck(),
      `/lib/systemd/system/${AGENT}.service`,
      `/lib/systemd/system/${COORD}.service`,
    ]);
    expect(out(v)).toBe('');

    // join writes the conffile in place; reinstalling (prerm upgrade + postinst configure again:
    // the scripts are idempotent) keeps the admin's config and now sees the agent as configured
    const bad = sh('/usr/bin/drover-agent', ['join', '--server', 'http://192.0.2.1:4222', '--token', 'tok']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--server: "http:\/\/192.0.2.1:4222" has scheme http.*nothing was written/);
    expect(readFileSync('/etc/drover/agent.yaml', 'utf8')).toBe(
      readFileSync(join(outDir, 'stage', AGENT, 'etc/drover/agent.yaml'), 'utf8'),
    );
    // the bus is configured for Debian's nats-server (which runs as `nats`): keys and CA are
    // the coordinator's (0700), the server's config and files belong to nats
    expect(ok('stat', ['-c', '%U:%G %a', '/var/lib/drover/coordinator/bus']).trim()).toBe(
      'drover:drover 700',
    );
    expect(ok('stat', ['-c', '%U:%G %a', '/etc/drover/nats-server.conf']).trim()).toBe('root:nats 640');
    expect(ok('stat', ['-c', '%U', '/var/lib/drover/nats/server.key']).trim()).toBe('nats');
    expect(existsSync('/lib/systemd/system/nats-server.service.d/drover.conf')).toBe(true);
    const natsConf = readFileSync('/etc/drover/nats-server.conf', 'utf8');
    expect(natsConf).toMatch(/operator: "eyJ/);
    expect(natsConf).toMatch(/resolver: \{\s+type: full/);
    expect(natsConf).toMatch(/cert_file: "\/var\/lib\/drover\/nats\/server.crt"/);

    // the packaged setup for real: nats-server as nats, the coordinator as drover, a host joined
    // with a fresh token from `drover join-command` (on free ports: tests run beside each other)
    const [natsPort, monitorPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    ok('/usr/bin/drover-coordinator', [
      'nats-config',
      '--config',
      '/etc/drover/coordinator.yaml',
      '--listen',
      `127.0.0.1:${natsPort}`,
      '--monitor',
      `127.0.0.1:${monitorPort}`,
      '--server-dir',
      '/var/lib/drover/nats',
      '--out',
      '/etc/drover/nats-server.conf',
      '--bus-owner',
      'drover',
      '--server-owner',
      'nats',
    ]);
    expect(ok('stat', ['-c', '%U:%G %a', '/etc/drover/nats-server.conf']).trim()).toBe('root:nats 640');
    // a bad flag changes nothing and says which
    const badHost = sh('/usr/bin/drover-coordinator', ['nats-config', '--tls-hosts', 'a b']);
    expect(badHost.status).toBe(2);
    expect(badHost.stderr).toMatch(/--tls-hosts: "a b" is neither an IP address nor a host name/);
    const nats = spawnLogged('runuser', [
      '-u',
      'nats',
      '--',
      '/usr/sbin/nats-server',
      '-c',
      '/etc/drover/nats-server.conf',
    ]);
    const coord = spawnLogged('runuser', [
      '-u',
      'drover',
      '--',
      '/usr/bin/drover-coordinator',
      '--config',
      '/etc/drover/coordinator.yaml',
      '--nats-servers',
      `tls://127.0.0.1:${natsPort}`,
      '--api-listen',
      `127.0.0.1:${apiPort}`,
    ]);
    const agentRoot = tempDir('pkg-agent-root');
    let agent: Spawned | undefined;
    try {
      await waitFor(
        'the packaged coordinator ready on the packaged bus',
        async () => {
          if (coord.child.exitCode !== null) throw new Error(`coordinator exited: ${coord.output()}`);
          if (nats.child.exitCode !== null) throw new Error(`nats-server exited: ${nats.output()}`);
          return (await fetch(`http://127.0.0.1:${apiPort}/readyz`).catch(() => undefined))?.ok;
        },
        { timeoutMs: 30_000 },
      );
      // no credentials: the packaged bus refuses the client
      await expect(
        natsConnect({
          servers: `tls://127.0.0.1:${natsPort}`,
          tls: { caFile: '/var/lib/drover/coordinator/bus/ca.crt' },
        }),
      ).rejects.toThrow(/Authorization Violation/i);
      const admin = readFileSync('/var/lib/drover/coordinator/admin-token', 'utf8').trim();
      const cliEnv = { DROVER_URL: `http://127.0.0.1:${apiPort}`, DROVER_TOKEN: admin };
      const printed = ok('/usr/bin/drover', ['join-command'], cliEnv).trim();
      expect(printed).toMatch(
        new RegExp(
          `^drover-agent join --server tls://127\\.0\\.0\\.1:${natsPort} --token drover-join-v1\\.\\S+ --coordinator-key-fingerprint [0-9a-f]{64}$`,
        ),
      );
      const joined = ok('/bin/sh', ['-c', `PATH=/usr/bin:/bin; ${printed}`]);
      expect(joined).toMatch(/wrote \/etc\/drover\/agent.yaml/);
      expect(joined).toMatch(/systemd is not running here, so the service was not started/);
      expect(mode('/etc/drover/agent.yaml')).toBe(0o600);
      expect(readFileSync('/etc/drover/agent.yaml', 'utf8')).toMatch(/joinToken: drover-join-v1\./);
      // the joined agent (process runtime: no systemd here) gets its own credentials and is admitted
      agent = spawnLogged('/usr/bin/drover-agent', [
        '--config',
        '/etc/drover/agent.yaml',
        '--runtime',
        'process',
        '--root-dir',
        agentRoot,
        '--node-id',
        'pkg-host',
        '--hostname',
        'pkg-host',
      ]);
      const a = agent;
      await waitFor(
        'the packaged host Ready',
        async () => {
          if (a.child.exitCode !== null) throw new Error(`agent exited: ${a.output()}`);
          const r = await fetch(`http://127.0.0.1:${apiPort}/v1/nodes/pkg-host`, {
            headers: { authorization: `Bearer ${admin}` },
          }).catch(() => undefined);
          return r?.ok && ((await r.json()) as { state: string }).state === 'Ready';
        },
        { timeoutMs: 30_000 },
      );
      expect(mode('/var/lib/drover/agent/bus.creds')).toBe(0o600);
    } finally {
      if (agent) await killAndWait(agent, 'SIGTERM', 5000);
      await killAndWait(coord, 'SIGTERM', 10_000);
      await killAndWait(nats, 'SIGTERM', 5000);
      rmrf(agentRoot);
    }
    const second = ok('dpkg', ['-i', ...force, debs[AGENT]!, debs[COORD]!]);
    expect(second).not.toMatch(/not started/);
    expect(mode('/etc/drover/agent.yaml')).toBe(0o600);
    expect(readFileSync('/etc/drover/agent.yaml', 'utf8')).toMatch(/joinToken: drover-join-v1\./);
    expect(ok('stat', ['-c', '%U:%G', '/var/lib/drover/coordinator']).trim()).toBe('drover:drover');

    // an admin's state survives remove, and goes with purge
    mkdirSync('/var/lib/drover/agent/plans', { recursive: true });
    ok('dpkg', ['-r', AGENT, COORD]);
    expect(existsSync('/usr/bin/drover-agent')).toBe(false);
    expect(existsSync('/usr/lib/drover')).toBe(false);
    expect(existsSync('/etc/drover/agent.yaml')).toBe(true); // conffiles stay until purge
    expect(existsSync('/var/lib/drover/agent/plans')).toBe(true);

    ok('dpkg', ['-P', AGENT, COORD]);
    // running the removal scripts again after a purge is harmless (idempotent)
    for (const p of [AGENT, COORD])
      for (const [script, arg] of [
        ['prerm', 'remove'],
        ['postrm', 'remove'],
        ['postrm', 'purge'],
      ])
        ok('/bin/sh', ['-e', join(outDir, 'stage', p, 'DEBIAN', script!), arg!]);
    expect(known(AGENT) || known(COORD)).toBe(false);
    const leftovers = [
      '/usr/lib/drover',
      '/etc/drover',
      '/var/lib/drover',
      '/usr/bin/drover-agent',
      '/usr/bin/drover',
      '/usr/bin/drover-coordinator',
      `/lib/systemd/system/${AGENT}.service`,
      `/lib/systemd/system/${COORD}.service`,
      `/etc/systemd/system/multi-user.target.wants/${AGENT}.service`,
      `/etc/systemd/system/multi-user.target.wants/${COORD}.service`,
      `/etc/systemd/system/${AGENT}.service`,
      `/etc/systemd/system/${COORD}.service`,
      `/usr/share/doc/${AGENT}`,
      `/usr/share/doc/${COORD}`,
      '/usr/share/man/man8/drover-agent.8.gz',
      '/usr/share/man/man1/drover.1.gz',
      '/lib/systemd/system/nats-server.service.d/drover.conf',
    ].filter((p) => {
      try {
        lstatSync(p);
        return true;
      } catch {
        return false;
      }
    });
    expect(leftovers).toEqual([]);
    expect(ok('dpkg-statoverride', ['--list'])).not.toContain('/etc/drover');
    const helperState = [
      '/var/lib/systemd/deb-systemd-helper-enabled',
      '/var/lib/systemd/deb-systemd-helper-masked',
    ]
      .filter(existsSync)
      .flatMap((d) => ok('find', [d]).split('\n'))
      .filter((p) => p.includes('drover'));
    expect(helperState).toEqual([]);
    // Debian policy: the system user stays after purge (files it owned may remain elsewhere).
    expect(sh('getent', ['passwd', 'drover']).status).toBe(0);
  }, 180_000);
});
