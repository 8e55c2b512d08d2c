import { DROVER_VERSION } from '../lib/version.js';
import { bool, type ParsedArgs, parseArgs, str } from './args.js';
import { ApiClient } from './client.js';
import { apply, diff, move, nodeAction, status, task, token } from './commands/actions.js';
import { describe } from './commands/describe.js';
import { backup, etcd } from './commands/etcd.js';
import { get, watchEvents } from './commands/get.js';
import { label } from './commands/label.js';
import { clean, importCmd, kubeconfig, superclusters, tenants } from './commands/seeds.js';
import { deleteTopology } from './commands/topology.js';
import { type CommandContext, outputFormat, sleep } from './context.js';
import { CliError, EXIT, usage } from './errors.js';
import { commandHelp } from './help.js';
import { resolveSettings } from './settings.js';

export const HELP = `drover ${DROVER_VERSION}: operate a Drover-managed control plane

Usage: drover <command> [arguments] [flags]

Topology:
  apply -f FILE [--wait] [--timeout 2m] [--dry-run]   validate and apply a topology (YAML or JSON)
  diff -f FILE                                        show what apply would change
  status [--wait]                                     is every plan applied and every role healthy? (exit 1 if not)
  get topology [NAME] [-o yaml|json]                  the applied topologies
  delete topology NAME [--yes]                        remove a cluster's instances (asks first)
Resources:
  get nodes|roles|assignments|events|tasks|tokens|topology|coordinators|certificates [NAME] [-o table|wide|json|yaml|name] [--watch]
  get nodes -l key=value,key!=value,key               nodes by label
  describe node|role NAME                             details, instances and recent events
  events [--watch] [--kind K] [--node N] [--role R] [--severity S]
Nodes:
  approve NODE                                        admit a Pending node
  cordon NODE | uncordon NODE                         stop / allow new instances on the node
  label NODE KEY=VALUE… KEY-… [--force]               set / remove operator labels; drover.dev/cluster=C
                                                      moves the node to cluster C (--force: even if it runs instances)
  drain NODE [--wait] [--timeout 2m]                  move the node's instances elsewhere
  repair NODE [--force]                               run the repair ladder now
  remove NODE [--force] [--timeout 15s]               forget a node; a live one: drain it first, or --force
  move INSTANCE --to NODE [--wait]                    move one instance, e.g. kube-apiserver#1
etcd:
  etcd snapshot save [--cluster C]                    take an etcd snapshot now (from a healthy member)
  etcd snapshot list [--cluster C]                    the snapshots kept (scheduled and on demand)
  etcd snapshot get ID [-f FILE]                      export one (> file, or -f FILE); checked on the way
  etcd snapshot delete ID [--yes]                     delete one
  backup [--cluster C] -f FILE                        a cluster backup: a fresh snapshot, the topology, the PKI
Seed scenarios (docs/seeds.md):
  import openpai FILE|DIR [-o yaml|json]              OpenPAI cluster config -> topology (| drover apply -f -)
  kubeconfig admin [--cluster C] [-f FILE [--force]]  print an admin kubeconfig, or write FILE (mode 0600)
  clean [--purge] [--cluster C] --yes [--wait]        stop and remove every role; --purge deletes their data
  tenants resolve NAME [--cluster C]                  which Arktos data partition serves a tenant
  tenants [set NAME --slices N|--quota cpu=Q,memory=Q [--slice cpu=Q,memory=Q] | delete NAME]
                                                      VirtualCluster tenant quotas and their {"r1":1,"r2":1} placement
  superclusters                                       super clusters, their capacity and what the slices use
Other:
  task NODE KIND [--instance ID] [--wait]             run restart|stop|start|reprovision|diagnostics|run-command
  token create NAME [--role viewer|operator|admin]    a new API token (role default viewer; names are unique)
  token delete NAME|ID                                delete an API token (see drover get tokens)
  token create --join [--ttl 1h] [--uses 1] [--description D] [--require-approval]
                                                      a join token for new hosts (default 1 use, 24h)
  token revoke ID                                     revoke a join token (or token delete --join ID)
  join-command                                        print the command that joins a host to the fleet
  lab up|down|…                                       run a whole fleet on this machine
  version                                             print client and server versions

Connection (flags win over environment, environment over the config file):
  --server URL[,URL…]    DROVER_URL               server: in ~/.config/drover/config.yaml (default http://127.0.0.1:7480);
                                                  with coordinator HA every coordinator's URL: the CLI finds the leader
  --token TOKEN          DROVER_TOKEN             token:
  --token-file FILE      DROVER_TOKEN_FILE        tokenFile:
  --config FILE          DROVER_CONFIG            another config file
  --request-timeout DUR  DROVER_REQUEST_TIMEOUT   requestTimeout: per API request (default 30s; 0 = none)

Exit codes: 0 ok, 1 operation failed, server unreachable, or not converged (status, apply with
unplaced instances), 2 usage or invalid input, 3 not found, 4 unauthorized or forbidden,
5 timed out (--wait, or a request past --request-timeout).

\`drover COMMAND --help\` (or \`drover help COMMAND\`) shows a command's usage, flags and examples.
`;

export interface RunIo {
  out: (text: string) => void;
  err: (text: string) => void;
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** yes/no on a terminal (main.ts); without it destructive commands need --yes */
  confirm?: (question: string) => Promise<boolean>;
  /** bytes to standard output; main.ts leaves it out when stdout is a terminal */
  outBytes?: (bytes: Uint8Array) => void;
}

type Handler = (ctx: CommandContext) => Promise<number>;

/** Every command `run` dispatches (besides lab, join-command and version); each has a help text in help.ts. */
export const COMMANDS: Record<string, Handler> = {
  apply,
  diff,
  status,
  get,
  describe,
  events: (ctx) =>
    bool(ctx.args.flags, 'watch')
      ? watchEvents(ctx)
      : get({ ...ctx, args: { ...ctx.args, positionals: ['get', 'events'] } }),
  approve: (ctx) => nodeAction(ctx, 'approve'),
  cordon: (ctx) => nodeAction(ctx, 'cordon'),
  uncordon: (ctx) => nodeAction(ctx, 'uncordon'),
  drain: (ctx) => nodeAction(ctx, 'drain'),
  repair: (ctx) => nodeAction(ctx, 'repair'),
  remove: (ctx) => nodeAction(ctx, 'remove'),
  delete: (ctx) => {
    const what = ctx.args.positionals[1];
    if (what === 'topology' || what === 'topologies') return deleteTopology(ctx);
    if (what !== 'node') throw usage('delete supports `delete node NODE` and `delete topology NAME`');
    return nodeAction(
      { ...ctx, args: { ...ctx.args, positionals: ['remove', ...ctx.args.positionals.slice(2)] } },
      'remove',
    );
  },
  label,
  etcd,
  backup,
  move,
  task,
  token,
  import: importCmd,
  kubeconfig,
  clean,
  tenants,
  superclusters,
};

async function version(args: ParsedArgs, io: RunIo, signal: AbortSignal): Promise<number> {
  io.out(`drover ${DROVER_VERSION}\n`);
  if (bool(args.flags, 'version')) return 0;
  // `drover version` also asks the server, when one is configured and reachable.
  try {
    const client = new ApiClient(resolveSettings({ flags: connFlags(args), env: io.env }));
    const r = await client.fetch('GET', '/healthz', { signal });
    const b = (await r.json()) as { version?: string };
    io.out(`server ${client.settings.server}: drover-coordinator ${b.version ?? 'unknown'}\n`);
  } catch (err) {
    io.err(`server: unreachable (${(err as Error).message})\n`);
  }
  return 0;
}

function connFlags(args: ParsedArgs) {
  return {
    server: str(args.flags, 'server'),
    token: str(args.flags, 'token'),
    tokenFile: str(args.flags, 'token-file'),
    config: str(args.flags, 'config'),
    requestTimeout: str(args.flags, 'request-timeout'),
  };
}

/** Runs one CLI invocation; returns the exit code. Never throws. */
export async function run(argv: string[], io: RunIo): Promise<number> {
  const controller = new AbortController();
  const signal = io.signal ?? controller.signal;
  try {
    if (argv[0] === 'lab') {
      const { runLab } = await import('./lab.js');
      return await runLab(argv.slice(1));
    }
    if (argv[0] === 'join-command') {
      const { joinCommandMain } = await import('./join-command.js');
      return await joinCommandMain(argv.slice(1), { stdout: io.out, stderr: io.err, env: io.env });
    }
    const args = parseArgs(argv);
    const cmd = args.positionals[0];
    if (cmd === 'help' && args.positionals[1]) return await run([...args.positionals.slice(1), '--help'], io);
    if (cmd && cmd !== 'help' && bool(args.flags, 'help')) {
      const text = commandHelp(args.positionals);
      if (!text) throw usage(`unknown command ${JSON.stringify(cmd)}`);
      io.out(text);
      return 0;
    }
    if (cmd === 'version' || bool(args.flags, 'version')) return await version(args, io, signal);
    if (!cmd || cmd === 'help' || bool(args.flags, 'help')) {
      io.out(HELP);
      return cmd || bool(args.flags, 'help') ? 0 : EXIT.USAGE;
    }
    const handler = COMMANDS[cmd];
    if (!handler) throw usage(`unknown command ${JSON.stringify(cmd)}`);
    outputFormat(args);
    const client = new ApiClient(resolveSettings({ flags: connFlags(args), env: io.env }));
    return await handler({
      client,
      args,
      out: io.out,
      err: io.err,
      signal,
      now: Date.now,
      sleep,
      confirm: io.confirm,
      ...(io.outBytes ? { outBytes: io.outBytes } : {}),
    });
  } catch (err) {
    if (err instanceof CliError) {
      io.err(`drover: ${err.message}\n`);
      if (err.hint) io.err(`  hint: ${err.hint}\n`);
      return err.exitCode;
    }
    if ((err as Error)?.name === 'AbortError') return 0;
    io.err(`drover: unexpected error: ${(err as Error)?.stack ?? err}\n`);
    return EXIT.FAILED;
  }
}
