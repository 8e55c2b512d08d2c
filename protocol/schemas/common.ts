import { type Static, Type } from '@sinclair/typebox';
import {
  HOSTNAME_PATTERN,
  IP_ADDRESS_PATTERN,
  LABEL_KEY_PATTERN,
  LABEL_VALUE_PATTERN,
  MAX_AGENT_LABELS,
} from '../node-input.js';
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

/*
 * Text a node reports about itself. `errorMessage` is what a decode error says when the value
 * does not match (instead of the pattern itself); see protocol/node-input.ts for the rules.
 */
export const IpAddress = Type.String({
  maxLength: 45,
  pattern: IP_ADDRESS_PATTERN,
  description: 'an IPv4 or IPv6 address: no zone, brackets or whitespace',
  errorMessage: 'must be an IP address (IPv4 or IPv6, no zone, brackets or whitespace)',
});
export const Hostname = Type.String({
  minLength: 1,
  maxLength: 253,
  pattern: HOSTNAME_PATTERN,
  description: 'an RFC 1123 host name; the coordinator lowers its case',
  errorMessage:
    'must be an RFC 1123 host name (dot-separated labels of 1-63 letters, digits and "-", not starting or ending with "-", 253 characters at most)',
});
export const LabelKey = Type.String({
  maxLength: 317,
  pattern: LABEL_KEY_PATTERN,
  errorMessage: 'label key must be a Kubernetes label key ([prefix/]name, name at most 63 characters)',
});
export const LabelValue = Type.String({
  maxLength: 63,
  pattern: LABEL_VALUE_PATTERN,
  errorMessage:
    'label value must be a Kubernetes label value (at most 63 of A-Z a-z 0-9 _ . -, starting and ending alphanumeric)',
});
/** The record options of `AgentLabels` (the agent's config uses them too). */
export const AGENT_LABELS_OPTIONS = {
  maxProperties: MAX_AGENT_LABELS,
  additionalProperties: false,
  errorMessage: `labels: at most ${MAX_AGENT_LABELS}, each key a Kubernetes label key ([prefix/]name, name at most 63 of A-Z a-z 0-9 _ . -)`,
} as const;
/** Labels an agent reports (its configured `labels`): Kubernetes label syntax. */
export const AgentLabels = Type.Record(LabelKey, LabelValue, AGENT_LABELS_OPTIONS);

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
