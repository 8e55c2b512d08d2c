import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { runJoin } from '../../agent/join.js';
import {
  formatJoinCommand,
  type JoinCommandOptions,
  joinCommandMain,
  runJoinCommand,
} from '../../cli/join-command.js';
import { encodeJoinToken, generateSigningKey, signingKeyToPem } from '../../protocol/index.js';
import { rmrf, tempDir } from '../helpers/proc.js';

/** Splits a command line the way /bin/sh does, so the printed one-liner is tested as a user pastes it. */
function shellWords(cmd: string): string[] {
  const out = execFileSync('/bin/sh', ['-c', `set -- ${cmd}; printf '%s\\0' "$@"`], { encoding: 'utf8' });
  return out.split('\0').slice(0, -1);
}

async function run(opts: JoinCommandOptions): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runJoinCommand({
    env: {},
    hostAddresses: () => ['10.1.2.3'],
    ...opts,
    stdout: (t) => {
      out += t;
    },
    stderr: (t) => {
      err += t;
    },
  });
  return { code, out, err };
}

function coordinatorHost(config: Record<string, unknown> = {}) {
  const dir = tempDir('joincmd');
  const dataDir = join(dir, 'data');
  execFileSync('mkdir', ['-p', dataDir]);
  const configFile = join(dir, 'coordinator.yaml');
  writeFileSync(configFile, YAML.stringify({ dataDir, ...config }));
  return { dir, dataDir, configFile };
}

describe('formatJoinCommand', () => {
  it('prints the agent join one-liner', () => {
    expect(formatJoinCommand({ natsUrl: 'nats://10.0.0.1:4222', joinToken: 'abc_DEF-123' })).toBe(
      'drover-agent join --server nats://10.0.0.1:4222 --token abc_DEF-123',
    );
    expect(
      formatJoinCommand({
        natsUrl: 'tls://a:4443,tls://b:4443',
        joinToken: 't',
        caFile: '/etc/drover/nats ca.pem',
        coordinatorKeyFingerprint: 'ab'.repeat(32),
      }),
    ).toBe(
      `drover-agent join --server tls://a:4443,tls://b:4443 --token t --ca '/etc/drover/nats ca.pem' --coordinator-key-fingerprint ${'ab'.repeat(32)}`,
    );
  });

  it('quotes what the shell would otherwise mangle', () => {
    const token = `it's $HOME; *`;
    const cmd = formatJoinCommand({ natsUrl: 'nats://h:1', joinToken: token });
    expect(shellWords(cmd)).toEqual(['drover-agent', 'join', '--server', 'nats://h:1', '--token', token]);
  });

  it('refuses empty parts', () => {
    expect(() => formatJoinCommand({ natsUrl: '', joinToken: 't' })).toThrow(/natsUrl is empty/);
    expect(() => formatJoinCommand({ natsUrl: 'nats://h', joinToken: ' ' })).toThrow(/joinToken is empty/);
  });
});

/** A per-host join token (what `drover token create --join` prints). */
const TOKEN = encodeJoinToken({
  id: 'abc123def',
  jwt: 'a.b.c',
  seed: `SU${'A'.repeat(56)}`,
  expiresAt: '2099-01-01T00:00:00Z',
});

describe('drover join-command', () => {
  it('prints a command that drover-agent join turns into a working agent config', async () => {
    const key = generateSigningKey();
    const { dir, dataDir, configFile } = coordinatorHost({ nats: { servers: ['nats://127.0.0.1:4222'] } });
    writeFileSync(join(dataDir, 'plan-signing-key.pem'), signingKeyToPem(key), { mode: 0o600 });
    const r = await run({ configFile, token: TOKEN });
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/nats:\/\/127.0.0.1:4222 is a loopback address; printing 10.1.2.3 instead/);
    expect(r.out).toBe(
      `drover-agent join --server nats://10.1.2.3:4222 --token ${TOKEN} --coordinator-key-fingerprint ${key.fingerprint}\n`,
    );

    const words = shellWords(r.out.trim());
    expect(words.slice(0, 2)).toEqual(['drover-agent', 'join']);
    const agentConfig = join(dir, 'agent.yaml');
    const quiet = { stdout: () => {}, stderr: () => {} };
    expect(await runJoin([...words.slice(2), '--config', agentConfig, '--no-start'], quiet)).toBe(0);
    expect(YAML.parse(readFileSync(agentConfig, 'utf8'))).toEqual({
      nats: { servers: ['nats://10.1.2.3:4222'] },
      joinToken: TOKEN,
      coordinatorKeyFingerprint: key.fingerprint,
    });
    rmrf(dir);
  });

  it('uses --server and the configured CA; refuses without the signing key (the pin is required)', async () => {
    const { dir, dataDir, configFile } = coordinatorHost({
      nats: { servers: ['tls://nats.example.org:4443'], tls: { ca: '/etc/drover/ca.pem' } },
    });
    const none = await run({ configFile, token: TOKEN });
    expect(none.code).toBe(1);
    expect(none.err).toMatch(/plan-signing-key.pem does not exist yet: start drover-coordinator once/);
    const key = generateSigningKey();
    writeFileSync(join(dataDir, 'plan-signing-key.pem'), signingKeyToPem(key), { mode: 0o600 });
    const r = await run({ configFile, token: TOKEN });
    expect(r.code).toBe(0);
    expect(r.out).toBe(
      `drover-agent join --server tls://nats.example.org:4443 --token ${TOKEN} --ca /etc/drover/ca.pem --coordinator-key-fingerprint ${key.fingerprint}\n`,
    );
    expect(r.err).toMatch(/copy \/etc\/drover\/ca.pem to the same path on the new host/);
    const o = await run({ configFile, server: 'nats://10.9.9.9:4222', token: 'override' });
    expect(o.out).toMatch(/^drover-agent join --server nats:\/\/10.9.9.9:4222 --token override /);
    rmrf(dir);
  });

  it('says how to get a token when none is given (only the running coordinator makes them)', async () => {
    const { dir, configFile } = coordinatorHost();
    const r = await run({ configFile });
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/cannot make a join token .*drover token create --join.*--token/);
    rmrf(dir);
  });

  it('refuses a coordinator config that still sets joinToken, naming the new command', async () => {
    const { dir, configFile } = coordinatorHost({ joinToken: 'old' });
    const r = await run({ configFile, token: TOKEN });
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/joinToken: no longer supported.*drover token create --join/);
    rmrf(dir);
  });

  it('names the bad key of a broken coordinator config', async () => {
    const { dir, configFile } = coordinatorHost({ joinTokn: 'typo' });
    const r = await run({ configFile });
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/joinTokn/);
    rmrf(dir);
  });

  it('refuses a --server that is not a NATS URL, and unknown flags', async () => {
    const { dir, configFile } = coordinatorHost();
    const r = await run({ configFile, server: 'http://h:4222', token: TOKEN });
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/"http:\/\/h:4222" is not a nats:\/\//);
    let err = '';
    const code = await joinCommandMain(['--bogus', 'x'], { stdout: () => {}, stderr: (t) => (err += t) });
    expect(code).toBe(2);
    expect(err).toMatch(/unknown option --bogus/);
    rmrf(dir);
  });

  it('parses its flags', async () => {
    const { dir, dataDir, configFile } = coordinatorHost();
    const key = generateSigningKey();
    writeFileSync(join(dataDir, 'plan-signing-key.pem'), signingKeyToPem(key), { mode: 0o600 });
    let out = '';
    const code = await joinCommandMain(
      ['--config', configFile, '--server', 'nats://h:4222', '--token', 't'],
      {
        stdout: (t) => (out += t),
        stderr: () => {},
      },
    );
    expect(code).toBe(0);
    expect(out).toBe(
      `drover-agent join --server nats://h:4222 --token t --coordinator-key-fingerprint ${key.fingerprint}\n`,
    );
    rmrf(dir);
  });
});
