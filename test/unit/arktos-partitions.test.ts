import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import {
  ARKTOS_ERRORS,
  compareTenants,
  type Partition,
  partitionContains,
  renderDataPartitionConfig,
  renderDataPartitionConfigs,
  resolveTenant,
  serviceGroupEnv,
  validatePartitions,
} from '../../coordinator/arktos/index.js';
import { COORDINATOR_ERRORS } from '../../coordinator/errors.js';

const golden = (f: string) => readFileSync(new URL(`../golden/arktos/${f}`, import.meta.url), 'utf8');

// the seed's partition (000/001 "Sample data partition spec") and the second half of the space
const p1: Partition = {
  id: '1',
  rangeStart: 'A',
  isRangeStartValid: false,
  rangeEnd: 'm',
  isRangeEndValid: true,
  replicas: 1,
};
const p2: Partition = {
  id: '2',
  rangeStart: 'm',
  isRangeStartValid: true,
  rangeEnd: 'z',
  isRangeEndValid: false,
  replicas: 2,
};

describe('DataPartitionConfig rendering', () => {
  it('renders the seed’s manifest byte for byte', () => {
    expect(renderDataPartitionConfig(p1)).toBe(golden('datapartition-s1.yaml'));
  });

  it('renders a multi-document file in range order, which parses back to the same fields', () => {
    const text = renderDataPartitionConfigs([p2, p1]);
    expect(text).toBe(golden('datapartitions-two.yaml'));
    const docs = parseAllDocuments(text).map((d) => d.toJS());
    expect(docs).toEqual([
      {
        apiVersion: 'v1',
        kind: 'DataPartitionConfig',
        serviceGroupId: '1',
        rangeStart: 'A',
        isRangeStartValid: false,
        rangeEnd: 'm',
        isRangeEndValid: true,
        metadata: { name: 'partition-1' },
      },
      {
        apiVersion: 'v1',
        kind: 'DataPartitionConfig',
        serviceGroupId: '2',
        rangeStart: 'm',
        isRangeStartValid: true,
        rangeEnd: 'z',
        isRangeEndValid: false,
        metadata: { name: 'partition-2' },
      },
    ]);
  });

  it('quotes strings safely, so a range bound cannot inject YAML', () => {
    const text = renderDataPartitionConfig({ ...p2, rangeStart: 'a"\n: x', name: 'custom' });
    const doc = parseAllDocuments(text)[0]!.toJS();
    expect(doc.rangeStart).toBe('a"\n: x');
    expect(doc.metadata).toEqual({ name: 'custom' });
  });

  it('gives each service group its APISERVER_SERVICEGROUPID', () => {
    expect(serviceGroupEnv(p2)).toEqual({ APISERVER_SERVICEGROUPID: '2' });
  });
});

describe('tenant ranges (start inclusive, end exclusive, invalid = open)', () => {
  it.each<[string, boolean, boolean]>([
    // tenant exactly at rangeEnd: excluded when the end is valid; open end ignores the value
    ['m', true, false],
    ['m', false, true],
    ['l', true, true],
    ['lzzz', true, true],
  ])('tenant "%s" with isRangeEndValid=%s → in partition: %s', (tenant, endValid, inside) => {
    expect(partitionContains({ ...p1, isRangeEndValid: endValid }, tenant)).toBe(inside);
  });

  it.each<[string, boolean, boolean]>([
    // tenant exactly at rangeStart: included when the start is valid; open start ignores the value
    ['m', true, true],
    ['m', false, true],
    ['a', true, false],
    ['a', false, true],
  ])('tenant "%s" with isRangeStartValid=%s → in partition: %s', (tenant, startValid, inside) => {
    expect(partitionContains({ ...p2, isRangeStartValid: startValid }, tenant)).toBe(inside);
  });

  it('the seed’s open start really is open: "A" is ignored, so "0" and "@" are in partition-1', () => {
    expect(partitionContains(p1, '0')).toBe(true);
    expect(partitionContains(p1, '@')).toBe(true);
  });

  it('resolves tenants across the boundary', () => {
    const ps = [p1, p2];
    expect(resolveTenant(ps, 'a').id).toBe('1');
    expect(resolveTenant(ps, 'default').id).toBe('1');
    expect(resolveTenant(ps, 'lzzzzz').id).toBe('1');
    expect(resolveTenant(ps, 'm').id).toBe('2');
    expect(resolveTenant(ps, 'zzz').id).toBe('2');
    expect(() => resolveTenant(ps, '')).toThrow(/non-empty/);
  });

  it('orders strings as Go does (UTF-8 bytes), not as JS UTF-16 does', () => {
    const astral = '\u{1F600}'; // UTF-16 D83D…, UTF-8 F0…
    const bmp = '\uFF21'; // UTF-16 FF21, UTF-8 EF…
    expect(astral < bmp).toBe(true); // JS
    expect(compareTenants(astral, bmp)).toBeGreaterThan(0); // Go
  });

  it('with three partitions every tenant resolves to exactly the one whose range holds it', () => {
    const ps: Partition[] = [
      {
        id: 'a',
        rangeStart: '',
        isRangeStartValid: false,
        rangeEnd: 'g',
        isRangeEndValid: true,
        replicas: 1,
      },
      {
        id: 'b',
        rangeStart: 'g',
        isRangeStartValid: true,
        rangeEnd: 'p',
        isRangeEndValid: true,
        replicas: 1,
      },
      {
        id: 'c',
        rangeStart: 'p',
        isRangeStartValid: true,
        rangeEnd: '',
        isRangeEndValid: false,
        replicas: 1,
      },
    ];
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 8, unit: 'grapheme' }), (t) => {
        const holders = ps.filter((p) => partitionContains(p, t));
        expect(holders).toHaveLength(1);
        expect(resolveTenant(ps, t)).toBe(holders[0]);
      }),
      { numRuns: 300 },
    );
  });
});

describe('validatePartitions refuses overlaps and gaps, naming the partitions', () => {
  it('accepts the seed’s split and a single all-tenant partition', () => {
    expect(validatePartitions([p2, p1]).map((p) => p.id)).toEqual(['1', '2']);
    expect(validatePartitions([{ ...p1, isRangeEndValid: false }])).toHaveLength(1);
  });

  it('refuses overlapping ranges', () => {
    const err = (() => {
      try {
        validatePartitions([p1, { ...p2, rangeStart: 'k' }]);
      } catch (e) {
        return e as { code: string; message: string; details: { partitions: string[] } };
      }
    })()!;
    expect(err.code).toBe('DROVER_ERR_ARKTOS_OVERLAP');
    expect(err.message).toContain('partition-1');
    expect(err.message).toContain('partition-2');
    expect(err.message).toContain('tenants from "k" up to "m" are in both');
    expect(err.details.partitions).toEqual(['partition-1', 'partition-2']);
  });

  it('refuses a gap, saying which tenants are unserved', () => {
    expect(() => validatePartitions([p1, { ...p2, rangeStart: 'n' }])).toThrow(
      /tenants from "m" up to "n" are served by no partition \(between partition-1/,
    );
    expect(() => validatePartitions([p1, { ...p2, rangeStart: 'n' }])).toThrow(
      expect.objectContaining({ code: 'DROVER_ERR_ARKTOS_GAP' }),
    );
  });

  it('refuses ranges that do not reach the ends of the tenant space', () => {
    expect(() => validatePartitions([p1])).toThrow(
      /tenants from "m" on are served by no partition: partition-1/,
    );
    expect(() => validatePartitions([p2, { ...p1, isRangeStartValid: true, rangeStart: 'b' }])).toThrow(
      /tenants before "b" are served by no partition/,
    );
  });

  it('refuses two open starts, two open ends, and an open end followed by more', () => {
    expect(() => validatePartitions([p1, { ...p2, isRangeStartValid: false }])).toThrow(
      /both have an open start/,
    );
    expect(() => validatePartitions([{ ...p1, isRangeEndValid: false }, p2])).toThrow(
      /partition-1 \[\(open\), \(open\)\) and partition-2 \["m", \(open\)\) overlap: the first has an open end/,
    );
  });

  it.each<[string, Partial<Partition>, RegExp]>([
    [
      'empty range',
      { rangeStart: 'n', isRangeStartValid: true, rangeEnd: 'm' },
      /partitions\[0\] \(1\)\.rangeEnd "m" must sort after rangeStart "n"/,
    ],
    ['bad id', { id: 'a b' }, /partitions\[0\] \(a b\)\.id/],
    ['zero replicas', { replicas: 0 }, /partitions\[0\] \(1\)\.replicas must be an integer from 1/],
    ['empty valid end', { rangeEnd: '' }, /rangeEnd is empty but isRangeEndValid is true/],
    [
      'non-boolean flag',
      { isRangeEndValid: 'true' as unknown as boolean },
      /isRangeEndValid must be true or false/,
    ],
  ])('refuses a malformed partition (%s) naming the field', (_, over, msg) => {
    expect(() => validatePartitions([{ ...p1, ...over }, p2])).toThrow(msg);
  });

  it('refuses duplicate service group ids and names, and an empty list', () => {
    expect(() => validatePartitions([p1, { ...p2, id: '1' }])).toThrow(/share the service group id "1"/);
    expect(() => validatePartitions([p1, { ...p2, name: 'partition-1' }])).toThrow(
      /share the name "partition-1"/,
    );
    expect(() => validatePartitions([])).toThrow(/at least one data partition/);
  });

  it('every Arktos code is registered with the coordinator and documented', () => {
    for (const [code, spec] of Object.entries(ARKTOS_ERRORS)) {
      expect(COORDINATOR_ERRORS[code], code).toBe(spec);
      expect(spec.description.length).toBeGreaterThan(10);
    }
  });
});
