import type { Assignment } from '../../model.js';
import { DEFAULT_RESTART, probe } from '../common.js';
import { arg, hostPort, instanceName } from '../paths.js';
import type { EtcdAssignmentExtras, Member, RenderContext, RoleDefinition } from '../types.js';

export const ETCD_CLIENT_PORT = 2379;
export const ETCD_PEER_PORT = 2380;

/** The member name: stable per ordinal, so a replacement reuses its predecessor's name. */
export const etcdMemberName = (a: Pick<Assignment, 'role' | 'ordinal'>): string => instanceName(a);
export const etcdClientUrl = (address: string): string => `http://${hostPort(address, ETCD_CLIENT_PORT)}`;
export const etcdPeerUrl = (address: string): string => `http://${hostPort(address, ETCD_PEER_PORT)}`;

/** `etcd-0=http://a:2380,etcd-1=http://b:2380,…` from the placed members, by ordinal. */
export function etcdInitialCluster(members: Member[]): string {
  return members.map((m) => `${etcdMemberName(m.assignment)}=${etcdPeerUrl(m.node.address)}`).join(',');
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

export const etcd: RoleDefinition = {
  name: 'etcd',
  description:
    'etcd member; --initial-cluster from the etcd assignments, client and peer URLs on the node address',
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
      { kind: 'http', host: ctx.node.address, port: ETCD_CLIENT_PORT, path: '/health' },
      // a new cluster reports unhealthy until it has a leader: give it time before counting failures
      { initialDelayMs: 5000, failureThreshold: 5 },
    ),
  render(ctx: RenderContext) {
    const a = ctx.assignment;
    const x = a as typeof a & EtcdAssignmentExtras;
    const members = ctx.members('etcd');
    const name = etcdMemberName(a);
    const client = etcdClientUrl(ctx.node.address);
    const peer = etcdPeerUrl(ctx.node.address);
    // The epoch is in the path: a member that moves back to a host it once left must not find
    // that host's stale data dir (its old member id was removed from the cluster).
    const dataDir = `/var/lib/etcd/${name}-e${a.epoch}`;
    return {
      dataPaths: [dataDir],
      args: [
        `--name=${name}`,
        `--data-dir=${arg(dataDir)}`,
        `--listen-client-urls=${client}`,
        `--advertise-client-urls=${client}`,
        `--listen-peer-urls=${peer}`,
        `--initial-advertise-peer-urls=${peer}`,
        `--initial-cluster=${x.initialCluster ?? etcdInitialCluster(members)}`,
        `--initial-cluster-state=${etcdInitialState(a, members)}`,
        `--initial-cluster-token=${ctx.topology.cluster.name}-etcd`,
        '--logger=zap',
      ],
      unit: { type: 'notify', limitNOFILE: 65536 },
      stopTimeoutMs: 30_000,
      commands: {
        'endpoint-health': {
          command: 'etcdctl',
          args: [`--endpoints=${client}`, 'endpoint', 'health'],
          timeoutMs: 10_000,
        },
        'member-list': {
          command: 'etcdctl',
          args: [`--endpoints=${client}`, 'member', 'list', '--write-out=json'],
          timeoutMs: 10_000,
        },
      },
    };
  },
};
