import type { Static, TSchema } from '@sinclair/typebox';
import { type TypeCheck, TypeCompiler } from '@sinclair/typebox/compiler';
import { DecodeError } from './errors.js';
import { Facts } from './schemas/facts.js';
import {
  CertificateReply,
  CertificateRequest,
  Event,
  FactsUpdate,
  Heartbeat,
  Join,
  JoinReply,
  NodeStatus,
  PlanFetch,
  PlanResult,
  Register,
  RegisterReply,
  SignedTask,
  SnapshotChunkReply,
  SnapshotChunkRequest,
  Task,
  TaskResult,
} from './schemas/messages.js';
import { NodePlan, SignedPlan } from './schemas/plan.js';
import { SUPPORTED_VERSIONS } from './version.js';

/** Every message schema, by name. `npm run schemas` exports these as JSON Schema. */
export const MESSAGE_SCHEMAS = {
  Facts,
  FactsUpdate,
  Join,
  JoinReply,
  Register,
  RegisterReply,
  Heartbeat,
  NodeStatus,
  NodePlan,
  SignedPlan,
  PlanFetch,
  PlanResult,
  Task,
  SignedTask,
  TaskResult,
  Event,
  CertificateRequest,
  CertificateReply,
  SnapshotChunkRequest,
  SnapshotChunkReply,
} as const;

export type MessageName = keyof typeof MESSAGE_SCHEMAS;
export type MessageOf<N extends MessageName> = Static<(typeof MESSAGE_SCHEMAS)[N]>;

const compiled = new Map<TSchema, TypeCheck<TSchema>>();

function checker<T extends TSchema>(schema: T): TypeCheck<T> {
  let c = compiled.get(schema);
  if (!c) {
    c = TypeCompiler.Compile(schema);
    compiled.set(schema, c);
  }
  return c as TypeCheck<T>;
}

/**
 * Validates an already-parsed value against a schema. Throws only DecodeError, naming the first
 * failing field as a JSON pointer. Messages with a `v` field are version-checked first, so an
 * agent from the future gets "unsupported protocol version" instead of a confusing shape error.
 */
export function decodeValue<T extends TSchema>(schema: T, value: unknown): Static<T> {
  try {
    const props = (schema as { properties?: Record<string, unknown> }).properties;
    if (props && 'v' in props) {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new DecodeError('DROVER_ERR_DECODE', '', 'expected a JSON object');
      }
      const v = (value as { v?: unknown }).v;
      if (v === undefined)
        throw new DecodeError('DROVER_ERR_PROTOCOL_VERSION', '/v', 'protocol version is missing');
      if (typeof v !== 'number' || !SUPPORTED_VERSIONS.includes(v)) {
        throw new DecodeError(
          'DROVER_ERR_PROTOCOL_VERSION',
          '/v',
          `unsupported protocol version ${JSON.stringify(v)}; this build speaks ${SUPPORTED_VERSIONS.join(', ')}`,
        );
      }
    }
    const c = checker(schema);
    if (c.Check(value)) return value;
    const first = c.Errors(value).First();
    const field = first?.path || '';
    // a schema may say in words what its pattern means (protocol/node-input.ts)
    const custom = (first?.schema as { errorMessage?: unknown } | undefined)?.errorMessage;
    const message =
      typeof custom === 'string'
        ? `${custom}; got ${shortJson(first?.value)}`
        : (first?.message?.toLowerCase() ?? 'invalid value');
    throw new DecodeError('DROVER_ERR_DECODE', field, message);
  } catch (err) {
    if (err instanceof DecodeError) throw err;
    // A schema library bug or a hostile value (e.g. a getter that throws) must still surface as
    // a DecodeError: callers rely on "decode throws only DecodeError".
    throw new DecodeError(
      'DROVER_ERR_DECODE',
      '',
      `cannot validate: ${(err as Error)?.message ?? String(err)}`,
      err,
    );
  }
}

/** A value for an error message: JSON (so a newline shows escaped), cut at 80 characters. */
function shortJson(v: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Parses bytes or a string as JSON and validates it. Throws only DecodeError. */
export function decode<T extends TSchema>(schema: T, data: Uint8Array | string): Static<T> {
  let text: string;
  try {
    text = typeof data === 'string' ? data : utf8.decode(data);
  } catch (err) {
    throw new DecodeError('DROVER_ERR_BAD_JSON', '', 'message is not valid UTF-8', err);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new DecodeError(
      'DROVER_ERR_BAD_JSON',
      '',
      `message is not valid JSON: ${(err as Error).message}`,
      err,
    );
  }
  return decodeValue(schema, parsed);
}

/** Decodes by message name. */
export function decodeMessage<N extends MessageName>(name: N, data: Uint8Array | string): MessageOf<N> {
  return decode(MESSAGE_SCHEMAS[name], data) as MessageOf<N>;
}

const utf8enc = new TextEncoder();

/** Encodes a message. In development it can be validated first so bugs show at the sender. */
export function encode(value: unknown): Uint8Array {
  return utf8enc.encode(JSON.stringify(value));
}

/** Returns true when the value matches; for call sites that branch instead of throwing. */
export function isValid<T extends TSchema>(schema: T, value: unknown): value is Static<T> {
  return checker(schema).Check(value);
}
