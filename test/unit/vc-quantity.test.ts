import { describe, expect, it } from 'vitest';
import {
  capacityFromNodes,
  formatCpu,
  formatMemory,
  humanCpu,
  humanMemory,
  parseCpuMilli,
  parseMemoryBytes,
} from '../../coordinator/vc/index.js';
import type { NodeState } from '../../protocol/index.js';
import { sampleFacts } from '../helpers/fixtures.js';

describe('Kubernetes quantities', () => {
  it.each<[string | number, number]>([
    ['100m', 100],
    ['1', 1000],
    ['0.5', 500],
    ['.25', 250],
    ['0.1', 100],
    ['1.5m', 2],
    ['2k', 2_000_000],
    ['1e3m', 1000],
    [2, 2000],
    [0.1, 100],
  ])('cpu %s = %d millicores', (q, m) => expect(parseCpuMilli(q)).toBe(m));

  it.each<[string | number, number]>([
    ['100Mi', 100 * 1024 * 1024],
    ['1Gi', 1024 ** 3],
    ['500M', 500_000_000],
    ['1k', 1000],
    ['1Ki', 1024],
    ['1e3', 1000],
    ['1.5Gi', 1.5 * 1024 ** 3],
    ['0.5Ki', 512],
    ['128974848', 128974848],
    ['129e6', 129_000_000],
    [1024, 1024],
  ])('memory %s = %d bytes', (q, b) => expect(parseMemoryBytes(q)).toBe(b));

  it.each(['', 'abc', '-1', '1.2.3', '100 m', '1Mx', '1iB', 'Mi', '1e', '1e99'])(
    'refuses "%s" naming it',
    (q) => {
      expect(() => parseMemoryBytes(q, 'slice.memory')).toThrow(/slice\.memory/);
      expect(() => parseCpuMilli(q, 'slice.cpu')).toThrow(/slice\.cpu/);
    },
  );

  it('refuses binary suffixes for CPU and fractional bytes for memory, with a hint', () => {
    expect(() => parseCpuMilli('1Ki')).toThrow(/decimal suffix/);
    expect(() => parseMemoryBytes('100m')).toThrow(/did you mean 100Mi/);
    try {
      parseMemoryBytes('nope');
    } catch (e) {
      expect((e as { code: string }).code).toBe('DROVER_ERR_VC_QUANTITY');
    }
  });

  it('formats back', () => {
    expect(formatCpu(100)).toBe('100m');
    expect(formatCpu(2000)).toBe('2');
    expect(formatMemory(100 * 1024 * 1024)).toBe('100Mi');
    expect(formatMemory(1024 ** 3)).toBe('1Gi');
    expect(formatMemory(1000)).toBe('1000');
  });
});

describe('capacityFromNodes', () => {
  const node = (cores: number, gib: number, state: NodeState = 'Ready') => ({
    facts: sampleFacts({
      cpu: { cores, physicalCores: cores, model: 'x' },
      memory: { totalBytes: gib * 1024 ** 3 },
    }),
    state,
  });

  it('adds up Ready nodes, minus the default reserve of 100m and 256Mi each', () => {
    expect(capacityFromNodes([node(2, 4), node(4, 8)])).toEqual({
      cpuMilli: 1900 + 3900,
      memoryBytes: 4 * 1024 ** 3 - 256 * 1024 ** 2 + 8 * 1024 ** 3 - 256 * 1024 ** 2,
    });
  });

  it('ignores nodes that are not Ready, so a dead node shrinks the capacity', () => {
    const all = capacityFromNodes([node(2, 4), node(2, 4)], { reserve: { cpu: 0, memory: 0 } });
    const oneDown = capacityFromNodes([node(2, 4), node(2, 4, 'Unreachable')], {
      reserve: { cpu: 0, memory: 0 },
    });
    expect(all).toEqual({ cpuMilli: 4000, memoryBytes: 8 * 1024 ** 3 });
    expect(oneDown).toEqual({ cpuMilli: 2000, memoryBytes: 4 * 1024 ** 3 });
    for (const s of ['Suspect', 'Cordoned', 'Draining', 'Pending', 'Removed'] as const)
      expect(capacityFromNodes([node(2, 4, s)])).toEqual({ cpuMilli: 0, memoryBytes: 0 });
  });

  it('takes a configurable reserve and never goes below zero per node', () => {
    expect(capacityFromNodes([node(1, 1), node(4, 4)], { reserve: { cpu: '2', memory: '2Gi' } })).toEqual({
      cpuMilli: 2000,
      memoryBytes: 2 * 1024 ** 3,
    });
    expect(() => capacityFromNodes([node(1, 1)], { reserve: { cpu: 'lots' } })).toThrow(/reserve\.cpu/);
  });
});

describe('VC error registry', () => {
  it('every VC code is registered with the coordinator and documented', async () => {
    const { COORDINATOR_ERRORS } = await import('../../coordinator/errors.js');
    const { VC_ERRORS } = await import('../../coordinator/vc/index.js');
    for (const [code, spec] of Object.entries(VC_ERRORS)) {
      expect(COORDINATOR_ERRORS[code], code).toBe(spec);
      expect(spec.description.length).toBeGreaterThan(10);
    }
  });
});

describe('human units for tables', () => {
  it('prints CPU in cores and memory in the largest binary unit, one decimal', () => {
    expect(humanCpu(3900)).toBe('3.9');
    expect(humanCpu(250)).toBe('0.25');
    expect(humanCpu(8000)).toBe('8');
    expect(humanMemory(48842848 * 1024)).toBe('46.6Gi');
    expect(humanMemory(100 * 1024 * 1024)).toBe('100Mi');
    expect(humanMemory(7936 * 1024 * 1024)).toBe('7.8Gi');
    expect(humanMemory(512)).toBe('512B');
    expect(humanMemory(1024 ** 3 - 1)).toBe('1Gi');
    expect(humanMemory(0)).toBe('0B');
  });
});
