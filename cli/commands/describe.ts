import type { Event } from '../../protocol/index.js';
import type { InstanceView, NodeDetail, RoleView } from '../../protocol/rest/schemas.js';
import { str } from '../args.js';
import { type CommandContext, printStructured } from '../context.js';
import { usage } from '../errors.js';
import { age, formatTable } from '../table.js';
import { nodeStatus, resourceKind } from './get.js';

function field(label: string, value: string | number): string {
  return `${`${label}:`.padEnd(16)}${value}\n`;
}

function indent(text: string, by = '  '): string {
  return text
    .split('\n')
    .map((l) => (l ? by + l : l))
    .join('\n');
}

function instancesTable(items: InstanceView[], withNode: boolean): string {
  if (!items.length) return '  <none>\n';
  const header = ['INSTANCE', ...(withNode ? ['NODE'] : []), 'EPOCH', 'PHASE', 'HEALTH', 'RESTARTS', 'NOTE'];
  const rows = items.map((i) => [
    i.id,
    ...(withNode ? [i.nodeId ?? '-'] : []),
    i.epoch,
    i.phase,
    i.health,
    i.restarts,
    [
      i.simulated ? (i.simulator === 'kwok' ? 'simulated (kwok node)' : 'simulated stand-in') : '',
      i.assigned ? '' : 'not assigned here (stopping)',
      i.lastError ?? '',
    ]
      .filter(Boolean)
      .join('; ') || '-',
  ]);
  return indent(formatTable(header, rows));
}

/**
 * Under the instances table: the last output the agent reported for each CrashLoop/Failed
 * instance, so a flag or certificate error reads here without a shell on the host.
 */
export function lastOutputBlocks(items: InstanceView[]): string {
  let s = '';
  for (const i of items) {
    if ((i.phase !== 'CrashLoop' && i.phase !== 'Failed') || !i.lastOutput) continue;
    const why =
      i.lastExitCode !== undefined ? ` (exit ${i.lastExitCode})` : i.lastError ? ` (${i.lastError})` : '';
    s += `  Last output of ${i.id}${why}:\n${indent(i.lastOutput, '    ')}\n`;
  }
  return s;
}

function eventsTable(items: Event[]): string {
  if (!items.length) return '  <none>\n';
  return indent(
    formatTable(
      ['AGE', 'SEVERITY', 'KIND', 'MESSAGE'],
      items.map((e) => [age(e.time), e.severity, e.kind, e.message]),
    ),
  );
}

function gib(bytes: number): string {
  return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
}

/** What the node applied: a Pending node has no plan to be up to date with. */
function appliedLine(n: NodeDetail): string {
  if (!n.approved) return 'none (Pending approval: no plan is sent before `drover approve`)';
  if (n.plan.appliedGeneration === null && n.plan.generation === 0) return 'none (no plan yet)';
  const agent = n.plan.state ? `, agent says ${n.plan.state}` : '';
  return `${n.plan.appliedGeneration ?? 'none'}${n.plan.converged ? ' (up to date)' : ' (not yet)'}${agent}`;
}

export function describeNode(n: NodeDetail): string {
  const f = n.facts;
  let s = '';
  s += field('Name', n.id);
  s += field('Hostname', n.hostname);
  s += field('Address', n.address);
  s += field('Cluster', n.cluster);
  s += field('Status', nodeStatus(n));
  s += field(
    'Approved',
    n.approved
      ? 'yes'
      : `no: compare the fingerprint below with the host (\`cat /etc/machine-id\`, \`ip link\`), then \`drover approve ${n.id}\``,
  );
  s += field('Machine id', n.fingerprint?.machineId || '<none presented>');
  s += field('MACs', n.fingerprint?.macs.length ? n.fingerprint.macs.join(', ') : '<none presented>');
  s += field(
    'Last heartbeat',
    n.lastHeartbeat
      ? `${age(n.lastHeartbeat)} ago (${n.lastHeartbeat})`
      : 'never since the coordinator started',
  );
  const labels = Object.entries(n.labels).map(([k, v]) => `${k}=${v}`);
  s += field('Labels', labels.length ? labels[0]! : '<none>');
  for (const l of labels.slice(1)) s += `${' '.repeat(16)}${l}\n`;
  s += 'Facts:\n';
  s += `  CPU:          ${f.cpu.cores} cores (${f.cpu.physicalCores} physical), ${f.cpu.model}\n`;
  s += `  Memory:       ${gib(f.memory.totalBytes)}\n`;
  s += `  OS:           ${f.os.distro} ${f.os.release}, kernel ${f.os.kernel}, ${f.os.arch}${f.virtualization.virtual ? ` (virtual${f.virtualization.host ? `, ${f.virtualization.host}` : ''})` : ''}\n`;
  s += `  Disks:        ${f.disks.map((d) => `${d.name} ${gib(d.sizeBytes)} ${d.type}`).join(', ') || '<none>'}\n`;
  if (f.gpus.length) s += `  GPUs:         ${f.gpus.map((g) => `${g.vendor} ${g.model}`).join(', ')}\n`;
  const bins = Object.entries(f.binaries).map(([k, b]) => `${k} ${b.version}`);
  s += `  Binaries:     ${bins.join(', ') || '<none>'}\n`;
  s += 'Plan:\n';
  s += `  Generation:   ${n.plan.generation}${n.plan.checksum ? ` (${n.plan.checksum.slice(0, 12)})` : ''}\n`;
  s += `  Applied:      ${appliedLine(n)}\n`;
  if (n.plan.error) s += `  Error:        ${n.plan.error}\n`;
  s += 'Instances:\n';
  s += instancesTable(n.instances, false);
  s += lastOutputBlocks(n.instances);
  s += 'Events:\n';
  s += eventsTable(n.events);
  return s;
}

export function describeRole(r: RoleView, events: Event[]): string {
  let s = '';
  s += field('Name', r.name);
  s += field('Cluster', r.cluster);
  s += field('Status', r.status);
  s += field('Desired', r.desired);
  s += field('Placed', r.placed);
  s += field('Healthy', r.healthy);
  if (r.simulated)
    s += field('Simulated', `${r.simulated} (stand-ins that honour the real flags and health endpoints)`);
  s += 'Reasons:\n';
  s += r.reasons.length ? r.reasons.map((x) => `  ${x}\n`).join('') : '  <none>\n';
  s += 'Instances:\n';
  s += instancesTable(r.instances, true);
  s += lastOutputBlocks(r.instances);
  s += 'Events:\n';
  s += eventsTable(events);
  return s;
}

/** `drover describe node|role NAME` */
export async function describe(ctx: CommandContext): Promise<number> {
  const [, word, name] = ctx.args.positionals;
  const kind = resourceKind(word, ['nodes', 'roles']);
  if (!name)
    throw usage(
      `describe ${word} needs a name`,
      `e.g. drover describe ${kind === 'nodes' ? 'node NODE' : 'role ROLE'}`,
    );
  if (kind === 'nodes') {
    const n = await ctx.client.get<NodeDetail>(`/v1/nodes/${encodeURIComponent(name)}`);
    if (!printStructured(ctx, n)) ctx.out(describeNode(n));
    return 0;
  }
  const r = await ctx.client.get<RoleView>(`/v1/roles/${encodeURIComponent(name)}`, {
    cluster: str(ctx.args.flags, 'cluster'),
  });
  const ev = await ctx.client.get<{ items: Event[] }>('/v1/events', { role: name, limit: 20 });
  if (!printStructured(ctx, { ...r, events: ev.items })) ctx.out(describeRole(r, ev.items));
  return 0;
}
