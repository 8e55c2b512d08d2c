import { describe, expect, it } from 'vitest';
import {
  deriveLabels,
  describeSelector,
  matchesSelector,
  parseQuantity,
  type SelectorTerm,
} from '../../coordinator/topology/index.js';
import { sampleFacts } from '../helpers/fixtures.js';

describe('deriveLabels', () => {
  it('derives drover.dev/* labels from facts', () => {
    const facts = sampleFacts({
      binaries: {
        etcd: { path: '/usr/bin/etcd', version: '3.4.23' },
        haproxy: { path: '/usr/sbin/haproxy', version: '2.6.12' },
        'kube-apiserver': { path: '/usr/local/bin/kube-apiserver', version: 'v1.28.4' },
      },
      gpus: [{ vendor: 'NVIDIA', model: 'T4' }],
    });
    expect(deriveLabels(facts)).toEqual({
      'drover.dev/arch': 'amd64',
      'drover.dev/cpu-cores': '4',
      'drover.dev/memory-gb': '8',
      'drover.dev/os': 'linux',
      'drover.dev/hostname': 'cp-1',
      'drover.dev/gpu-count': '1',
      'drover.dev/virtual': 'true',
      'drover.dev/has-etcd': 'true',
      'drover.dev/has-haproxy': 'true',
      'drover.dev/has-kube-apiserver': 'true',
    });
  });

  it('maps architectures to Kubernetes names and rounds memory to GiB', () => {
    const l = deriveLabels(
      sampleFacts({
        os: { platform: 'linux', distro: 'Debian', release: '12', kernel: '6.1', arch: 'aarch64' },
        memory: { totalBytes: 7.7 * 2 ** 30 },
        virtualization: { virtual: false },
        binaries: { 'we ird': { path: '/x', version: '1' } },
      }),
    );
    expect(l['drover.dev/arch']).toBe('arm64');
    expect(l['drover.dev/memory-gb']).toBe('8');
    expect(l['drover.dev/virtual']).toBe('false');
    // a binary name that cannot be a label key is skipped, not a crash
    expect(Object.keys(l).filter((k) => k.includes('has-'))).toEqual([]);
  });
});

describe('selectors', () => {
  const labels = {
    pool: 'control-plane',
    zone: 'a',
    'drover.dev/cpu-cores': '4',
    'drover.dev/arch': 'amd64',
  };
  const cases: Array<[Record<string, SelectorTerm>, boolean]> = [
    [{}, true],
    [{ pool: 'control-plane' }, true],
    [{ pool: 'worker' }, false],
    [{ pool: { op: 'In', values: ['worker', 'control-plane'] } }, true],
    [{ pool: { op: 'NotIn', values: ['worker'] } }, true],
    [{ gpu: { op: 'NotIn', values: ['x'] } }, true],
    [{ zone: { op: 'Exists' } }, true],
    [{ gpu: { op: 'Exists' } }, false],
    [{ gpu: { op: 'DoesNotExist' } }, true],
    [{ 'drover.dev/cpu-cores': { op: 'Gt', values: ['2'] } }, true],
    [{ 'drover.dev/cpu-cores': { op: 'Gt', values: ['4'] } }, false],
    [{ 'drover.dev/cpu-cores': { op: 'Lt', values: ['8'] } }, true],
    [{ zone: { op: 'Gt', values: ['1'] } }, false],
    [{ pool: 'control-plane', zone: 'b' }, false],
  ];
  it.each(cases)('%j → %s', (sel, want) => {
    expect(matchesSelector(labels, sel)).toBe(want);
  });

  it('describes selectors for humans', () => {
    expect(
      describeSelector({
        pool: 'control-plane',
        'drover.dev/cpu-cores': { op: 'Gt', values: ['2'] },
        zone: { op: 'In', values: ['a', 'b'] },
      }),
    ).toBe('cpu-cores>2, pool=control-plane, zone in (a,b)');
  });
});

describe('parseQuantity', () => {
  it.each([
    ['4Gi', 4 * 2 ** 30],
    ['512Mi', 512 * 2 ** 20],
    ['8G', 8e9],
    ['1.5Gi', 1.5 * 2 ** 30],
    [1024, 1024],
    ['100', 100],
  ])('%s', (q, bytes) => expect(parseQuantity(q)).toBe(bytes));
  it.each(['4GB', '-1', '', 'lots', 1.5, -3])('refuses %s', (q) => expect(parseQuantity(q)).toBeUndefined());
});
