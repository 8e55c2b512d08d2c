import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  canonicalJson,
  DecodeError,
  decode,
  decodeMessage,
  encode,
  generateSigningKey,
  MESSAGE_SCHEMAS,
  type MessageName,
  natsPermissionsForNode,
  nodeIdFromSubject,
  planChecksum,
  publicKeyFromB64,
  SignatureError,
  signPlan,
  subjects,
  verifyPlan,
} from '../../protocol/index.js';
import { sampleInstance, sampleMessages, samplePlan } from '../helpers/fixtures.js';

const names = Object.keys(MESSAGE_SCHEMAS) as MessageName[];

describe('protocol messages', () => {
  it.each(names)('%s round-trips through encode/decode', (name) => {
    const msg = sampleMessages()[name];
    const back = decodeMessage(name, encode(msg));
    expect(back).toEqual(msg);
  });

  it('rejects an unknown protocol version with a typed error naming /v', () => {
    const hb = { ...sampleMessages().Heartbeat, v: 2 };
    const err = catchErr(() => decodeMessage('Heartbeat', JSON.stringify(hb)));
    expect(err).toBeInstanceOf(DecodeError);
    expect((err as DecodeError).code).toBe('DROVER_ERR_PROTOCOL_VERSION');
    expect((err as DecodeError).field).toBe('/v');
  });

  it('rejects a missing version', () => {
    const { v: _v, ...rest } = sampleMessages().Heartbeat;
    const err = catchErr(() => decodeMessage('Heartbeat', JSON.stringify(rest))) as DecodeError;
    expect(err.code).toBe('DROVER_ERR_PROTOCOL_VERSION');
  });

  it('names the wrong field in a nested shape error', () => {
    const plan = samplePlan();
    (plan.instances[0]!.health as { port: unknown }).port = 'eighty';
    const err = catchErr(() => decodeMessage('NodePlan', JSON.stringify(plan))) as DecodeError;
    expect(err).toBeInstanceOf(DecodeError);
    expect(err.code).toBe('DROVER_ERR_DECODE');
    expect(err.field).toBe('/instances/0/health/port');
    expect(err.message).toContain('/instances/0/health/port');
  });

  it('gives a typed error for bytes that are not JSON or not UTF-8', () => {
    expect((catchErr(() => decodeMessage('Task', '{nope')) as DecodeError).code).toBe('DROVER_ERR_BAD_JSON');
    expect((catchErr(() => decodeMessage('Task', new Uint8Array([0xff, 0xfe]))) as DecodeError).code).toBe(
      'DROVER_ERR_BAD_JSON',
    );
    expect((catchErr(() => decodeMessage('Task', 'null')) as DecodeError).code).toBe('DROVER_ERR_DECODE');
    expect((catchErr(() => decodeMessage('Task', '[1]')) as DecodeError).code).toBe('DROVER_ERR_DECODE');
  });

  it('property: random JSON values decode or give DecodeError, never another throw', () => {
    fc.assert(
      fc.property(fc.constantFrom(...names), fc.jsonValue(), (name, value) => {
        try {
          decode(MESSAGE_SCHEMAS[name], JSON.stringify(value ?? null));
        } catch (err) {
          expect(err).toBeInstanceOf(DecodeError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('property: mutated valid messages decode or give DecodeError naming a field', () => {
    const samples = sampleMessages();
    fc.assert(
      fc.property(
        fc.constantFrom(...names),
        fc.array(fc.tuple(fc.nat(), fc.jsonValue()), { minLength: 1, maxLength: 4 }),
        (name, muts) => {
          const msg = structuredClone(samples[name]) as unknown;
          for (const [pick, replacement] of muts) mutate(msg, pick, replacement);
          try {
            decode(MESSAGE_SCHEMAS[name], JSON.stringify(msg));
          } catch (err) {
            expect(err).toBeInstanceOf(DecodeError);
            expect(typeof (err as DecodeError).field).toBe('string');
          }
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('property: random bytes never crash the decoder', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => {
        try {
          decodeMessage('Register', bytes);
        } catch (err) {
          expect(err).toBeInstanceOf(DecodeError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('plan signing', () => {
  const key = generateSigningKey();
  const pub = publicKeyFromB64(key.publicKeyB64);

  it('a good signature verifies', () => {
    const signed = signPlan(samplePlan(), key);
    expect(verifyPlan(signed, pub).generation).toBe(1);
  });

  it('a changed byte anywhere in the plan is rejected', () => {
    const signed = signPlan(samplePlan(), key);
    const tampered = structuredClone(signed);
    tampered.plan.generation = 2;
    expect(() => verifyPlan(tampered, pub)).toThrow(SignatureError);
    const tampered2 = structuredClone(signed);
    tampered2.plan.instances[0]!.run.args.push('--evil');
    expect(catchErr(() => verifyPlan(tampered2, pub))).toMatchObject({ code: 'DROVER_ERR_PLAN_CHECKSUM' });
    // a tamperer who also fixes up the checksums still cannot forge the signature
    const tampered3 = structuredClone(signed);
    tampered3.plan = samplePlan({
      instances: [sampleInstance({ run: { command: '/bin/sh', args: ['-c', 'rm -rf /'], env: {} } })],
    });
    expect(catchErr(() => verifyPlan(tampered3, pub))).toMatchObject({ code: 'DROVER_ERR_PLAN_SIGNATURE' });
    const sigBytes = Buffer.from(signed.signature!, 'base64');
    sigBytes[0] = sigBytes[0]! ^ 1;
    expect(
      catchErr(() => verifyPlan({ ...signed, signature: sigBytes.toString('base64') }, pub)),
    ).toMatchObject({
      code: 'DROVER_ERR_PLAN_SIGNATURE',
    });
  });

  it('a wrong key and a missing signature are rejected', () => {
    const signed = signPlan(samplePlan(), key);
    const other = publicKeyFromB64(generateSigningKey().publicKeyB64);
    expect(catchErr(() => verifyPlan(signed, other))).toMatchObject({ code: 'DROVER_ERR_PLAN_SIGNATURE' });
    const { signature: _s, ...unsigned } = signed;
    expect(catchErr(() => verifyPlan(unsigned, pub))).toMatchObject({ code: 'DROVER_ERR_PLAN_UNSIGNED' });
  });

  it('canonical JSON is independent of key order, and the checksum follows content only', () => {
    expect(canonicalJson({ b: 1, a: [1, { d: 2, c: 3 }] })).toBe('{"a":[1,{"c":3,"d":2}],"b":1}');
    const a = samplePlan({ generation: 1 });
    const b = samplePlan({ generation: 5 });
    expect(a.checksum).toBe(b.checksum);
    expect(planChecksum(a)).toBe(a.checksum);
    const c = samplePlan({
      instances: [
        sampleInstance({
          env: undefined,
          run: { command: '/usr/bin/env', args: ['sleep', '1'], env: {} },
        } as never),
      ],
    });
    expect(c.checksum).not.toBe(a.checksum);
  });
});

describe('subjects', () => {
  it('are versioned and per node', () => {
    expect(subjects.heartbeat('n1')).toBe('drover.v1.heartbeat.n1');
    expect(subjects.plan('n1')).toBe('drover.v1.plan.n1');
    expect(subjects.register('n1')).toBe('drover.v1.register.n1');
    expect(subjects.event('node.joined')).toBe('drover.v1.events.node.joined');
    expect(nodeIdFromSubject('drover.v1.status.n-2')).toBe('n-2');
    expect(nodeIdFromSubject('drover.v2.status.n-2')).toBeUndefined();
  });
  it('refuse node ids that would escape the subject hierarchy', () => {
    expect(() => subjects.heartbeat('a.b')).toThrow(TypeError);
    expect(() => subjects.plan('*')).toThrow(TypeError);
    expect(() => subjects.plan('>')).toThrow(TypeError);
  });
  it('per-node permissions only allow that node', () => {
    const p = natsPermissionsForNode('n1');
    expect(p.subscribe.allow).toContain('drover.v1.plan.n1');
    expect(p.publish.allow.some((s) => s.includes('n2'))).toBe(false);
    expect(p.publish.allow).not.toContain('drover.v1.plan.n1');
  });
});

function catchErr(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected an error');
}

function mutate(root: unknown, pick: number, replacement: unknown): void {
  const paths: Array<[Record<string, unknown> | unknown[], string | number]> = [];
  const walk = (v: unknown) => {
    if (Array.isArray(v)) {
      v.forEach((x, i) => {
        paths.push([v, i]);
        walk(x);
      });
    } else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        paths.push([v as Record<string, unknown>, k]);
        walk(x);
      }
    }
  };
  walk(root);
  if (paths.length === 0) return;
  const [parent, key] = paths[pick % paths.length]!;
  if (pick % 3 === 0 && !Array.isArray(parent)) delete (parent as Record<string, unknown>)[key as string];
  else (parent as Record<string | number, unknown>)[key] = replacement;
}
