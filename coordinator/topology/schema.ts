/**
 * The topology file's shape as a TypeBox schema (a value: the REST API and `docs/topology.md` use the
 * same one). This is the INPUT shape, with the shorthands people write by hand (`memory: 4Gi`,
 * `period: 2s`, `pool: worker`); `validateTopology()` checks it, then normalizes it into `Topology`.
 *
 * `x-msg` on a schema is the message shown when a value fails it, so errors read
 * `roles.kube-apiserver.replicas: must be an integer >= 0` rather than TypeBox's defaults.
 */
import { type TSchema, Type } from '@sinclair/typebox';

const msg = <T extends TSchema>(schema: T, text: string): T => ({ ...schema, 'x-msg': text }) as T;

export const ROLE_NAME_PATTERN = '^[a-z0-9]([a-z0-9-]{0,62})$';
export const LABEL_KEY_PATTERN = '^[A-Za-z0-9._/-]{1,253}$';

export const RoleNameKey = msg(
  Type.String({ pattern: ROLE_NAME_PATTERN }),
  'must be a role name: lower-case letters, digits and "-", at most 63 characters',
);
const LabelKey = msg(
  Type.String({ pattern: LABEL_KEY_PATTERN }),
  'must be a label key: letters, digits and "._/-", at most 253 characters',
);
const NonEmpty = msg(Type.String({ minLength: 1 }), 'must be a non-empty string');
const Port = msg(Type.Integer({ minimum: 1, maximum: 65535 }), 'must be a port number from 1 to 65535');
const Duration = msg(
  Type.Union([
    Type.Number({ minimum: 0 }),
    Type.String({ pattern: '^\\s*(\\d+(\\.\\d+)?(ms|s|m|h))+\\s*$|^\\d+$' }),
  ]),
  'must be a duration such as 500ms, 15s or 1m30s (a bare number is milliseconds)',
);
const Count = (min = 0) => msg(Type.Integer({ minimum: min }), `must be an integer >= ${min}`);
const StringMap = msg(Type.Record(Type.String(), Type.String()), 'must be a map of strings');
const StringList = msg(Type.Array(Type.String()), 'must be a list of strings');

export const SELECTOR_OPS = ['In', 'NotIn', 'Exists', 'DoesNotExist', 'Gt', 'Lt'] as const;
export type SelectorOp = (typeof SELECTOR_OPS)[number];

const SelectorValue = Type.Union([Type.String(), Type.Number(), Type.Boolean()]);
export const SelectorTermSchema = msg(
  Type.Union([
    SelectorValue,
    Type.Object(
      {
        op: msg(
          Type.Union(SELECTOR_OPS.map((o) => Type.Literal(o))),
          `must be one of ${SELECTOR_OPS.join(', ')}`,
        ),
        values: Type.Optional(msg(Type.Array(SelectorValue), 'must be a list of values')),
      },
      { additionalProperties: false },
    ),
  ]),
  `must be a label value, or { op: ${SELECTOR_OPS.join('|')}, values: [...] }`,
);

const RestartOverrides = Type.Object(
  {
    policy: Type.Optional(
      msg(
        Type.Union([Type.Literal('always'), Type.Literal('on-failure'), Type.Literal('never')]),
        'must be always, on-failure or never',
      ),
    ),
    initialBackoff: Type.Optional(Duration),
    maxBackoff: Type.Optional(Duration),
    resetAfter: Type.Optional(Duration),
    crashLoopThreshold: Type.Optional(Count(1)),
  },
  { additionalProperties: false },
);

export const RepairPolicySchema = Type.Object(
  {
    reassignAfter: Type.Optional(Duration),
    maxReassignPerHour: Type.Optional(Count(0)),
    autoReassign: Type.Optional(msg(Type.Boolean(), 'must be true or false')),
    restart: Type.Optional(RestartOverrides),
  },
  { additionalProperties: false },
);

export const RoleSpecSchema = Type.Object(
  {
    replicas: Type.Optional(msg(Type.Integer({ minimum: 0, maximum: 10_000 }), 'must be an integer >= 0')),
    everywhere: Type.Optional(msg(Type.Boolean(), 'must be true or false')),
    nodeSelector: Type.Optional(
      msg(
        Type.Record(LabelKey, SelectorTermSchema, { additionalProperties: false }),
        'must be a map of label: value',
      ),
    ),
    resources: Type.Optional(
      Type.Object(
        {
          cpuCores: Type.Optional(msg(Type.Number({ minimum: 0 }), 'must be a number >= 0')),
          memory: Type.Optional(
            msg(
              Type.Union([Type.Integer({ minimum: 0 }), Type.String()]),
              'must be a byte count or a quantity such as 512Mi, 4Gi or 8G',
            ),
          ),
          memoryBytes: Type.Optional(Count(0)),
        },
        { additionalProperties: false },
      ),
    ),
    spread: Type.Optional(
      Type.Object(
        {
          perNode: Type.Optional(msg(Type.Boolean(), 'must be true or false')),
          acrossLabel: Type.Optional(LabelKey),
        },
        { additionalProperties: false },
      ),
    ),
    pins: Type.Optional(msg(Type.Array(NonEmpty), 'must be a list of node names')),
    repair: Type.Optional(RepairPolicySchema),
    extraArgs: Type.Optional(StringList),
    env: Type.Optional(StringMap),
  },
  { additionalProperties: false },
);

const FileMode = msg(
  Type.Union([Type.Integer({ minimum: 0, maximum: 0o777 }), Type.String({ pattern: '^0?[0-7]{3,4}$' })]),
  'must be an octal mode string such as "0644", or a number up to 511 (0o777); a bare 644 in YAML is decimal',
);

export const ProbeSchema = Type.Object(
  {
    kind: msg(
      Type.Union([Type.Literal('http'), Type.Literal('https'), Type.Literal('tcp'), Type.Literal('exec')]),
      'must be http, https, tcp or exec',
    ),
    host: Type.Optional(NonEmpty),
    port: Type.Optional(Port),
    path: Type.Optional(msg(Type.String({ pattern: '^/' }), 'must start with "/"')),
    insecure: Type.Optional(msg(Type.Boolean(), 'must be true or false')),
    command: Type.Optional(NonEmpty),
    args: Type.Optional(StringList),
    period: Type.Optional(Duration),
    timeout: Type.Optional(Duration),
    initialDelay: Type.Optional(Duration),
    failureThreshold: Type.Optional(Count(1)),
    successThreshold: Type.Optional(Count(1)),
  },
  { additionalProperties: false },
);

export const CustomRoleSchema = Type.Object(
  {
    description: Type.Optional(Type.String()),
    command: NonEmpty,
    args: Type.Optional(StringList),
    env: Type.Optional(StringMap),
    cwd: Type.Optional(msg(Type.String({ pattern: '^/' }), 'must be an absolute path')),
    files: Type.Optional(
      Type.Array(
        Type.Object(
          {
            path: msg(Type.String({ pattern: '^/', minLength: 2 }), 'must be an absolute path'),
            mode: Type.Optional(FileMode),
            content: msg(Type.String(), 'must be a string'),
            encoding: Type.Optional(
              msg(Type.Union([Type.Literal('utf8'), Type.Literal('base64')]), 'must be utf8 or base64'),
            ),
          },
          { additionalProperties: false },
        ),
      ),
    ),
    health: Type.Optional(ProbeSchema),
    ports: Type.Optional(Type.Array(Port)),
    commands: Type.Optional(
      Type.Record(
        msg(
          Type.String({ pattern: '^[a-z0-9-]{1,64}$' }),
          'must be a command name: lower-case letters, digits and "-"',
        ),
        Type.Object(
          { command: NonEmpty, args: Type.Optional(StringList), timeout: Type.Optional(Duration) },
          { additionalProperties: false },
        ),
        { additionalProperties: false },
      ),
    ),
    dependsOn: Type.Optional(Type.Array(RoleNameKey)),
    stopTimeout: Type.Optional(Duration),
    reloadSignal: Type.Optional(
      msg(Type.String({ pattern: '^SIG[A-Z0-9]+$' }), 'must be a signal name such as SIGHUP'),
    ),
  },
  { additionalProperties: false },
);

export const ApiEndpointSchema = Type.Object(
  {
    mode: msg(
      Type.Union([Type.Literal('haproxy'), Type.Literal('external'), Type.Literal('direct')]),
      'must be haproxy, external or direct',
    ),
    address: Type.Optional(NonEmpty),
    port: Type.Optional(Port),
  },
  { additionalProperties: false },
);

/**
 * An Arktos data partition (service group), the fields of the seed's DataPartitionConfig. Bounds
 * are optional: an absent bound is open (`isRange*Valid` defaults to whether the bound is given).
 */
export const PartitionSchema = Type.Object(
  {
    id: msg(
      Type.Union([Type.String({ minLength: 1 }), Type.Integer({ minimum: 0 })]),
      'must be a service group id such as "1"',
    ),
    name: Type.Optional(NonEmpty),
    rangeStart: Type.Optional(msg(Type.String(), 'must be a string (a tenant name)')),
    isRangeStartValid: Type.Optional(msg(Type.Boolean(), 'must be true or false')),
    rangeEnd: Type.Optional(msg(Type.String(), 'must be a string (a tenant name)')),
    isRangeEndValid: Type.Optional(msg(Type.Boolean(), 'must be true or false')),
    replicas: Type.Optional(
      msg(Type.Integer({ minimum: 1, maximum: 99 }), 'must be an integer from 1 to 99'),
    ),
  },
  { additionalProperties: false },
);

export const ClusterSchema = Type.Object(
  {
    name: msg(
      Type.String({ pattern: '^[A-Za-z0-9]([A-Za-z0-9._-]{0,62})$' }),
      'must be a name: letters, digits and "._-"',
    ),
    kubernetesVersion: Type.Optional(
      msg(
        Type.String({ pattern: '^v?\\d+\\.\\d+(\\.\\d+)?([-+].*)?$' }),
        'must be a version such as v1.28.4',
      ),
    ),
    serviceCIDR: Type.Optional(NonEmpty),
    podCIDR: Type.Optional(NonEmpty),
    clusterDNS: Type.Optional(NonEmpty),
    clusterDomain: Type.Optional(
      msg(
        Type.String({ pattern: '^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$' }),
        'must be a DNS domain such as cluster.local',
      ),
    ),
    binaries: Type.Optional(
      msg(
        Type.Record(Type.String(), msg(Type.String({ pattern: '^/' }), 'must be an absolute path')),
        'must map role names to absolute paths',
      ),
    ),
    apiEndpoint: Type.Optional(ApiEndpointSchema),
    certDir: Type.Optional(msg(Type.String({ pattern: '^/' }), 'must be an absolute path')),
    containerRuntimeEndpoint: Type.Optional(NonEmpty),
    logLevel: Type.Optional(
      msg(Type.Integer({ minimum: 0, maximum: 10 }), 'must be an integer from 0 to 10'),
    ),
    partitions: Type.Optional(
      msg(Type.Array(PartitionSchema, { minItems: 1 }), 'must be a non-empty list of data partitions'),
    ),
    etcdSnapshots: Type.Optional(
      Type.Object(
        {
          every: Type.Optional(Duration),
          keep: Type.Optional(
            msg(Type.Integer({ minimum: 1, maximum: 1000 }), 'must be an integer from 1 to 1000'),
          ),
          enabled: Type.Optional(msg(Type.Boolean(), 'must be true or false')),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

export const TopologySchema = Type.Object(
  {
    apiVersion: msg(Type.Literal('drover.dev/v1'), 'must be drover.dev/v1'),
    kind: msg(Type.Literal('Topology'), 'must be Topology'),
    metadata: Type.Object(
      {
        name: msg(
          Type.String({ pattern: '^[A-Za-z0-9]([A-Za-z0-9._-]{0,62})$' }),
          'must be a name: letters, digits and "._-", at most 63 characters',
        ),
        labels: Type.Optional(StringMap),
      },
      { additionalProperties: false },
    ),
    cluster: ClusterSchema,
    roles: msg(Type.Record(Type.String(), RoleSpecSchema), 'must be a map of role name: settings'),
    customRoles: Type.Optional(
      msg(Type.Record(Type.String(), CustomRoleSchema), 'must be a map of role name: definition'),
    ),
  },
  { additionalProperties: false, $id: 'Topology' },
);
