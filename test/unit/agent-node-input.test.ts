// The agent's side of issue 15 point 8: it reports only what the coordinator takes, refuses a
// bad advertise address or label at start-up, and its systemd units hold no line a value broke.
import { describe, expect, it } from 'vitest';
import { AgentError } from '../../agent/errors.js';
import { collectFacts, type FactsSource } from '../../agent/facts.js';
import { compileAgentOptions } from '../../agent/options.js';
import { renderUnit } from '../../agent/runtime/systemd.js';
import { decodeValue, Facts } from '../../protocol/index.js';
import { sleeper } from '../helpers/agent-instances.js';

const source = (
  nics: Awaited<ReturnType<FactsSource['networkInterfaces']>>,
  hostname = 'H1',
): FactsSource => ({
  cpu: async () => ({ cores: 2, physicalCores: 2, manufacturer: 'AMD', brand: 'EPYC', speed: 2.5 }),
  mem: async () => ({ total: 8 * 2 ** 30 }),
  diskLayout: async () => [],
  blockDevices: async () => [],
  fsSize: async () => [],
  osInfo: async () => ({
    platform: 'linux',
    distro: 'Debian',
    release: '12',
    kernel: '6.1',
    arch: 'x64',
    hostname,
  }),
  networkInterfaces: async () => nics,
  graphics: async () => ({ controllers: [] }),
  system: async () => ({ virtual: false }),
});

describe('agent facts report only what the schema takes', () => {
  it('drops the zone of a link-local address, skips odd interfaces, lowers the hostname', async () => {
    const f = await collectFacts({
      machineId: 'm',
      binaries: { binaries: {} },
      source: source([
        {
          iface: 'eth0',
          mac: 'aa:bb:cc:dd:ee:ff',
          ip4: '10.1.1.1',
          ip6: 'fe80::1%eth0',
          internal: false,
          virtual: false,
        },
        { iface: 'odd name', mac: 'x', ip4: '10.2.2.2', ip6: '', internal: false, virtual: true },
        { iface: 'eth1', mac: 'not a mac', ip4: 'garbage\n', ip6: '', internal: false, virtual: false },
      ]),
    });
    expect(f.hostname).toBe('h1');
    expect(f.network).toEqual([
      {
        name: 'eth0',
        mac: 'aa:bb:cc:dd:ee:ff',
        addresses: ['10.1.1.1', 'fe80::1'],
        internal: false,
        virtual: false,
      },
      { name: 'eth1', mac: '', addresses: [], internal: false, virtual: false },
    ]);
    expect(() => decodeValue(Facts, f)).not.toThrow();
  });
});

describe('agent options refuse what the coordinator would', () => {
  const refused = (configText: string): string => {
    try {
      compileAgentOptions({ configText });
    } catch (err) {
      expect(err).toBeInstanceOf(AgentError);
      return (err as Error).message;
    }
    throw new Error('accepted');
  };

  it('an advertise address that is not an IP address', () => {
    expect(compileAgentOptions({ configText: 'advertiseAddress: "::1"' }).advertiseAddress).toBe('::1');
    expect(refused('advertiseAddress: "10.0.0.1\\n  server evil 6.6.6.6:6443"')).toMatch(/advertiseAddress/);
    expect(refused('advertiseAddress: host.example')).toMatch(/advertiseAddress/);
  });

  it('labels outside Kubernetes label syntax', () => {
    expect(
      compileAgentOptions({ configText: 'labels: { zone: eu-1, drover.dev/cluster: a }' }).labels,
    ).toEqual({
      zone: 'eu-1',
      'drover.dev/cluster': 'a',
    });
    expect(refused('labels: { zone: "a b" }')).toMatch(/labels/);
    expect(refused('labels: { "bad key": x }')).toMatch(/labels/);
    expect(refused(`labels: { zone: ${'x'.repeat(64)} }`)).toMatch(/labels/);
  });
});

describe('systemd units: no value can start another directive', () => {
  it('escapes every control character in ExecStart and Environment', () => {
    const text = renderUnit(
      sleeper('web#0', {
        command: '/bin/sleep',
        args: ['1\nExecStartPre=/bin/evil', 'a\rb', 'bell\u0007', 'del\u007f'],
        env: { X: 'y\nExecStartPost=/bin/evil', Z: 'tab\there' },
      }),
    );
    expect(text).toContain(
      'ExecStart="/bin/sleep" "1\\nExecStartPre=/bin/evil" "a\\rb" "bell\\x07" "del\\x7f"',
    );
    expect(text).toContain('Environment="X=y\\nExecStartPost=/bin/evil"');
    expect(text).toContain('Environment="Z=tab\\there"');
    expect(text.split('\n').filter((l) => /^ExecStart(Pre|Post)?=/.test(l))).toHaveLength(1);
    expect(text).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f]/);
  });

  it('refuses a control character in a value written unquoted', () => {
    const unit = (over: Parameters<typeof sleeper>[1]) => () => renderUnit(sleeper('web#0', over));
    expect(unit({ cwd: '/tmp\nExecStartPre=/bin/evil' })).toThrow(
      /WorkingDirectory= value .* control character/,
    );
    expect(unit({ unit: { user: 'root\nx=y' } })).toThrow(/User=/);
    expect(unit({ unit: { after: ['a.service\nExecStartPre=/bin/evil'] } })).toThrow(/After=/);
    expect(unit({ unit: { extraService: { Nice: '5\nExecStartPre=/bin/evil' } } })).toThrow(/Nice=/);
    expect(unit({ cwd: '/tmp', unit: { extraService: { Nice: '5' } } })()).toContain('Nice=5');
  });
});
