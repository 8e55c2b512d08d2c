import type { InstanceSpec } from '../../../protocol/index.js';
import type { Assignment } from '../../model.js';
import { DEFAULT_RESTART, probe } from '../common.js';
import { arg, CERTS, certPath, hostPort, instanceName } from '../paths.js';
import type { EtcdAssignmentExtras, Member, RenderContext, RoleDefinition } from '../types.js';

export const ETCD_CLIENT_PORT = 2379;
export const ETCD_PEER_PORT = 2380;
/** the plain-HTTP listener of /health and /metrics only (`--listen-metrics-urls`), on loopback */
export const ETCD_METRICS_PORT = 2381;

/** The member name: stable per ordinal, so a replacement reuses its predecessor's name. */
export const etcdMemberName = (a: Pick<Assignment, 'role' | 'ordinal'>): string => instanceName(a);
const scheme = (tls: boolean) => (tls ? 'https' : 'http');
export const etcdClientUrl = (address: string, tls = false): string =>
  `${scheme(tls)}://${hostPort(address, ETCD_CLIENT_PORT)}`;
export const etcdPeerUrl = (address: string, tls = false): string =>
  `${scheme(tls)}://${hostPort(address, ETCD_PEER_PORT)}`;

/**
 * Where the metrics listener binds: the node's own address when that is loopback (the lab's
 * 127.0.0.x hosts, several on one machine), else 127.0.0.1. Never the node's public address:
 * /metrics and /health there would be readable without a certificate.
 */
export function etcdMetricsHost(address: string): string {
  return /^127\./.test(address) || address === '::1' ? address : '127.0.0.1';
}

/** `etcd-0=https://a:2380,etcd-1=https://b:2380,…` from the placed members, by ordinal. */
export function etcdInitialCluster(members: Member[], tls = false): string {
  return members.map((m) => `${etcdMemberName(m.assignment)}=${etcdPeerUrl(m.node.address, tls)}`).join(',');
}

/** etcd's TLS flags: client and peer certificates from the etcd CA, client certificates required. */
function etcdTlsArgs(ctx: RenderContext): string[] {
  const c = (f: string) => arg(certPath(ctx.topology, ctx.assignment, f));
  return [
    `--cert-file=${c(CERTS.etcdServer)}`,
    `--key-file=${c(CERTS.etcdServerKey)}`,
    `--trusted-ca-file=${c(CERTS.etcdCa)}`,
    '--client-cert-auth=true',
    `--peer-cert-file=${c(CERTS.etcdPeer)}`,
    `--peer-key-file=${c(CERTS.etcdPeerKey)}`,
    `--peer-trusted-ca-file=${c(CERTS.etcdCa)}`,
    '--peer-client-cert-auth=true',
    `--listen-metrics-urls=http://${hostPort(etcdMetricsHost(ctx.node.address), ETCD_METRICS_PORT)}`,
  ];
}

/** etcdctl's flags to reach this member: over TLS, its own client certificate. */
function etcdctlArgs(ctx: RenderContext, client: string): string[] {
  if (!ctx.etcdTls) return [`--endpoints=${client}`];
  const c = (f: string) => arg(certPath(ctx.topology, ctx.assignment, f));
  return [
    `--endpoints=${client}`,
    `--cacert=${c(CERTS.etcdCa)}`,
    `--cert=${c(CERTS.etcdctlClient)}`,
    `--key=${c(CERTS.etcdctlClientKey)}`,
  ];
}

/**
 * `new` for the members that bootstrap the cluster together; `existing` for a member that joins a
 * running cluster (after `member add` through the survivors): a moved member (`previousNodeId`),
 * one flagged `existing`, or one placed after the bootstrap set (a scale-up: its `since` is later
 * than the earliest fresh member's).
 */
export function etcdInitialState(a: Assignment, members: Member[]): 'new' | 'existing' {
  const x = a as Assignment & EtcdAssignmentExtras;
  if (x.existing === true || a.previousNodeId !== undefined) return 'existing';
  const fresh = members
    .map((m) => m.assignment as Assignment & EtcdAssignmentExtras)
    .filter((m) => m.epoch === 1 && m.previousNodeId === undefined && m.existing !== true)
    .map((m) => m.since)
    .sort();
  return fresh.length > 0 && a.since > fresh[0]! ? 'existing' : 'new';
}

/** The revision a restored member jumps ahead by (etcdutl `--bump-revision`), as Kubernetes' docs advise. */
export const RESTORE_BUMP_REVISION = 1_000_000_000;

/**
 * How the agent restores a seeded member's data dir: `etcdutl snapshot restore` (etcd 3.5+), which
 * bumps the revision and marks it compacted so the API servers' watches re-list instead of missing
 * changes; else `etcdctl snapshot restore` (etcd 3.4, no revision bump). The new member's name,
 * peer URL and `--initial-cluster` (itself alone, or as frozen) and the cluster token.
 */
export function etcdSeed(
  seed: NonNullable<EtcdAssignmentExtras['seed']>,
  dataDir: string,
  p: { name: string; peer: string; initialCluster: string; token: string },
): NonNullable<InstanceSpec['seed']> {
  const restore = [
    'snapshot',
    'restore',
    '@SNAPSHOT@',
    `--name=${p.name}`,
    `--initial-cluster=${p.initialCluster}`,
    `--initial-cluster-token=${p.token}`,
    `--initial-advertise-peer-urls=${p.peer}`,
    '--data-dir=@TARGET@',
  ];
  return {
    kind: 'etcd-snapshot',
    snapshotId: seed.snapshotId,
    sha256: seed.sha256,
    size: seed.size,
    dataPath: dataDir,
    tools: [
      {
        command: 'etcdutl',
        args: [...restore, `--bump-revision=${RESTORE_BUMP_REVISION}`, '--mark-compacted'],
      },
      { command: 'etcdctl', args: restore, env: { ETCDCTL_API: '3' } },
    ],
  };
}

export const etcd: RoleDefinition = {
  name: 'etcd',
  description:
    'etcd member; --initial-cluster from the etcd assignments, client and peer URLs on the node address over mutual TLS from the etcd CA, /health and /metrics on a loopback listener',
  binary: 'etcd',
  kubernetes: false,
  stateful: true,
  defaultSpread: { perNode: true },
  restart: { ...DEFAULT_RESTART },
  needs: [],
  ports: () => [ETCD_CLIENT_PORT, ETCD_PEER_PORT],
  reads: ['etcd'],
  usesApiEndpoint: false,
  probe: (ctx) =>
    probe(
      ctx.etcdTls
        ? { kind: 'http', host: etcdMetricsHost(ctx.node.address), port: ETCD_METRICS_PORT, path: '/health' }
        : { kind: 'http', host: ctx.node.address, port: ETCD_CLIENT_PORT, path: '/health' },
      // a new cluster reports unhealthy until it has a leader: give it time before counting failures
      { initialDelayMs: 5000, failureThreshold: 5 },
    ),
  render(ctx: RenderContext) {
    const a = ctx.assignment;
    const x = a as typeof a & EtcdAssignmentExtras;
    const members = ctx.members('etcd');
    const name = etcdMemberName(a);
    const tls = ctx.etcdTls === true;
    const client = etcdClientUrl(ctx.node.address, tls);
    const peer = etcdPeerUrl(ctx.node.address, tls);
    // The epoch is in the path: a member that moves back to a host it once left must not find
    // that host's stale data dir (its old member id was removed from the cluster).
    const dataDir = `/var/lib/etcd/${name}-e${a.epoch}`;
    const initialCluster = x.initialCluster ?? etcdInitialCluster(members, tls);
    const token = `${ctx.topology.cluster.name}-etcd`;
    return {
      dataPaths: [dataDir],
      ...(x.seed ? { seed: etcdSeed(x.seed, dataDir, { name, peer, initialCluster, token }) } : {}),
      args: [
        `--name=${name}`,
        `--data-dir=${arg(dataDir)}`,
        `--listen-client-urls=${client}`,
        `--advertise-client-urls=${client}`,
        `--listen-peer-urls=${peer}`,
        `--initial-advertise-peer-urls=${peer}`,
        `--initial-cluster=${initialCluster}`,
        `--initial-cluster-state=${etcdInitialState(a, members)}`,
        `--initial-cluster-token=${token}`,
        '--logger=zap',
        ...(tls ? etcdTlsArgs(ctx) : []),
      ],
      unit: { type: 'notify', limitNOFILE: 65536 },
      stopTimeoutMs: 30_000,
      commands: {
        'endpoint-health': {
          command: 'etcdctl',
          args: [...etcdctlArgs(ctx, client), 'endpoint', 'health'],
          timeoutMs: 10_000,
        },
        'member-list': {
          command: 'etcdctl',
          args: [...etcdctlArgs(ctx, client), 'member', 'list', '--write-out=json'],
          timeoutMs: 10_000,
        },
      },
    };
  },
};
