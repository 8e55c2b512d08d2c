import { type Static, Type } from '@sinclair/typebox';
import { InstanceId, IsoTime, NodeId, RoleName, Sha256Hex, Simulator, Version } from './common.js';

export const PlanFile = Type.Object({
  path: Type.String({
    minLength: 2,
    maxLength: 4096,
    pattern: '^/',
    description: 'absolute, under the agent root dir',
  }),
  mode: Type.Integer({ minimum: 0, maximum: 0o7777, description: 'POSIX mode, e.g. 420 (0644)' }),
  content: Type.String({ maxLength: 4 * 1024 * 1024 }),
  encoding: Type.Optional(Type.Union([Type.Literal('utf8'), Type.Literal('base64')])),
});
export type PlanFile = Static<typeof PlanFile>;

export const SystemdUnitOptions = Type.Object({
  after: Type.Optional(Type.Array(Type.String())),
  wants: Type.Optional(Type.Array(Type.String())),
  type: Type.Optional(
    Type.Union([
      Type.Literal('simple'),
      Type.Literal('notify'),
      Type.Literal('exec'),
      Type.Literal('forking'),
    ]),
  ),
  limitNOFILE: Type.Optional(Type.Integer({ minimum: 1 })),
  user: Type.Optional(Type.String()),
  extraService: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z]+$' }), Type.String())),
});
export type SystemdUnitOptions = Static<typeof SystemdUnitOptions>;

/** A POSIX system user or group name (useradd's rules, at most 32 characters). */
const PosixName = Type.String({ pattern: '^[a-z_][a-z0-9_-]{0,31}$' });

/**
 * The dedicated system user and group a role runs as (etcd as `etcd`, haproxy as `haproxy`). The
 * agent creates them when missing, gives them the instance's data, config and certificate paths,
 * and starts the process with that uid and gid (`User=`/`Group=` under systemd).
 */
export const RunAs = Type.Object({ user: PosixName, group: PosixName });
export type RunAs = Static<typeof RunAs>;

export const RunSpec = Type.Object({
  command: Type.String({
    minLength: 1,
    description: 'executable: absolute path, or a name resolved on PATH',
  }),
  args: Type.Array(Type.String()),
  env: Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }), Type.String()),
  cwd: Type.Optional(Type.String({ pattern: '^/' })),
  unit: Type.Optional(SystemdUnitOptions),
  runAs: Type.Optional(RunAs),
  stopTimeoutMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 600_000 })),
  reloadSignal: Type.Optional(
    Type.String({ pattern: '^SIG[A-Z0-9]+$', description: 'signal for in-place reload instead of restart' }),
  ),
});
export type RunSpec = Static<typeof RunSpec>;

export const ProbeKind = Type.Union([
  Type.Literal('http'),
  Type.Literal('https'),
  Type.Literal('tcp'),
  Type.Literal('exec'),
]);
export const HealthProbe = Type.Object({
  kind: ProbeKind,
  host: Type.Optional(Type.String()),
  port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
  path: Type.Optional(Type.String({ pattern: '^/' })),
  insecure: Type.Optional(Type.Boolean({ description: 'https: accept self-signed serving certificates' })),
  caFile: Type.Optional(Type.String()),
  command: Type.Optional(Type.String()),
  args: Type.Optional(Type.Array(Type.String())),
  periodMs: Type.Integer({ minimum: 100, maximum: 3_600_000 }),
  timeoutMs: Type.Integer({ minimum: 10, maximum: 600_000 }),
  initialDelayMs: Type.Integer({
    minimum: 0,
    maximum: 3_600_000,
    description:
      'start-up grace: probing starts at once (every 500 ms until the first pass); failures within this time after a (re)start do not count toward failureThreshold',
  }),
  failureThreshold: Type.Integer({ minimum: 1, maximum: 100 }),
  successThreshold: Type.Integer({ minimum: 1, maximum: 100 }),
});
export type HealthProbe = Static<typeof HealthProbe>;

export const RestartPolicy = Type.Object({
  policy: Type.Union([Type.Literal('always'), Type.Literal('on-failure'), Type.Literal('never')]),
  initialBackoffMs: Type.Integer({ minimum: 0 }),
  maxBackoffMs: Type.Integer({ minimum: 0 }),
  resetAfterMs: Type.Integer({ minimum: 0, description: 'a run this long resets the backoff' }),
  crashLoopThreshold: Type.Integer({
    minimum: 1,
    description: 'consecutive failed starts that count as CrashLoop',
  }),
});
export type RestartPolicy = Static<typeof RestartPolicy>;

export const DeclaredCommand = Type.Object({
  command: Type.String({ minLength: 1 }),
  args: Type.Array(Type.String()),
  timeoutMs: Type.Integer({ minimum: 100, maximum: 600_000 }),
});

const NodePath = Type.String({
  minLength: 2,
  maxLength: 4096,
  pattern: '^/',
  description: 'absolute, under the agent root dir',
});

/**
 * A certificate the agent obtains for an instance before starting it: it generates the key on the
 * node, sends a CSR for exactly these names (`subjects.csr(nodeId)`), and writes key (0600),
 * certificate and issuing CA at these paths. It renews the same way before expiry.
 */
export const PlanCertificate = Type.Object({
  profile: Type.String({ pattern: '^[a-z0-9-]{1,64}$', description: 'e.g. apiserver-serving' }),
  commonName: Type.String({ minLength: 1, maxLength: 256 }),
  organizations: Type.Array(Type.String({ maxLength: 256 })),
  dnsNames: Type.Array(Type.String({ maxLength: 256 })),
  ipAddresses: Type.Array(Type.String({ maxLength: 64 })),
  certPath: NodePath,
  keyPath: NodePath,
  caPath: NodePath,
  renewSerial: Type.Optional(
    Type.String({
      pattern: '^[0-9a-fA-F]{1,128}$',
      description:
        'the coordinator renews this certificate: the one on disk with this serial (hex) is replaced by a new CSR. Asked through the rollout gate, a few instances of a role at a time',
    }),
  ),
});
export type PlanCertificate = Static<typeof PlanCertificate>;

/** Paths of one removed instance that the agent deletes (`drover clean --purge`). */
export const PlanPurge = Type.Object({
  instanceId: InstanceId,
  paths: Type.Array(NodePath, { maxItems: 64 }),
});
export type PlanPurge = Static<typeof PlanPurge>;

/** An etcd snapshot id (coordinator/etcd/snapshot-book.ts makes them: `<cluster>-<time>-<random>`). */
export const SnapshotId = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$' });

/** One way to run the restore: a tool and its argv (`@SNAPSHOT@` and `@TARGET@` are filled in). */
export const SeedTool = Type.Object({
  command: Type.String({ minLength: 1, maxLength: 256 }),
  args: Type.Array(Type.String({ maxLength: 4096 }), { maxItems: 64 }),
  env: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Z][A-Z0-9_]{0,63}$' }), Type.String())),
});
export type SeedTool = Static<typeof SeedTool>;

/**
 * The instance's data comes from an etcd snapshot (`drover etcd restore`). Before its first start,
 * while `dataPath` does not exist, the agent fetches the snapshot from the coordinator in chunks
 * (`subjects.snapshotFetch`; only the node whose plan names it may), checks its size and SHA-256,
 * runs the first of `tools` it has (etcdutl, else etcdctl on etcd 3.4) into a scratch directory
 * beside `dataPath`, and moves the result into place. With `dataPath` there it does nothing, so a
 * restart or a re-sent plan never restores twice.
 */
export const PlanSeed = Type.Object({
  kind: Type.Literal('etcd-snapshot'),
  snapshotId: SnapshotId,
  sha256: Sha256Hex,
  size: Type.Integer({ minimum: 1, maximum: 64 * 1024 ** 3 }),
  dataPath: Type.String({ minLength: 2, maxLength: 4096, pattern: '^/', description: 'one of dataPaths' }),
  tools: Type.Array(SeedTool, { minItems: 1, maxItems: 4 }),
});
export type PlanSeed = Static<typeof PlanSeed>;

export const InstanceSpec = Type.Object({
  id: InstanceId,
  role: RoleName,
  epoch: Type.Integer({ minimum: 1, description: 'assignment epoch; bumped whenever the instance moves' }),
  checksum: Sha256Hex,
  simulated: Type.Boolean({ description: 'true when the process is a lab stand-in, not the real component' }),
  simulator: Type.Optional(Simulator),
  files: Type.Array(PlanFile),
  run: RunSpec,
  health: Type.Optional(HealthProbe),
  restart: RestartPolicy,
  commands: Type.Optional(Type.Record(Type.String({ pattern: '^[a-z0-9-]{1,64}$' }), DeclaredCommand)),
  ports: Type.Optional(Type.Array(Type.Integer({ minimum: 1, maximum: 65535 }))),
  certificates: Type.Optional(
    Type.Array(PlanCertificate, {
      maxItems: 32,
      description: 'certificates the agent obtains by CSR (and renews) before starting the instance',
    }),
  ),
  dataPaths: Type.Optional(
    Type.Array(NodePath, {
      maxItems: 64,
      description: 'files and directories the instance owns; deleted only by a purge',
    }),
  ),
  seed: Type.Optional(PlanSeed),
});
export type InstanceSpec = Static<typeof InstanceSpec>;

export const NodePlan = Type.Object(
  {
    v: Version,
    type: Type.Literal('plan'),
    nodeId: NodeId,
    generation: Type.Integer({ minimum: 0, description: 'per-node generation; rises with every change' }),
    coordinatorEpoch: Type.Integer({
      minimum: 1,
      description: 'bumped when a coordinator (re)starts as leader',
    }),
    checksum: Sha256Hex,
    issuedAt: IsoTime,
    instances: Type.Array(InstanceSpec),
    purge: Type.Optional(
      Type.Array(PlanPurge, {
        maxItems: 1024,
        description:
          'drover clean --purge: paths of removed instances to delete; ignored for instances still in the plan',
      }),
    ),
  },
  { $id: 'NodePlan' },
);
export type NodePlan = Static<typeof NodePlan>;

export const SignedPlan = Type.Object(
  {
    v: Version,
    type: Type.Literal('plan-push'),
    plan: NodePlan,
    signature: Type.Optional(
      Type.String({ description: 'base64 ed25519 signature over the canonical plan' }),
    ),
    keyId: Type.Optional(Type.String({ description: 'fingerprint of the signing key' })),
  },
  { $id: 'SignedPlan' },
);
export type SignedPlan = Static<typeof SignedPlan>;
