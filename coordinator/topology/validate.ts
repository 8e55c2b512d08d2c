import type { TSchema } from '@sinclair/typebox';
import { Value, type ValueError, ValueErrorType } from '@sinclair/typebox/value';
import { parseDuration } from '../../lib/duration.js';
import { TopologyError } from './errors.js';
import { type LocatedProblem, problem } from './path.js';
import { parseQuantity } from './quantity.js';
import { TopologySchema } from './schema.js';
import { checkSemantics } from './semantics.js';
import type { CustomRoleSpec, ProbeSpec, RepairPolicy, RoleSpec, SelectorTerm, Topology } from './types.js';

export const TOPOLOGY_DEFAULTS = Object.freeze({
  kubernetesVersion: 'v1.28.15',
  serviceCIDR: '10.0.0.0/24',
  clusterDNS: '10.0.0.10',
  clusterDomain: 'cluster.local',
  apiPort: 6443,
  certDir: '/etc/kubernetes/pki',
  logLevel: 2,
  probe: { period: 2000, timeout: 1000, initialDelay: 0, failureThreshold: 3, successThreshold: 1 },
  commandTimeout: 30_000,
  fileMode: 0o644,
});

const MAX_PROBLEMS = 20;

/** JSON pointer → segments, using the value to tell array indexes from map keys. */
function pointerSegments(pointer: string, root: unknown): Array<string | number> {
  const raw = pointer
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  const out: Array<string | number> = [];
  let cur: unknown = root;
  for (const s of raw) {
    if (Array.isArray(cur) && /^\d+$/.test(s)) {
      out.push(Number(s));
      cur = cur[Number(s)];
    } else {
      out.push(s);
      cur = cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[s] : undefined;
    }
  }
  return out;
}

function closest(word: string, options: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const o of options) {
    const d = editDistance(word.toLowerCase(), o.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = o;
    }
  }
  return bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0]!;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j]!;
      dp[j] = Math.min(dp[j]! + 1, dp[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length]!;
}

function describeSchemaError(e: ValueError, root: unknown): LocatedProblem {
  const segments = pointerSegments(e.path, root);
  const schema = e.schema as TSchema & { 'x-msg'?: string };
  if (e.type === ValueErrorType.ObjectAdditionalProperties) {
    const key = String(segments[segments.length - 1]);
    if (schema.patternProperties) {
      const keySchema = Object.keys(schema.patternProperties)[0];
      return problem(segments, `"${key}" is not a valid key here (must match ${keySchema})`);
    }
    const known = Object.keys(schema.properties ?? {});
    const guess = closest(key, known);
    return problem(
      segments,
      `unknown field${guess ? `; did you mean "${guess}"?` : ''} (allowed: ${known.join(', ')})`,
    );
  }
  if (e.type === ValueErrorType.ObjectRequiredProperty) return problem(segments, 'is required');
  if (schema['x-msg']) return problem(segments, schema['x-msg']);
  return problem(segments, e.message.charAt(0).toLowerCase() + e.message.slice(1));
}

function schemaProblems(value: unknown): LocatedProblem[] {
  const out: LocatedProblem[] = [];
  const seen = new Set<string>();
  for (const e of Value.Errors(TopologySchema, value)) {
    const p = describeSchemaError(e, value);
    if (seen.has(p.path)) continue;
    seen.add(p.path);
    out.push(p);
    if (out.length >= MAX_PROBLEMS) break;
  }
  return out;
}

// ------------------------------------------------------------------ normalization (input is schema-valid)

type Obj = Record<string, unknown>;
const ms = (v: unknown): number | undefined => (v === undefined ? undefined : parseDuration(v));
const defined = <T extends Obj>(o: T): T =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

function normalizeSelector(sel: Obj | undefined): Record<string, SelectorTerm> {
  const out: Record<string, SelectorTerm> = {};
  for (const [k, t] of Object.entries(sel ?? {})) {
    if (t !== null && typeof t === 'object') {
      const r = t as { op: SelectorTerm extends infer _ ? string : never; values?: unknown[] };
      out[k] = defined({ op: r.op, values: r.values?.map(String) }) as SelectorTerm;
    } else out[k] = String(t);
  }
  return out;
}

function normalizeRepair(r: Obj | undefined): RepairPolicy {
  if (!r) return {};
  const restart = r.restart as Obj | undefined;
  return defined({
    reassignAfter: ms(r.reassignAfter),
    maxReassignPerHour: r.maxReassignPerHour as number | undefined,
    autoReassign: r.autoReassign as boolean | undefined,
    restart: restart
      ? defined({
          policy: restart.policy as 'always' | 'on-failure' | 'never' | undefined,
          initialBackoff: ms(restart.initialBackoff),
          maxBackoff: ms(restart.maxBackoff),
          resetAfter: ms(restart.resetAfter),
          crashLoopThreshold: restart.crashLoopThreshold as number | undefined,
        })
      : undefined,
  });
}

function normalizeRole(r: Obj): RoleSpec {
  const pins = (r.pins as string[] | undefined) ?? [];
  const everywhere = r.everywhere === true;
  const res = (r.resources as Obj | undefined) ?? {};
  const memoryBytes = res.memoryBytes !== undefined ? (res.memoryBytes as number) : parseQuantity(res.memory);
  const spread = (r.spread as Obj | undefined) ?? {};
  return defined({
    replicas: everywhere ? undefined : ((r.replicas as number | undefined) ?? (pins.length || 1)),
    everywhere: everywhere ? (true as const) : undefined,
    nodeSelector: normalizeSelector(r.nodeSelector as Obj | undefined),
    resources: defined({ cpuCores: res.cpuCores as number | undefined, memoryBytes }),
    spread: defined({
      perNode: (spread.perNode as boolean | undefined) ?? true,
      acrossLabel: spread.acrossLabel as string | undefined,
    }),
    pins: [...pins],
    repair: normalizeRepair(r.repair as Obj | undefined),
    extraArgs: [...((r.extraArgs as string[] | undefined) ?? [])],
    env: { ...((r.env as Record<string, string> | undefined) ?? {}) },
  }) as RoleSpec;
}

function normalizePartitions(ps: Obj[] | undefined): Topology['cluster']['partitions'] {
  if (!ps) return undefined;
  return ps.map((p) =>
    defined({
      id: String(p.id),
      name: p.name as string | undefined,
      rangeStart: (p.rangeStart as string | undefined) ?? '',
      isRangeStartValid: (p.isRangeStartValid as boolean | undefined) ?? p.rangeStart !== undefined,
      rangeEnd: (p.rangeEnd as string | undefined) ?? '',
      isRangeEndValid: (p.isRangeEndValid as boolean | undefined) ?? p.rangeEnd !== undefined,
      replicas: (p.replicas as number | undefined) ?? 1,
    }),
  ) as Topology['cluster']['partitions'];
}

function fileMode(m: unknown): number {
  if (m === undefined) return TOPOLOGY_DEFAULTS.fileMode;
  return typeof m === 'string' ? Number.parseInt(m, 8) : (m as number);
}

function normalizeProbe(p: Obj | undefined): ProbeSpec | undefined {
  if (!p) return undefined;
  const d = TOPOLOGY_DEFAULTS.probe;
  return defined({
    kind: p.kind as ProbeSpec['kind'],
    host: p.host as string | undefined,
    port: p.port as number | undefined,
    path: (p.path as string | undefined) ?? (p.kind === 'http' || p.kind === 'https' ? '/' : undefined),
    insecure: p.insecure as boolean | undefined,
    command: p.command as string | undefined,
    args: p.args as string[] | undefined,
    period: ms(p.period) ?? d.period,
    timeout: ms(p.timeout) ?? d.timeout,
    initialDelay: ms(p.initialDelay) ?? d.initialDelay,
    failureThreshold: (p.failureThreshold as number | undefined) ?? d.failureThreshold,
    successThreshold: (p.successThreshold as number | undefined) ?? d.successThreshold,
  }) as ProbeSpec;
}

function normalizeCustom(c: Obj): CustomRoleSpec {
  const commands: CustomRoleSpec['commands'] = {};
  for (const [name, cmd] of Object.entries((c.commands as Record<string, Obj> | undefined) ?? {}))
    commands[name] = {
      command: cmd.command as string,
      args: [...((cmd.args as string[] | undefined) ?? [])],
      timeout: ms(cmd.timeout) ?? TOPOLOGY_DEFAULTS.commandTimeout,
    };
  return defined({
    description: c.description as string | undefined,
    command: c.command as string,
    args: [...((c.args as string[] | undefined) ?? [])],
    env: { ...((c.env as Record<string, string> | undefined) ?? {}) },
    cwd: c.cwd as string | undefined,
    files: ((c.files as Obj[] | undefined) ?? []).map((f) =>
      defined({
        path: f.path as string,
        mode: fileMode(f.mode),
        content: f.content as string,
        encoding: f.encoding as 'utf8' | 'base64' | undefined,
      }),
    ),
    health: normalizeProbe(c.health as Obj | undefined),
    ports: [...((c.ports as number[] | undefined) ?? [])],
    commands,
    dependsOn: [...((c.dependsOn as string[] | undefined) ?? [])],
    stopTimeout: ms(c.stopTimeout),
    reloadSignal: c.reloadSignal as string | undefined,
  }) as CustomRoleSpec;
}

function normalize(v: Obj): Topology {
  const cluster = v.cluster as Obj;
  const roles = v.roles as Record<string, Obj>;
  const api = cluster.apiEndpoint as Obj | undefined;
  const metadata = v.metadata as Obj;
  return {
    apiVersion: 'drover.dev/v1',
    kind: 'Topology',
    metadata: defined({
      name: metadata.name as string,
      labels: metadata.labels as Record<string, string> | undefined,
    }),
    cluster: defined({
      name: cluster.name as string,
      kubernetesVersion:
        (cluster.kubernetesVersion as string | undefined) ?? TOPOLOGY_DEFAULTS.kubernetesVersion,
      serviceCIDR: (cluster.serviceCIDR as string | undefined) ?? TOPOLOGY_DEFAULTS.serviceCIDR,
      podCIDR: cluster.podCIDR as string | undefined,
      clusterDNS: (cluster.clusterDNS as string | undefined) ?? TOPOLOGY_DEFAULTS.clusterDNS,
      clusterDomain: (cluster.clusterDomain as string | undefined) ?? TOPOLOGY_DEFAULTS.clusterDomain,
      binaries: { ...((cluster.binaries as Record<string, string> | undefined) ?? {}) },
      apiEndpoint: defined({
        mode:
          (api?.mode as Topology['cluster']['apiEndpoint']['mode'] | undefined) ??
          (Object.hasOwn(roles, 'load-balancer') ? 'haproxy' : 'direct'),
        address: api?.address as string | undefined,
        port: (api?.port as number | undefined) ?? TOPOLOGY_DEFAULTS.apiPort,
      }),
      certDir: (cluster.certDir as string | undefined) ?? TOPOLOGY_DEFAULTS.certDir,
      containerRuntimeEndpoint: cluster.containerRuntimeEndpoint as string | undefined,
      logLevel: (cluster.logLevel as number | undefined) ?? TOPOLOGY_DEFAULTS.logLevel,
      partitions: normalizePartitions(cluster.partitions as Obj[] | undefined),
      etcdSnapshots: cluster.etcdSnapshots
        ? defined({
            every: ms((cluster.etcdSnapshots as Obj).every),
            keep: (cluster.etcdSnapshots as Obj).keep as number | undefined,
            enabled: (cluster.etcdSnapshots as Obj).enabled as boolean | undefined,
          })
        : undefined,
    }) as Topology['cluster'],
    roles: Object.fromEntries(
      Object.entries(roles).map(([k, r]) => {
        const spec = normalizeRole(r);
        // partitioned API servers: their count is the partitions' sum unless given
        const parts = cluster.partitions as Obj[] | undefined;
        if (k === 'kube-apiserver' && parts && r.replicas === undefined && !spec.everywhere)
          spec.replicas = parts.reduce((n, p) => n + ((p.replicas as number | undefined) ?? 1), 0);
        return [k, spec];
      }),
    ),
    customRoles: Object.fromEntries(
      Object.entries((v.customRoles as Record<string, Obj> | undefined) ?? {}).map(([k, c]) => [
        k,
        normalizeCustom(c),
      ]),
    ),
  };
}

/**
 * Checks a parsed topology document against the schema and the semantic rules, and returns it
 * normalized (defaults filled in, `memory: 4Gi` → `memoryBytes`, durations → ms). Throws
 * `TopologyError` (DROVER_ERR_TOPOLOGY_INVALID) whose `path` names the first bad field; all found
 * problems (up to 20) are in `problems`. Pure: the input is not modified.
 */
export function validateTopology(value: unknown, source?: string): Topology {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new TopologyError(
      [problem([], 'a topology must be a YAML or JSON object (apiVersion: drover.dev/v1, kind: Topology)')],
      source,
    );
  const schema = schemaProblems(value);
  if (schema.length > 0) throw new TopologyError(schema, source);
  const topology = normalize(structuredClone(value) as Obj);
  const sem = checkSemantics(topology, value as Obj).slice(0, MAX_PROBLEMS);
  if (sem.length > 0) throw new TopologyError(sem, source);
  return topology;
}
