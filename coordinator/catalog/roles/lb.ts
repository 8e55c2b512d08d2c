import { DEFAULT_RESTART, probe } from '../common.js';
import { APISERVER_PORT } from '../endpoint.js';
import { arg, configDir, hostPort, instanceName } from '../paths.js';
import type { Member, RenderContext, RoleDefinition } from '../types.js';

export const HAPROXY_CFG = 'haproxy.cfg';

/**
 * haproxy.cfg for the API endpoint, shaped like seed 003's: a TCP frontend on the node address
 * round-robining over every placed API server, each checked with `check fall 1 rise 2`.
 */
export function haproxyConfig(
  ctx: Pick<RenderContext, 'topology' | 'node' | 'assignment'>,
  apiservers: Member[],
): string {
  const port = ctx.topology.cluster.apiEndpoint.port;
  const servers = apiservers.map(
    (m) =>
      `  server ${instanceName(m.assignment)} ${hostPort(m.node.address, APISERVER_PORT)} check fall 1 rise 2`,
  );
  return [
    `# Rendered by Drover for ${ctx.assignment.instanceId} of cluster ${ctx.topology.cluster.name}; the next plan replaces it.`,
    '# haproxy runs in master-worker mode (-W): on a new config the agent sends SIGUSR2 and the master',
    '# starts workers with the new backends while the old ones finish their connections (no drops).',
    // No global maxconn: haproxy derives it from the file-descriptor limit it gets, and a fixed
    // one fails to start ("Cannot raise FD limit") wherever that limit is lower.
    'defaults',
    '  mode tcp',
    // A short connect timeout plus redispatch sends a client to another API server within a second
    // when one dies; client and server timeouts stay long for watches, as in the seed.
    '  timeout connect 1s',
    '  timeout client 500s',
    '  timeout server 500s',
    '  retries 3',
    '  option redispatch',
    '',
    'frontend k8s',
    `  bind ${hostPort(ctx.node.address, port)}`,
    '  default_backend apiserver',
    '',
    'backend apiserver',
    '  balance roundrobin',
    '  default-server inter 500ms',
    ...servers,
    '',
  ].join('\n');
}

export const loadBalancer: RoleDefinition = {
  name: 'load-balancer',
  description: 'haproxy in front of the API servers (mode tcp, round robin, check fall 1 rise 2)',
  binary: 'haproxy',
  kubernetes: false,
  stateful: false,
  defaultSpread: { perNode: true },
  restart: { ...DEFAULT_RESTART },
  needs: ['kube-apiserver'],
  ports: (t) => [t.cluster.apiEndpoint.port],
  reads: ['kube-apiserver'],
  usesApiEndpoint: false,
  probe: (ctx) => probe({ kind: 'tcp', host: ctx.node.address, port: ctx.topology.cluster.apiEndpoint.port }),
  render: (ctx) => {
    const cfg = `${configDir(ctx.assignment)}/${HAPROXY_CFG}`;
    return {
      // -W master-worker (reload with SIGUSR2), -db foreground for the process runtime and systemd
      args: ['-W', '-db', '-f', arg(cfg)],
      files: [{ path: cfg, mode: 0o644, content: haproxyConfig(ctx, ctx.members('kube-apiserver')) }],
      reloadSignal: 'SIGUSR2',
      unit: { limitNOFILE: 65536 },
      commands: {
        'check-config': { command: 'haproxy', args: ['-c', '-f', arg(cfg)], timeoutMs: 10_000 },
      },
    };
  },
};
