import { type Static, Type } from '@sinclair/typebox';
import { PROTOCOL_VERSION } from '../version.js';

export const Version = Type.Literal(PROTOCOL_VERSION, { description: 'protocol version' });
export const NodeId = Type.String({ pattern: '^[A-Za-z0-9_-]{1,128}$', description: 'stable node id' });
export const InstanceId = Type.String({
  pattern: '^[a-z0-9]([a-z0-9-]{0,62})#[0-9]{1,5}$',
  description: 'role instance id, `<role>#<ordinal>`',
});
export const RoleName = Type.String({ pattern: '^[a-z0-9]([a-z0-9-]{0,62})$', description: 'role name' });
export const Sha256Hex = Type.String({ pattern: '^[0-9a-f]{64}$' });
export const IsoTime = Type.String({ minLength: 10, maxLength: 40, description: 'RFC 3339 time' });
export const Labels = Type.Record(
  Type.String({ pattern: '^[A-Za-z0-9._/-]{1,253}$' }),
  Type.String({ maxLength: 253 }),
);
export type Labels = Static<typeof Labels>;

export const NODE_STATES = [
  'Pending',
  'Ready',
  'Suspect',
  'Unreachable',
  'Cordoned',
  'Draining',
  'Removed',
] as const;
export type NodeState = (typeof NODE_STATES)[number];
export const NodeState = Type.Union(NODE_STATES.map((s) => Type.Literal(s)));

export const INSTANCE_PHASES = [
  'Pending',
  'Starting',
  'Running',
  'Healthy',
  'Unhealthy',
  'CrashLoop',
  'Stopped',
  'Failed',
] as const;
export type InstancePhase = (typeof INSTANCE_PHASES)[number];
export const InstancePhase = Type.Union(INSTANCE_PHASES.map((s) => Type.Literal(s)));

/** What stands in for a real component: the lab's stand-in process, or a kwok-managed node. */
export const Simulator = Type.Union([Type.Literal('standin'), Type.Literal('kwok')], {
  description: 'standin: the lab stand-in honouring the real flags; kwok: a node simulated by kwok',
});
export type Simulator = Static<typeof Simulator>;

export const ErrorBody = Type.Object({
  code: Type.String(),
  message: Type.String(),
  details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
});
export type ErrorBody = Static<typeof ErrorBody>;
