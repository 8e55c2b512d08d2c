import { rolePorts } from '../catalog/index.js';
import type { Assignment, NodeRecord, Unplaced } from '../model.js';
import { describeSelector, isBuiltinRole, matchesSelector, type RoleSpec } from '../topology/index.js';
import { describeResources, noNodeReason, type Rejection, rejectionPhrase } from './explain.js';
import type { PlacementInput, PlacementResult, RefusedMove } from './types.js';

const EPOCH_ZERO = '1970-01-01T00:00:00.000Z';

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const ordinalOf = (id: string) => Number(id.slice(id.lastIndexOf('#') + 1));
const byRoleOrdinal = (a: Assignment, b: Assignment) => cmp(a.role, b.role) || a.ordinal - b.ordinal;

/** Who holds what on each node: role counts, ports, totals. */
class Occupancy {
  private readonly roles = new Map<string, Map<string, number>>();
  private readonly ports = new Map<string, Map<number, string>>();
  private readonly totals = new Map<string, number>();
  private readonly held = new Map<string, Assignment>();
  private readonly byNode = new Map<string, Set<string>>();

  constructor(private readonly portsOf: (role: string) => number[]) {}

  add(a: Assignment): void {
    if (this.held.has(a.instanceId)) this.remove(a.instanceId);
    this.held.set(a.instanceId, a);
    const ids = this.byNode.get(a.nodeId) ?? new Set<string>();
    this.byNode.set(a.nodeId, ids);
    ids.add(a.instanceId);
    const r = this.roles.get(a.nodeId) ?? new Map<string, number>();
    this.roles.set(a.nodeId, r);
    r.set(a.role, (r.get(a.role) ?? 0) + 1);
    this.totals.set(a.nodeId, (this.totals.get(a.nodeId) ?? 0) + 1);
    const p = this.ports.get(a.nodeId) ?? new Map<number, string>();
    this.ports.set(a.nodeId, p);
    for (const port of this.portsOf(a.role)) if (!p.has(port)) p.set(port, a.instanceId);
  }

  remove(instanceId: string): void {
    const a = this.held.get(instanceId);
    if (!a) return;
    this.held.delete(instanceId);
    this.byNode.get(a.nodeId)!.delete(instanceId);
    const r = this.roles.get(a.nodeId)!;
    r.set(a.role, r.get(a.role)! - 1);
    this.totals.set(a.nodeId, this.totals.get(a.nodeId)! - 1);
    const p = this.ports.get(a.nodeId)!;
    for (const port of this.portsOf(a.role)) if (p.get(port) === instanceId) p.delete(port);
    // another instance on the node may use the same port (a conflict kept for stability)
    for (const otherId of this.byNode.get(a.nodeId)!) {
      const other = this.held.get(otherId)!;
      for (const port of this.portsOf(other.role)) if (!p.has(port)) p.set(port, other.instanceId);
    }
  }

  count(nodeId: string, role: string): number {
    return this.roles.get(nodeId)?.get(role) ?? 0;
  }
  total(nodeId: string): number {
    return this.totals.get(nodeId) ?? 0;
  }
  portHolder(nodeId: string, port: number): string | undefined {
    return this.ports.get(nodeId)?.get(port);
  }
  has(instanceId: string): boolean {
    return this.held.has(instanceId);
  }
}

type Verdict = Rejection | { kind: 'static' } | undefined;

/**
 * Computes assignments: which node runs each role instance (`<role>#<ordinal>`). Pure and
 * deterministic: the same input (in any order) gives the same result, and running it again on
 * its own output changes nothing.
 *
 * - Stable: a current assignment stays while its node exists and is not Removed, still matches
 *   the role's pins, selector and resource minimums, holds no second instance of a one-per-node
 *   role, and is not evicted. Suspect, Unreachable and cordoned nodes keep what they run; only
 *   `evictNodes`/`evictInstances` move it.
 * - New instances and moves go only to Ready, approved, uncordoned, non-evicted nodes that match
 *   (pins instead of selector and resources for pinned ordinals), respect one-per-node spread,
 *   have the role's ports free, and carry the `spread.acrossLabel` label.
 * - Among candidates: the label value with the fewest instances of the role (acrossLabel), then
 *   the fewest instances of the role, then the node already running the most instances (so spare
 *   nodes stay empty for repair to use), then node id.
 * - A move bumps `epoch` and sets `previousNodeId`. Scale-down removes the highest ordinals.
 * - An instance that must move but has nowhere to go keeps its assignment if its node still
 *   exists; it is reported in `unplaced` as `cannot move off <node>`.
 */
export function place(input: PlacementInput): PlacementResult {
  const t = input.topology;
  const now = input.now ?? EPOCH_ZERO;
  const evictNodes = input.evictNodes ?? new Set<string>();
  const evictInstances = input.evictInstances ?? new Set<string>();
  const cluster = t.metadata.name;
  const nodes = [...input.nodes].sort((a, b) => cmp(a.id, b.id));
  const nodeById = new Map(nodes.map((n) => [n.id, n]));
  const roles = Object.keys(t.roles)
    .filter((r) => isBuiltinRole(r) || Object.hasOwn(t.customRoles, r))
    .sort(cmp);
  const roleSet = new Set(roles);
  const portCache = new Map<string, number[]>();
  const portsOf = (role: string) => {
    let p = portCache.get(role);
    if (!p) {
      p = roleSet.has(role) ? rolePorts(role, t) : [];
      portCache.set(role, p);
    }
    return p;
  };
  const occ = new Occupancy(portsOf);
  const final = new Map<string, Assignment>();
  /** instances that must move; `conflict`: it shares a node with its own role or a port, so it cannot stay */
  const pending = new Map<string, { from: Assignment; why: string; conflict?: boolean }>();
  const added: Assignment[] = [];
  const moved: Array<{ from: Assignment; to: Assignment }> = [];
  const removed: Assignment[] = [];
  const unplaced: Unplaced[] = [];
  const refusedMoves: RefusedMove[] = [];

  const pinNode = (pin: string): NodeRecord | undefined =>
    nodeById.get(pin) ?? nodes.find((n) => n.hostname === pin);
  const pinOf = (spec: RoleSpec, ordinal: number | undefined): string | undefined =>
    ordinal === undefined || spec.everywhere ? undefined : spec.pins[ordinal];
  const resourcesOk = (n: NodeRecord, spec: RoleSpec) =>
    (spec.resources.cpuCores === undefined || n.facts.cpu.cores >= spec.resources.cpuCores) &&
    (spec.resources.memoryBytes === undefined || n.facts.memory.totalBytes >= spec.resources.memoryBytes);

  /** An everywhere role with pins runs on exactly those nodes (ids, by node id then hostname). */
  const pinSets = new Map<RoleSpec, Set<string>>();
  const pinnedSet = (spec: RoleSpec): Set<string> => {
    let set = pinSets.get(spec);
    if (!set) {
      set = new Set(spec.pins.map((p) => pinNode(p)?.id).filter((id): id is string => id !== undefined));
      pinSets.set(spec, set);
    }
    return set;
  };

  /** Why `n` does not fit `role` at all (pins, selector, resources), or undefined. */
  function staticMismatch(spec: RoleSpec, ordinal: number | undefined, n: NodeRecord): string | undefined {
    const pin = pinOf(spec, ordinal);
    if (pin !== undefined) return pinNode(pin)?.id === n.id ? undefined : `pinned to ${pin}`;
    if (spec.everywhere && spec.pins.length > 0 && !pinnedSet(spec).has(n.id))
      return `${n.id} is not one of the role's pinned nodes`;
    if (!matchesSelector(n.labels, spec.nodeSelector))
      return `${n.id} does not match ${describeSelector(spec.nodeSelector)}`;
    if (!resourcesOk(n, spec)) return `${n.id} has less than ${describeResources(spec)}`;
    return undefined;
  }

  /** Can `n` take a new instance of `role` now? */
  function verdict(role: string, spec: RoleSpec, ordinal: number | undefined, n: NodeRecord): Verdict {
    if (staticMismatch(spec, ordinal, n)) return { kind: 'static' };
    if (!n.approved) return { kind: 'unapproved' };
    if (n.state !== 'Ready') return { kind: 'state', state: n.state };
    if (n.cordoned) return { kind: 'cordoned' };
    if (evictNodes.has(n.id)) return { kind: 'evicted' };
    if (spec.spread.perNode && occ.count(n.id, role) > 0) return { kind: 'spread', role };
    for (const port of portsOf(role)) {
      const by = occ.portHolder(n.id, port);
      if (by) return { kind: 'port', port, by };
    }
    const label = spec.spread.acrossLabel;
    if (label !== undefined && !Object.hasOwn(n.labels, label)) return { kind: 'label', label };
    return undefined;
  }

  /** The best candidate for a new instance, or the reason there is none. */
  function choose(
    role: string,
    spec: RoleSpec,
    ordinal: number,
    exclude?: string,
  ): { node: NodeRecord } | { reason: string } {
    const id = `${role}#${ordinal}`;
    const pin = pinOf(spec, ordinal);
    if (pin !== undefined) {
      const n = pinNode(pin);
      if (!n) {
        const where = input.elsewhere?.(pin);
        return { reason: `${id}: pinned to node ${pin}, which is ${where ?? 'not known'}` };
      }
      const v: Verdict = n.id === exclude ? { kind: 'evicted' } : verdict(role, spec, ordinal, n);
      return v
        ? { reason: `${id}: pinned to node ${n.id}, which ${rejectionPhrase(v as Rejection)}` }
        : { node: n };
    }
    const rejected: Array<{ node: NodeRecord; why: Rejection }> = [];
    let matching = 0;
    const candidates: NodeRecord[] = [];
    for (const n of nodes) {
      let v = verdict(role, spec, ordinal, n);
      if (!v && n.id === exclude) v = { kind: 'evicted' };
      if (v?.kind === 'static') continue;
      matching++;
      if (v) rejected.push({ node: n, why: v });
      else candidates.push(n);
    }
    if (candidates.length === 0) return { reason: noNodeReason(id, spec, matching, rejected) };
    const label = spec.spread.acrossLabel;
    const perValue = new Map<string, number>();
    if (label !== undefined)
      for (const a of final.values())
        if (a.role === role) {
          const v = nodeById.get(a.nodeId)?.labels[label];
          if (v !== undefined) perValue.set(v, (perValue.get(v) ?? 0) + 1);
        }
    const key = (n: NodeRecord): [number, number, number, string] => [
      label !== undefined ? (perValue.get(n.labels[label]!) ?? 0) : 0,
      occ.count(n.id, role),
      -occ.total(n.id),
      n.id,
    ];
    const best = candidates
      .map((n) => ({ n, k: key(n) }))
      .sort((a, b) => a.k[0] - b.k[0] || a.k[1] - b.k[1] || a.k[2] - b.k[2] || cmp(a.k[3], b.k[3]))[0]!.n;
    return { node: best };
  }

  function assignTo(role: string, ordinal: number, nodeId: string, from?: Assignment): Assignment {
    const to: Assignment = {
      instanceId: `${role}#${ordinal}`,
      role,
      ordinal,
      nodeId,
      epoch: from ? from.epoch + 1 : 1,
      cluster,
      since: now,
    };
    if (from) to.previousNodeId = from.nodeId;
    if (from) {
      occ.remove(from.instanceId);
      moved.push({ from, to });
    } else added.push(to);
    pending.delete(to.instanceId);
    final.set(to.instanceId, to);
    occ.add(to);
    return to;
  }

  // 1. Keep what may stay; collect what must move. Duplicates keep the newest epoch.
  const current = [...input.current].sort(
    (a, b) => byRoleOrdinal(a, b) || b.epoch - a.epoch || cmp(a.nodeId, b.nodeId) || cmp(a.since, b.since),
  );
  const seen = new Set<string>();
  const keptOn = new Set<string>(); // `${nodeId}\u0000${role}` of kept instances
  const keptPorts = new Map<string, string>(); // `${nodeId}\u0000${port}` → kept instance holding it
  const keep = (a: Assignment) => {
    final.set(a.instanceId, a);
    occ.add(a);
    keptOn.add(`${a.nodeId}\u0000${a.role}`);
    for (const port of portsOf(a.role)) keptPorts.set(`${a.nodeId}\u0000${port}`, a.instanceId);
  };
  for (const a of current) {
    const id = a.instanceId;
    const spec = t.roles[a.role];
    if (id !== `${a.role}#${a.ordinal}` || seen.has(id) || !spec || !roleSet.has(a.role)) {
      removed.push(a);
      continue;
    }
    seen.add(id);
    if (!spec.everywhere && a.ordinal >= spec.replicas!) {
      removed.push(a);
      continue;
    }
    const n = nodeById.get(a.nodeId);
    let why: string | undefined;
    if (!n) why = `node ${a.nodeId} is not known`;
    else if (n.state === 'Removed') why = `node ${a.nodeId} is Removed`;
    else why = staticMismatch(spec, a.ordinal, n);
    if (!why && n && evictNodes.has(n.id)) why = `node ${n.id} is being evicted`;
    if (!why && evictInstances.has(id)) why = `${id} is being evicted`;
    let conflict = false;
    if (!why && n && keptOn.has(`${n.id}\u0000${a.role}`) && (spec.spread.perNode || spec.everywhere)) {
      why = `another ${a.role} instance already runs on ${n.id}`;
      conflict = true;
    }
    if (!why && n)
      for (const port of portsOf(a.role)) {
        const by = keptPorts.get(`${n.id}\u0000${port}`);
        if (by) {
          why = `port ${port} on ${n.id} is taken by ${by}`;
          conflict = true;
          break;
        }
      }
    if (spec.everywhere) {
      // one per matching node: an instance whose node no longer qualifies goes, it does not move
      if (why) removed.push(a);
      else keep(a);
      continue;
    }
    if (!why) keep(a);
    else {
      pending.set(id, { from: a, why, conflict });
      // Until it has somewhere to go it still occupies its node, so nothing else lands on top of it.
      if (n && n.state !== 'Removed' && !conflict) occ.add(a);
    }
  }

  // 2. Operator moves first: they are explicit.
  for (const [id, target] of [...(input.moveTo ?? new Map<string, string>())].sort(([a], [b]) => cmp(a, b))) {
    const refuse = (reason: string) =>
      refusedMoves.push({ instanceId: id, nodeId: target, reason: `${id}: ${reason}` });
    const m = /^(.+)#(\d+)$/.exec(id);
    const role = m?.[1] ?? '';
    const ordinal = Number(m?.[2] ?? -1);
    const spec = t.roles[role];
    if (!m || !spec || !roleSet.has(role)) {
      refuse(`no role ${role || id} in the topology`);
      continue;
    }
    if (spec.everywhere) {
      refuse(`${role} runs on every matching node; its instances do not move`);
      continue;
    }
    if (ordinal >= spec.replicas!) {
      refuse(`not an instance of this topology (replicas: ${spec.replicas})`);
      continue;
    }
    const pin = pinOf(spec, ordinal);
    if (pin !== undefined) {
      refuse(`is pinned to ${pin}`);
      continue;
    }
    const cur = final.get(id) ?? pending.get(id)?.from;
    if (cur && cur.nodeId === target && final.has(id)) continue; // already there
    const n = nodeById.get(target);
    if (!n) {
      refuse(`node ${target} is not known`);
      continue;
    }
    const heldBefore = cur ? occ.has(cur.instanceId) : false;
    if (cur) occ.remove(cur.instanceId);
    const v = verdict(role, spec, ordinal, n);
    if (v) {
      if (cur && heldBefore) occ.add(cur);
      const sm = staticMismatch(spec, ordinal, n);
      refuse(`cannot move to ${n.id}: ${v.kind === 'static' ? sm : `${n.id} ${rejectionPhrase(v)}`}`);
      continue;
    }
    final.delete(id);
    assignTo(role, ordinal, n.id, cur);
  }

  const explained = new Set<string>();
  // 3. Move what must move, repeating while moves free room for others, then give up on the rest.
  for (let progress = true; progress && pending.size > 0; ) {
    progress = false;
    for (const [id, p] of [...pending].sort(([a], [b]) => cmp(a, b))) {
      const spec = t.roles[p.from.role]!;
      occ.remove(id);
      const c = choose(p.from.role, spec, p.from.ordinal, p.from.nodeId);
      if ('node' in c) {
        assignTo(p.from.role, p.from.ordinal, c.node.id, p.from);
        progress = true;
      } else {
        const n = nodeById.get(p.from.nodeId);
        if (n && n.state !== 'Removed' && !p.conflict) occ.add(p.from);
      }
    }
  }
  for (const [id, p] of [...pending].sort(([a], [b]) => cmp(a, b))) {
    const spec = t.roles[p.from.role]!;
    occ.remove(id);
    const c = choose(p.from.role, spec, p.from.ordinal, p.from.nodeId) as { reason: string };
    const reason = c.reason.slice(id.length + 2);
    const n = nodeById.get(p.from.nodeId);
    // Staying is only possible where it clashes with nothing that stays too.
    const clash =
      n !== undefined &&
      ((spec.spread.perNode && occ.count(n.id, p.from.role) > 0) ||
        portsOf(p.from.role).some((port) => occ.portHolder(n.id, port) !== undefined));
    if (n && n.state !== 'Removed' && !p.conflict && !clash) {
      final.set(id, p.from);
      occ.add(p.from);
      unplaced.push({
        instanceId: id,
        role: p.from.role,
        reason: `${id}: cannot move off ${n.id} (${p.why}): ${reason}`,
      });
    } else {
      removed.push(p.from);
      unplaced.push({ instanceId: id, role: p.from.role, reason: `${id}: ${p.why}; ${reason}` });
      explained.add(id);
    }
    pending.delete(id);
  }

  // 4. New instances.
  for (const role of roles) {
    const spec = t.roles[role]!;
    if (spec.everywhere) {
      const used = new Set([...final.values()].filter((a) => a.role === role).map((a) => a.ordinal));
      let next = 0;
      for (const n of nodes) {
        if (occ.count(n.id, role) > 0 || verdict(role, spec, undefined, n)) continue;
        while (used.has(next)) next++;
        used.add(next);
        assignTo(role, next, n.id);
      }
      continue;
    }
    for (let ordinal = 0; ordinal < spec.replicas!; ordinal++) {
      if (final.has(`${role}#${ordinal}`) || explained.has(`${role}#${ordinal}`)) continue;
      const c = choose(role, spec, ordinal);
      if ('node' in c) assignTo(role, ordinal, c.node.id);
      else unplaced.push({ instanceId: `${role}#${ordinal}`, role, reason: c.reason });
    }
  }

  return {
    assignments: [...final.values()].sort(byRoleOrdinal),
    unplaced: unplaced.sort(
      (a, b) => cmp(a.role, b.role) || ordinalOf(a.instanceId) - ordinalOf(b.instanceId),
    ),
    added: added.sort(byRoleOrdinal),
    moved: moved.sort((a, b) => byRoleOrdinal(a.to, b.to)),
    removed: removed.sort((a, b) => byRoleOrdinal(a, b) || cmp(a.nodeId, b.nodeId)),
    refusedMoves,
  };
}
