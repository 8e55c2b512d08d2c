import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseArgs } from '../../cli/args.js';
import { CliError, EXIT, exitForStatus } from '../../cli/errors.js';
import { run } from '../../cli/run.js';
import { resolveSettings } from '../../cli/settings.js';
import { age, formatTable } from '../../cli/table.js';

function catchErr(fn: () => unknown): CliError {
  try {
    fn();
  } catch (e) {
    return e as CliError;
  }
  throw new Error('expected an error');
}

describe('drover CLI arguments', () => {
  it('parses kubectl-style flags', () => {
    expect(parseArgs(['get', 'nodes', '-o', 'wide'])).toEqual({
      positionals: ['get', 'nodes'],
      flags: { output: 'wide' },
    });
    expect(parseArgs(['get', 'nodes', '-ojson', '-w'])).toEqual({
      positionals: ['get', 'nodes'],
      flags: { output: 'json', watch: true },
    });
    expect(parseArgs(['apply', '-f', 't.yaml', '--wait', '--timeout=90s'])).toEqual({
      positionals: ['apply'],
      flags: { filename: 't.yaml', wait: true, timeout: '90s' },
    });
    expect(parseArgs(['move', 'etcd#1', '--to', 'n2'])).toEqual({
      positionals: ['move', 'etcd#1'],
      flags: { to: 'n2' },
    });
    expect(parseArgs(['apply', '-f', '-'])).toEqual({ positionals: ['apply'], flags: { filename: '-' } });
    expect(parseArgs(['get', '--', '-x'])).toEqual({ positionals: ['get', '-x'], flags: {} });
    expect(parseArgs(['drain', 'n1', '--wait=false']).flags.wait).toBe(false);
  });

  it('refuses unknown flags and missing values as usage errors', () => {
    for (const argv of [
      ['get', '--bogus'],
      ['get', '-x'],
      ['apply', '-f'],
      ['drain', '--wait=maybe'],
    ]) {
      const e = catchErr(() => parseArgs(argv));
      expect(e).toBeInstanceOf(CliError);
      expect(e.exitCode).toBe(EXIT.USAGE);
    }
  });

  it('maps HTTP statuses to documented exit codes', () => {
    expect(exitForStatus(404)).toBe(3);
    expect(exitForStatus(401)).toBe(4);
    expect(exitForStatus(403)).toBe(4);
    expect(exitForStatus(429)).toBe(4);
    expect(exitForStatus(400)).toBe(2);
    expect(exitForStatus(409)).toBe(1);
    expect(exitForStatus(503)).toBe(1);
  });
});

describe('drover CLI connection settings', () => {
  const home = mkdtempSync(join(tmpdir(), 'drover-home-'));
  const cfgDir = join(home, '.config', 'drover');
  mkdirSync(cfgDir, { recursive: true });
  const tokenFile = join(home, 'tok');
  writeFileSync(tokenFile, 'from-token-file\n');
  writeFileSync(join(cfgDir, 'config.yaml'), `server: http://file:1\ntokenFile: ${tokenFile}\n`);

  it('takes flags, then DROVER_URL/DROVER_TOKEN, then ~/.config/drover/config.yaml', () => {
    const fileOnly = resolveSettings({ flags: {}, env: {}, home });
    expect(fileOnly).toMatchObject({ server: 'http://file:1', token: 'from-token-file' });
    const env = resolveSettings({
      flags: {},
      env: { DROVER_URL: 'http://env:2/', DROVER_TOKEN: 'env-tok' },
      home,
    });
    expect(env).toMatchObject({
      server: 'http://env:2',
      token: 'env-tok',
      source: { server: 'DROVER_URL', token: 'DROVER_TOKEN' },
    });
    const flags = resolveSettings({
      flags: { server: 'flag:3', token: 'flag-tok' },
      env: { DROVER_URL: 'http://env:2', DROVER_TOKEN: 'x' },
      home,
    });
    expect(flags).toMatchObject({ server: 'http://flag:3', token: 'flag-tok' });
  });

  it('defaults to the local coordinator without a config file', () => {
    const empty = mkdtempSync(join(tmpdir(), 'drover-home-'));
    expect(resolveSettings({ flags: {}, env: {}, home: empty })).toMatchObject({
      server: 'http://127.0.0.1:7480',
      token: undefined,
    });
  });

  it('names the bad key or value of a config file', () => {
    const d = mkdtempSync(join(tmpdir(), 'drover-cfg-'));
    const p = join(d, 'c.yaml');
    writeFileSync(p, 'server: http://x\ntokn: abc\n');
    expect(catchErr(() => resolveSettings({ flags: { config: p }, env: {}, home: d })).message).toMatch(
      /unknown key "tokn"/,
    );
    writeFileSync(p, 'server: [1]\n');
    expect(catchErr(() => resolveSettings({ flags: { config: p }, env: {}, home: d })).message).toMatch(
      /server must be a non-empty string/,
    );
    expect(
      catchErr(() => resolveSettings({ flags: { config: join(d, 'missing.yaml') }, env: {}, home: d }))
        .exitCode,
    ).toBe(EXIT.USAGE);
  });
});

describe('drover CLI output', () => {
  it('formats aligned tables with <none> for empty cells', () => {
    expect(
      formatTable(
        ['NAME', 'STATUS', 'AGE'],
        [
          ['n1', 'Ready', '5s'],
          ['node-22', '', '1m'],
        ],
      ),
    ).toBe('NAME      STATUS   AGE\nn1        Ready    5s\nnode-22   <none>   1m\n');
    expect(formatTable(['A'], [['x']], { noHeaders: true })).toBe('x\n');
  });

  it('prints ages like kubectl', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(age('2025-12-31T23:59:30Z', now)).toBe('30s');
    expect(age('2025-12-31T23:55:00Z', now)).toBe('5m');
    expect(age('2025-12-31T21:00:00Z', now)).toBe('3h');
    expect(age('2025-12-25T00:00:00Z', now)).toBe('7d');
    expect(age(null, now)).toBe('<never>');
  });

  it('answers usage errors with exit 2 and a hint, without contacting a server', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const io = { out: (t: string) => out.push(t), err: (t: string) => err.push(t), env: {} };
    expect(await run(['frobnicate'], io)).toBe(2);
    expect(err.join('')).toMatch(/unknown command "frobnicate"[\s\S]*hint: see `drover --help`/);
    expect(await run(['get', 'nodes', '-o', 'xml'], io)).toBe(2);
    expect(await run(['drain'], io)).toBe(2);
    expect(await run(['apply'], io)).toBe(2);
    expect(await run(['move', 'etcd#0'], io)).toBe(2);
    expect(await run(['--help'], io)).toBe(0);
    expect(out.join('')).toContain('Exit codes: 0 ok');
  });

  it('says the server is unreachable and how to point at it (exit 1)', async () => {
    const err: string[] = [];
    const code = await run(['get', 'nodes', '--server', 'http://127.0.0.1:9'], {
      out: () => {},
      err: (t) => err.push(t),
      env: {},
    });
    expect(code).toBe(1);
    expect(err.join('')).toMatch(
      /cannot reach the coordinator at http:\/\/127\.0\.0\.1:9[\s\S]*set --server or DROVER_URL/,
    );
  });
});
