import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { type JoinDeps, runJoin } from '../../agent/join.js';
import { compileAgentOptions } from '../../agent/options.js';
import { nodeCrypto, x509 } from '../../lib/x509.js';
import { encodeJoinToken } from '../../protocol/index.js';
import { rmrf, tempDir } from '../helpers/proc.js';

const DEFAULT_YAML = readFileSync(new URL('../../packaging/agent/agent.yaml', import.meta.url), 'utf8');

interface Run {
  code: number;
  out: string;
  err: string;
  calls: string[][];
}

/** A per-host join token standing for `name` (the old tests used short shared tokens). */
function tok(name: string): string {
  const id = `t${Buffer.from(name).toString('hex')}`.slice(0, 32).padEnd(6, '0');
  return encodeJoinToken({
    id,
    jwt: 'a.b.c',
    seed: `SU${'A'.repeat(56)}`,
    expiresAt: '2099-01-01T00:00:00Z',
  });
}

const FP = 'cd'.repeat(32);

/**
 * Runs `drover-agent join`: every `--token NAME` becomes `tok(NAME)` (a token with whitespace is
 * kept, to be refused), and the key fingerprint is added unless the arguments pin or waive it.
 */
async function join_(raw: string[], deps: Partial<JoinDeps> = {}): Promise<Run> {
  const argv = raw.map((a, i) => (raw[i - 1] === '--token' && !/\s/.test(a) ? tok(a) : a));
  if (
    argv.includes('--server') &&
    !argv.includes('--help') &&
    !argv.includes('--coordinator-key-fingerprint') &&
    !argv.includes('--insecure-trust-first-coordinator')
  )
    argv.push('--coordinator-key-fingerprint', FP);
  let out = '';
  let err = '';
  const calls: string[][] = [];
  const code = await runJoin(argv, {
    stdout: (t) => {
      out += t;
    },
    stderr: (t) => {
      err += t;
    },
    systemdRunning: () => false,
    systemctl: async (args) => {
      calls.push(args);
      return { code: 0, output: '' };
    },
    ...deps,
  });
  return { code, out, err, calls };
}

function fresh(): { dir: string; config: string } {
  const dir = tempDir('join');
  return { dir, config: join(dir, 'agent.yaml') };
}

let caPem: string;
beforeAll(async () => {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await nodeCrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=drover test ca',
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    keys,
    signingAlgorithm: alg,
  });
  caPem = cert.toString('pem');
});

describe('drover-agent join', () => {
  it('writes a new config with mode 0600 that the agent accepts', async () => {
    const { dir, config } = fresh();
    const ca = join(dir, 'ca.pem');
    writeFileSync(ca, caPem);
    const fp = 'AB'.repeat(32);
    const r = await join_([
      '--server',
      'nats://10.0.0.1:4222,tls://nats.example.org:4443',
      '--token',
      's3cret-token',
      '--address',
      '10.0.0.7',
      '--labels',
      'zone=a,rack=r12',
      '--ca',
      ca,
      '--coordinator-key-fingerprint',
      `sha256:${fp}`,
      '--config',
      config,
      '--no-start',
    ]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(statSync(config).mode & 0o777).toBe(0o600);
    expect(r.out).not.toContain(tok('s3cret-token'));
    const opts = compileAgentOptions({ configFile: config });
    expect(opts.nats.servers).toEqual(['nats://10.0.0.1:4222', 'tls://nats.example.org:4443']);
    expect(opts.joinToken).toBe(tok('s3cret-token'));
    expect(opts.advertiseAddress).toBe('10.0.0.7');
    expect(opts.labels).toEqual({ zone: 'a', rack: 'r12' });
    expect(opts.nats.tls?.ca).toBe(ca);
    expect(opts.coordinatorKeyFingerprint).toBe(fp.toLowerCase());
    expect(r.calls).toEqual([]);
    rmrf(dir);
  });

  it('merges into the packaged default file, keeping its comments and other settings', async () => {
    const { dir, config } = fresh();
    writeFileSync(
      config,
      `${DEFAULT_YAML}\nlogLevel: debug\nlabels: {zone: old, team: infra}\nnats:\n  token: natstok\n`,
      {
        mode: 0o644,
      },
    );
    const r = await join_([
      '--server',
      'nats://n1:4222',
      '--token',
      't1',
      '--labels',
      'zone=b',
      '--config',
      config,
      '--no-start',
    ]);
    expect(r.code).toBe(0);
    const text = readFileSync(config, 'utf8');
    expect(text).toContain('# /etc/drover/agent.yaml: configuration of the Drover agent');
    expect(text).toContain('# stopRolesOnExit: false');
    expect(statSync(config).mode & 0o777).toBe(0o600);
    const doc = YAML.parse(text);
    expect(doc).toEqual({
      logLevel: 'debug',
      labels: { zone: 'b', team: 'infra' },
      nats: { token: 'natstok', servers: ['nats://n1:4222'] },
      joinToken: tok('t1'),
      coordinatorKeyFingerprint: FP,
    });
    // joining again replaces the servers and the token, not appends
    const again = await join_([
      '--server',
      'wss://n2:443/nats',
      '--token',
      't2',
      '--config',
      config,
      '--no-start',
    ]);
    expect(again.code).toBe(0);
    const doc2 = YAML.parse(readFileSync(config, 'utf8'));
    expect(doc2.nats).toEqual({ token: 'natstok', servers: ['wss://n2:443/nats'] });
    expect(doc2.joinToken).toBe(tok('t2'));
    expect(doc2.labels).toEqual({ zone: 'b', team: 'infra' });
    rmrf(dir);
  });

  it('reads the token from --token-file', async () => {
    const { dir, config } = fresh();
    writeFileSync(join(dir, 'tok'), `${tok('from-file')}\n`);
    const r = await join_([
      '--server',
      'nats://h:4222',
      '--token-file',
      join(dir, 'tok'),
      '--config',
      config,
      '--no-start',
    ]);
    expect(r.code).toBe(0);
    expect(YAML.parse(readFileSync(config, 'utf8')).joinToken).toBe(tok('from-file'));
    rmrf(dir);
  });

  const bad: Array<[string, string[], RegExp]> = [
    [
      'an http URL',
      ['--server', 'http://h:4222', '--token', 't'],
      /--server: "http:\/\/h:4222" has scheme http/,
    ],
    [
      'a server without a scheme',
      ['--server', '10.0.0.1:4222', '--token', 't'],
      /--server: "10.0.0.1:4222" is not a URL/,
    ],
    [
      'a server without a host',
      ['--server', 'nats://', '--token', 't'],
      /--server: "nats:\/\/" names no host/,
    ],
    [
      'an empty server in a list',
      ['--server', 'nats://a:1,,nats://b:1', '--token', 't'],
      /--server: empty URL/,
    ],
    ['a missing server', ['--token', 't'], /--server is required/],
    ['a missing token', ['--server', 'nats://h:4222'], /--token is required/],
    ['a token with spaces', ['--server', 'nats://h:4222', '--token', 'a b'], /contains whitespace/],
    ['both token flags', ['--server', 'nats://h:4222', '--token', 'a', '--token-file', '/x'], /not both/],
    [
      'an unreadable token file',
      ['--server', 'nats://h:4222', '--token-file', '/nonexistent/tok'],
      /--token-file: cannot read/,
    ],
    [
      'a label without =',
      ['--server', 'nats://h:4222', '--token', 't', '--labels', 'zone'],
      /"zone" is not key=value/,
    ],
    ['a bad label key', ['--server', 'nats://h:4222', '--token', 't', '--labels', 'a b=c'], /key "a b"/],
    [
      'a bad address',
      ['--server', 'nats://h:4222', '--token', 't', '--address', 'not an address!'],
      /--address/,
    ],
    [
      'a missing CA file',
      ['--server', 'nats://h:4222', '--token', 't', '--ca', '/nonexistent/ca.pem'],
      /--ca: cannot read/,
    ],
    [
      'a short fingerprint',
      ['--server', 'nats://h:4222', '--token', 't', '--coordinator-key-fingerprint', 'abc'],
      /64 digits/,
    ],
    [
      'an unknown flag',
      ['--server', 'nats://h:4222', '--token', 't', '--bogus', 'x'],
      /unknown option --bogus/,
    ],
    [
      'a stray argument',
      ['extra', '--server', 'nats://h:4222', '--token', 't'],
      /unexpected argument "extra"/,
    ],
  ];

  it.each(bad)('refuses %s and changes nothing', async (_what, argv, message) => {
    const { dir, config } = fresh();
    const before = `${DEFAULT_YAML}\nlogLevel: warn\n`;
    writeFileSync(config, before, { mode: 0o640 });
    const st = statSync(config);
    const r = await join_([...argv, '--config', config], { systemdRunning: () => true });
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
    expect(r.err).toContain('nothing was written');
    expect(readFileSync(config, 'utf8')).toBe(before);
    expect(statSync(config).mode).toBe(st.mode);
    expect(statSync(config).ino).toBe(st.ino);
    expect(readdirSync(dir)).toEqual(['agent.yaml']);
    expect(r.calls).toEqual([]);
    rmrf(dir);
  });

  it('refuses a CA file that holds no certificate', async () => {
    const { dir, config } = fresh();
    writeFileSync(join(dir, 'ca.pem'), 'not a certificate\n');
    const r = await join_([
      '--server',
      'nats://h:4222',
      '--token',
      't',
      '--ca',
      join(dir, 'ca.pem'),
      '--config',
      config,
    ]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/holds no PEM certificate/);
    expect(readdirSync(dir)).toEqual(['ca.pem']);
    rmrf(dir);
  });

  it.each([
    ['invalid YAML', 'nats: [unclosed\n', /is not valid YAML/],
    ['a list at the top level', '- a\n- b\n', /expected a mapping at the top level/],
    ['nats that is not a mapping', 'nats: 5\n', /nats must be a mapping/],
    [
      'a key the agent does not know',
      'natsServers: [x]\n',
      /resulting config would be invalid: .*natsServers/,
    ],
  ])(
    'refuses to merge into an existing file with %s, leaving it as it was',
    async (_what, before, message) => {
      const { dir, config } = fresh();
      writeFileSync(config, before);
      const r = await join_(['--server', 'nats://h:4222', '--token', 't', '--config', config, '--no-start']);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(message);
      expect(readFileSync(config, 'utf8')).toBe(before);
      expect(readdirSync(dir)).toEqual(['agent.yaml']);
      rmrf(dir);
    },
  );

  it('enables and restarts the unit when systemd runs', async () => {
    const { dir, config } = fresh();
    const r = await join_(['--server', 'nats://h:4222', '--token', 't', '--config', config], {
      systemdRunning: () => true,
    });
    expect(r.code).toBe(0);
    expect(r.calls).toEqual([
      ['enable', 'drover-agent.service'],
      ['restart', 'drover-agent.service'],
    ]);
    expect(r.out).toContain('enabled and started');
    rmrf(dir);
  });

  it('says so and leaves the unit alone when systemd is not running', async () => {
    const { dir, config } = fresh();
    const r = await join_(['--server', 'nats://h:4222', '--token', 't', '--config', config]);
    expect(r.code).toBe(0);
    expect(r.calls).toEqual([]);
    expect(r.out).toMatch(/systemd is not running here, so the service was not started/);
    rmrf(dir);
  });

  it('reports a failing systemctl with exit code 1, keeping the written config', async () => {
    const { dir, config } = fresh();
    const r = await join_(['--server', 'nats://h:4222', '--token', 't', '--config', config], {
      systemdRunning: () => true,
      systemctl: async (args) => ({
        code: args[0] === 'restart' ? 5 : 0,
        output: 'Unit drover-agent.service not found.',
      }),
    });
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      /systemctl restart drover-agent.service failed \(exit 5\): Unit drover-agent.service not found/,
    );
    expect(YAML.parse(readFileSync(config, 'utf8')).joinToken).toBe(tok('t'));
    rmrf(dir);
  });

  it('prints its usage with --help and writes nothing', async () => {
    const { dir, config } = fresh();
    const r = await join_(['--help', '--config', config]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/Usage: drover-agent join --server URL --token TOKEN/);
    expect(readdirSync(dir)).toEqual([]);
    rmrf(dir);
  });
});
