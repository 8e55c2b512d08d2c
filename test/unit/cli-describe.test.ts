import { describe, expect, it } from 'vitest';
import { describeNode, describeRole, lastOutputBlocks } from '../../cli/commands/describe.js';
import type { InstanceView, NodeDetail, RoleView } from '../../protocol/rest/schemas.js';
import { sampleFacts } from '../helpers/fixtures.js';

function inst(over: Partial<InstanceView>): InstanceView {
  return {
    id: 'web#0',
    role: 'web',
    nodeId: 'n1',
    epoch: 1,
    assigned: true,
    phase: 'Healthy',
    health: 'healthy',
    restarts: 0,
    simulated: false,
    ...over,
  };
}

const badflag = inst({
  id: 'badflag#0',
  role: 'badflag',
  phase: 'CrashLoop',
  health: 'unknown',
  restarts: 6,
  lastError: 'exited with code 2',
  lastExitCode: 2,
  lastOutput: 'Error: unknown flag: --bogus\nUsage: badflag [flags]',
});

function node(instances: InstanceView[]): NodeDetail {
  return {
    id: 'n1',
    hostname: 'host-1',
    address: '127.0.0.2',
    cluster: 'default',
    state: 'Ready',
    approved: true,
    cordoned: false,
    labels: { pool: 'w' },
    lastHeartbeat: new Date().toISOString(),
    cpuCores: 4,
    memoryBytes: 8 * 1024 ** 3,
    machineId: 'm',
    plan: {
      generation: 2,
      checksum: 'a'.repeat(64),
      appliedGeneration: 2,
      appliedChecksum: 'a'.repeat(64),
      converged: true,
    },
    instances,
    createdAt: new Date().toISOString(),
    facts: sampleFacts(),
    fingerprint: { machineId: 'm', macs: [] },
    operatorLabels: {},
    events: [],
  };
}

describe('describe: the last output of failing instances', () => {
  it('describe node prints it under the instances table, indented, with the exit code', () => {
    const out = describeNode(node([badflag, inst({})]));
    const block = [
      '  Last output of badflag#0 (exit 2):',
      '    Error: unknown flag: --bogus',
      '    Usage: badflag [flags]',
      'Events:',
    ].join('\n');
    expect(out).toContain(block);
    const table = out.indexOf('Instances:\n');
    expect(table).toBeGreaterThan(-1);
    expect(out.indexOf('badflag#0   1')).toBeGreaterThan(table);
    expect(out.indexOf('Last output of')).toBeGreaterThan(out.indexOf('web#0'));
    // the healthy instance has no block
    expect(out).not.toContain('Last output of web#0');
  });

  it('no exit code (killed by a signal): the reason stands in; none at all: no parentheses', () => {
    const killed = { ...badflag, lastExitCode: undefined, lastError: 'killed by SIGSEGV' };
    expect(lastOutputBlocks([killed])).toBe(
      '  Last output of badflag#0 (killed by SIGSEGV):\n    Error: unknown flag: --bogus\n    Usage: badflag [flags]\n',
    );
    const bare = { ...badflag, lastExitCode: undefined, lastError: undefined, phase: 'Failed' as const };
    expect(lastOutputBlocks([bare])).toMatch(/^ {2}Last output of badflag#0:\n/);
  });

  it('only CrashLoop and Failed instances get a block; one without output gets none', () => {
    expect(lastOutputBlocks([{ ...badflag, phase: 'Starting' }])).toBe('');
    expect(lastOutputBlocks([{ ...badflag, phase: 'Running' }])).toBe('');
    expect(lastOutputBlocks([{ ...badflag, lastOutput: undefined }])).toBe('');
    expect(describeNode(node([inst({})]))).not.toContain('Last output');
  });

  it('describe role prints the block too', () => {
    const role: RoleView = {
      name: 'badflag',
      cluster: 'default',
      desired: 1,
      placed: 1,
      healthy: 0,
      simulated: 0,
      status: 'Degraded',
      reasons: ['badflag#0 on n1: CrashLoop: exited with code 2'],
      instances: [badflag],
    };
    expect(describeRole(role, [])).toContain(
      '  Last output of badflag#0 (exit 2):\n    Error: unknown flag: --bogus\n',
    );
  });
});
