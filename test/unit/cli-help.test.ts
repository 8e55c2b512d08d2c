import { describe, expect, it } from 'vitest';
import { commandHelp } from '../../cli/help.js';
import { COMMANDS, HELP, run } from '../../cli/run.js';

async function capture(argv: string[]) {
  let out = '';
  let err = '';
  const code = await run(argv, { out: (t) => (out += t), err: (t) => (err += t), env: {} });
  return { code, out, err };
}

describe('every command has its own --help', () => {
  it('each registered command (and version) prints its usage, flags or text, and an example', async () => {
    for (const cmd of [...Object.keys(COMMANDS), 'version']) {
      expect(commandHelp([cmd]), cmd).toBeDefined();
      const r = await capture([cmd, '--help']);
      expect(r.code, cmd).toBe(0);
      expect(r.out, cmd).toMatch(new RegExp(`^Usage: drover ${cmd}\\b`));
      expect(r.out, cmd).toMatch(/\nExamples:\n {2}drover /);
      expect(r.out, cmd).not.toBe(HELP);
    }
  });

  it('subcommands have their own: import openpai, token create, kubeconfig admin, delete topology, tenants set', async () => {
    for (const argv of [
      ['import', 'openpai'],
      ['token', 'create'],
      ['kubeconfig', 'admin'],
      ['delete', 'topology'],
      ['tenants', 'set'],
    ]) {
      const r = await capture([...argv, '--help']);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(new RegExp(`^Usage: drover ${argv.join(' ')}\\b`));
    }
    expect((await capture(['help', 'token', 'delete'])).out).toMatch(/^Usage: drover token delete NAME\|ID/);
  });

  it('an unknown command with --help is a usage error, not the global help', async () => {
    const r = await capture(['frobnicate', '--help']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/unknown command "frobnicate"/);
  });
});
