/**
 * The rules a schema cannot express: role names that exist, dependencies present, replicas against
 * pins, the API-endpoint mode against the roles, addresses that parse, custom roles that do not
 * shadow built-ins, and placeholders that resolve.
 */
import { isIP } from 'node:net';
import { DroverError } from '../../protocol/index.js';
import { validatePartitions } from '../arktos/index.js';
import { BUILTIN_ROLE_INFO, BUILTIN_ROLES, isBuiltinRole } from './builtins.js';
import { type LocatedProblem, problem } from './path.js';
import { parseQuantity } from './quantity.js';
import { ROLE_NAME_PATTERN } from './schema.js';
import { selectorRequirements } from './selector.js';
import { checkPlaceholders, placeholders } from './template.js';
import type { CustomRoleSpec, Topology } from './types.js';

type Obj = Record<string, unknown>;
const ROLE_NAME = new RegExp(ROLE_NAME_PATTERN);

/** true when the role will run at least one instance */
const active = (t: Topology, role: string): boolean => {
  const r = t.roles[role];
  return !!r && (r.everywhere === true || (r.replicas ?? 0) > 0);
};

function parseCidr(cidr: string): { ip: string; prefix: number; v: 4 | 6 } | undefined {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(cidr.trim());
  if (!m) return undefined;
  const v = isIP(m[1]!);
  const prefix = Number(m[2]);
  if (v === 0 || prefix > (v === 4 ? 32 : 128)) return undefined;
  return { ip: m[1]!, prefix, v: v as 4 | 6 };
}

const ipv4 = (ip: string): number => ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);

function ipv4InCidr(ip: string, cidr: { ip: string; prefix: number }): boolean {
  const size = 2 ** (32 - cidr.prefix);
  const base = Math.floor(ipv4(cidr.ip) / size) * size;
  const n = ipv4(ip);
  return n >= base && n < base + size;
}

const HOST = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/;

function checkCluster(t: Topology, out: LocatedProblem[]): void {
  const c = t.cluster;
  const svc = parseCidr(c.serviceCIDR);
  if (!svc)
    out.push(problem(['cluster', 'serviceCIDR'], `"${c.serviceCIDR}" is not a CIDR such as 10.96.0.0/12`));
  if (c.podCIDR !== undefined && !parseCidr(c.podCIDR))
    out.push(problem(['cluster', 'podCIDR'], `"${c.podCIDR}" is not a CIDR such as 10.244.0.0/16`));
  const dnsV = isIP(c.clusterDNS);
  if (dnsV === 0) out.push(problem(['cluster', 'clusterDNS'], `"${c.clusterDNS}" is not an IP address`));
  else if (svc && svc.v === 4 && dnsV === 4 && !ipv4InCidr(c.clusterDNS, svc))
    out.push(
      problem(['cluster', 'clusterDNS'], `${c.clusterDNS} is not inside serviceCIDR ${c.serviceCIDR}`),
    );
  for (const role of Object.keys(c.binaries))
    if (!isBuiltinRole(role))
      out.push(
        problem(
          ['cluster', 'binaries', role],
          `unknown built-in role; binaries can be set for ${BUILTIN_ROLES.join(', ')} (custom roles name their command)`,
        ),
      );
  const addr = c.apiEndpoint.address;
  if (addr !== undefined && isIP(addr) === 0 && !HOST.test(addr))
    out.push(problem(['cluster', 'apiEndpoint', 'address'], `"${addr}" is not an IP address or host name`));
  const every = c.etcdSnapshots?.every;
  if (every !== undefined && every < 60_000)
    out.push(
      problem(
        ['cluster', 'etcdSnapshots', 'every'],
        `${every} ms is too often: etcd snapshots are taken at most once a minute (e.g. 6h, 30m)`,
      ),
    );
}

function checkRoles(t: Topology, raw: Obj, out: LocatedProblem[]): void {
  const rawRoles = raw.roles as Record<string, Obj>;
  for (const [name, r] of Object.entries(t.roles)) {
    const at = (...p: Array<string | number>) => ['roles', name, ...p];
    const rr = rawRoles[name]!;
    if (!ROLE_NAME.test(name)) {
      out.push(
        problem(at(), 'is not a valid role name: lower-case letters, digits and "-", at most 63 characters'),
      );
      continue;
    }
    if (!isBuiltinRole(name) && !Object.hasOwn(t.customRoles, name)) {
      out.push(
        problem(
          at(),
          `unknown role "${name}": built-in roles are ${BUILTIN_ROLES.join(', ')}; define other roles under customRoles`,
        ),
      );
    }
    if (rr.everywhere === true && rr.replicas !== undefined)
      out.push(problem(at('everywhere'), 'cannot be combined with replicas; use one or the other'));
    if (name === 'etcd' && r.everywhere)
      out.push(problem(at('everywhere'), 'etcd needs a fixed member count; use replicas (3 or 5)'));
    if (r.pins.length > 0) {
      // with everywhere, pins are the nodes it runs on (one instance each), not per-ordinal pins
      if (!r.everywhere && r.pins.length > r.replicas!)
        out.push(
          problem(
            at('pins'),
            `${r.pins.length} pins but replicas is ${r.replicas}; pin at most one node per instance`,
          ),
        );
      const seen = new Map<string, number>();
      r.pins.forEach((p, i) => {
        if (seen.has(p))
          out.push(
            problem(
              at('pins', i),
              `node ${p} is pinned twice (also pins[${seen.get(p)}]); a node runs one instance of a role`,
            ),
          );
        else seen.set(p, i);
      });
    }
    const res = (rr.resources as Obj | undefined) ?? {};
    if (res.memory !== undefined && res.memoryBytes !== undefined)
      out.push(problem(at('resources', 'memory'), 'give memory or memoryBytes, not both'));
    else if (res.memory !== undefined && parseQuantity(res.memory) === undefined)
      out.push(
        problem(at('resources', 'memory'), `"${res.memory}" is not a quantity such as 512Mi, 4Gi or 8G`),
      );
    for (const req of selectorRequirements(r.nodeSelector)) {
      const p = at('nodeSelector', req.key);
      if ((req.op === 'In' || req.op === 'NotIn') && req.values.length === 0)
        out.push(problem(p, `${req.op} needs at least one value`));
      if ((req.op === 'Exists' || req.op === 'DoesNotExist') && req.values.length > 0)
        out.push(problem(p, `${req.op} takes no values`));
      if (
        (req.op === 'Gt' || req.op === 'Lt') &&
        (req.values.length !== 1 || !/^-?\d+$/.test(req.values[0]!))
      )
        out.push(problem(p, `${req.op} needs exactly one integer value`));
    }
    const rs = r.repair.restart;
    if (rs?.initialBackoff !== undefined && rs.maxBackoff !== undefined && rs.initialBackoff > rs.maxBackoff)
      out.push(problem(at('repair', 'restart', 'maxBackoff'), 'must be >= initialBackoff'));
    if (isBuiltinRole(name) && active(t, name))
      for (const need of BUILTIN_ROLE_INFO[name].needs)
        if (!active(t, need))
          out.push(problem(at(), `${name} needs role ${need}: add roles.${need} with replicas >= 1`));
  }
}

/** Roles that talk to the API endpoint, and custom roles whose placeholders use it. */
function apiUsers(t: Topology): string[] {
  const users = Object.keys(t.roles).filter(
    (r) => active(t, r) && isBuiltinRole(r) && BUILTIN_ROLE_INFO[r].usesApiEndpoint,
  );
  for (const [name, c] of Object.entries(t.customRoles))
    if (
      active(t, name) &&
      customTexts(c).some(([, s]) => placeholders(s).some((p) => p.name.startsWith('api.')))
    )
      users.push(name);
  return users;
}

function checkApiEndpoint(t: Topology, out: LocatedProblem[]): void {
  const users = apiUsers(t);
  if (users.length === 0) return;
  const ep = t.cluster.apiEndpoint;
  const why = `(${users.slice(0, 3).join(', ')}${users.length > 3 ? ', …' : ''} use the API endpoint)`;
  if (ep.mode === 'haproxy') {
    if (!active(t, 'load-balancer'))
      out.push(
        problem(
          ['cluster', 'apiEndpoint', 'mode'],
          `haproxy needs a load-balancer role: add roles.load-balancer ${why}`,
        ),
      );
  } else if (ep.mode === 'external') {
    if (ep.address === undefined)
      out.push(problem(['cluster', 'apiEndpoint', 'address'], `is required when mode is external ${why}`));
  } else {
    const api = t.roles['kube-apiserver'];
    if (!api || !active(t, 'kube-apiserver'))
      out.push(
        problem(
          ['cluster', 'apiEndpoint', 'mode'],
          `direct needs exactly one kube-apiserver: add roles.kube-apiserver ${why}`,
        ),
      );
    else if (api.everywhere || api.replicas !== 1)
      out.push(
        problem(
          ['roles', 'kube-apiserver', api.everywhere ? 'everywhere' : 'replicas'],
          `must be replicas: 1 when cluster.apiEndpoint.mode is direct (got ${api.everywhere ? 'everywhere' : api.replicas}); use mode haproxy or external for several API servers`,
        ),
      );
  }
}

/** Every string of a custom role that may hold placeholders, with its path. */
export function customTexts(c: CustomRoleSpec): Array<[Array<string | number>, string]> {
  const out: Array<[Array<string | number>, string]> = [[['command'], c.command]];
  c.args.forEach((a, i) => {
    out.push([['args', i], a]);
  });
  for (const [k, v] of Object.entries(c.env)) out.push([['env', k], v]);
  if (c.cwd) out.push([['cwd'], c.cwd]);
  c.files.forEach((f, i) => {
    out.push([['files', i, 'path'], f.path]);
    if (f.encoding !== 'base64') out.push([['files', i, 'content'], f.content]);
  });
  if (c.health) {
    if (c.health.host) out.push([['health', 'host'], c.health.host]);
    if (c.health.path) out.push([['health', 'path'], c.health.path]);
    if (c.health.command) out.push([['health', 'command'], c.health.command]);
    c.health.args?.forEach((a, i) => {
      out.push([['health', 'args', i], a]);
    });
  }
  for (const [name, cmd] of Object.entries(c.commands)) {
    out.push([['commands', name, 'command'], cmd.command]);
    cmd.args.forEach((a, i) => {
      out.push([['commands', name, 'args', i], a]);
    });
  }
  return out;
}

function checkCustomRoles(t: Topology, out: LocatedProblem[]): void {
  const known = new Set<string>([...Object.keys(t.roles), ...Object.keys(t.customRoles)]);
  for (const [name, c] of Object.entries(t.customRoles)) {
    const at = (...p: Array<string | number>) => ['customRoles', name, ...p];
    if (!ROLE_NAME.test(name)) {
      out.push(
        problem(at(), 'is not a valid role name: lower-case letters, digits and "-", at most 63 characters'),
      );
      continue;
    }
    if (isBuiltinRole(name)) {
      out.push(problem(at(), `conflicts with the built-in role ${name}; choose another name`));
      continue;
    }
    c.dependsOn.forEach((d, i) => {
      if (d === name) out.push(problem(at('dependsOn', i), 'a role cannot depend on itself'));
      else if (!isBuiltinRole(d) && !Object.hasOwn(t.customRoles, d))
        out.push(problem(at('dependsOn', i), `unknown role "${d}"`));
      else if (!Object.hasOwn(t.roles, d)) out.push(problem(at('dependsOn', i), `role ${d} is not in roles`));
    });
    const paths = new Map<string, number>();
    c.files.forEach((f, i) => {
      if (f.path.split('/').includes('..'))
        out.push(problem(at('files', i, 'path'), 'must not contain ".."'));
      if (paths.has(f.path))
        out.push(problem(at('files', i, 'path'), `duplicate of files[${paths.get(f.path)}].path`));
      paths.set(f.path, i);
      if (f.encoding === 'base64' && !/^[A-Za-z0-9+/\s]*={0,2}\s*$/.test(f.content))
        out.push(problem(at('files', i, 'content'), 'is not base64'));
    });
    for (const [p, text] of customTexts(c)) {
      const bad = checkPlaceholders(text, known);
      if (bad) out.push(problem(at(...p), bad));
    }
    const h = c.health;
    if (h) {
      if ((h.kind === 'http' || h.kind === 'https' || h.kind === 'tcp') && h.port === undefined)
        out.push(problem(at('health', 'port'), `is required for a ${h.kind} probe`));
      if (h.kind === 'exec' && h.command === undefined)
        out.push(problem(at('health', 'command'), 'is required for an exec probe'));
      if (h.timeout > h.period) out.push(problem(at('health', 'timeout'), 'must not be longer than period'));
    }
    const ports = new Set<number>();
    c.ports.forEach((p, i) => {
      if (ports.has(p)) out.push(problem(at('ports', i), `port ${p} is listed twice`));
      ports.add(p);
    });
  }
}

/**
 * Arktos partitions must tile the tenant space (arktos/validatePartitions), and the API servers
 * must be exactly as many as the partitions' replicas add up to.
 */
function checkPartitions(t: Topology, out: LocatedProblem[]): void {
  const parts = t.cluster.partitions;
  if (!parts) return;
  const at = ['cluster', 'partitions'];
  try {
    validatePartitions(parts);
  } catch (err) {
    if (!(err instanceof DroverError)) throw err;
    const field = String(err.details?.field ?? '');
    const m = /^partitions\[(\d+)\](?: \([^)]*\))?(?:\.(\w+))?$/.exec(field);
    if (m) {
      const prefix = /^partitions\[\d+\](?: \([^)]*\))?(?:\.\w+)? ?/.exec(err.message)?.[0] ?? '';
      out.push(
        problem(
          [...at, Number(m[1]), ...(m[2] ? [m[2]] : [])],
          err.message.slice(prefix.length) || err.message,
        ),
      );
    } else out.push(problem(at, err.message));
    return;
  }
  const api = t.roles['kube-apiserver'];
  const sum = parts.reduce((n, p) => n + p.replicas, 0);
  if (!api) out.push(problem(at, 'partitions split the kube-apiserver instances: add roles.kube-apiserver'));
  else if (api.everywhere)
    out.push(
      problem(
        ['roles', 'kube-apiserver', 'everywhere'],
        `cannot be used with cluster.partitions; use replicas: ${sum}`,
      ),
    );
  else if (api.replicas !== sum)
    out.push(
      problem(
        ['roles', 'kube-apiserver', 'replicas'],
        `is ${api.replicas} but cluster.partitions add up to ${sum} API servers; make them equal (or leave replicas out)`,
      ),
    );
}

export function checkSemantics(t: Topology, raw: Obj): LocatedProblem[] {
  const out: LocatedProblem[] = [];
  checkCluster(t, out);
  checkPartitions(t, out);
  checkRoles(t, raw, out);
  checkCustomRoles(t, out);
  if (out.length === 0) checkApiEndpoint(t, out);
  return out;
}
