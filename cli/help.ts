/**
 * Each command's own `--help`: usage, what it does, its flags and an example. `commandHelp`
 * picks the most specific entry (`token create` before `token`). Every command in run.ts's
 * COMMANDS has an entry (test/unit/cli-help.test.ts checks it); lab and join-command print their
 * own (cli/lab.ts, join-command.ts).
 */

interface HelpEntry {
  usage: string;
  about: string;
  flags?: Array<[string, string]>;
  examples: string[];
}

const OUTPUT: [string, string] = ['-o, --output FORMAT', 'table (default), wide, json, yaml or name'];
const WAIT: [string, string] = ['--wait', 'wait until it is done'];
const TIMEOUT: [string, string] = [
  '--timeout DURATION',
  'give up waiting after this long (default 2m), exit 5',
];
const CLUSTER: [string, string] = ['--cluster NAME', 'the cluster (default: the only one, or default)'];

const NODE_ACTIONS: Record<string, string> = {
  approve: 'Admits a Pending node (one held because its address or host name is taken) to the fleet.',
  cordon: 'Keeps new instances off the node; the ones running there stay.',
  uncordon: 'Allows placement on the node again (also ends a drain).',
  drain: "Cordons the node and moves its instances elsewhere (the old node's copies are stopped).",
  repair:
    'Runs the repair ladder on the node now (restart, reprovision, reassign). `drover repair etcd --member NAME` replaces one etcd member (quorum permitting); with --dry-run it only says whether it would.',
  remove: 'Forgets the node; its instances are placed elsewhere. Same as `drover delete node NODE`.',
};

const ENTRIES: Record<string, HelpEntry> = {
  apply: {
    usage: 'drover apply -f FILE [--dry-run] [--wait [--timeout 2m]]',
    about:
      'Validates a topology (YAML or JSON; -f - reads stdin) and applies it. Instances that cannot be placed are listed and the command exits 1, although the topology was applied. With --wait it exits 0 once converged, 1 as soon as the coordinator reports instances it cannot place, 5 on the timeout.',
    flags: [
      ['-f, --filename FILE', 'the topology file, or - for stdin'],
      ['--dry-run', 'show what would change and apply nothing'],
      WAIT,
      TIMEOUT,
      OUTPUT,
    ],
    examples: ['drover apply -f examples/ha.yaml --wait', 'drover import openpai cfg/ | drover apply -f -'],
  },
  label: {
    usage: 'drover label NODE KEY=VALUE… KEY-… [--force]',
    about:
      "Sets (KEY=VALUE) or removes (KEY-) operator labels on a node; they win over the agent's own labels and survive its registrations. `drover.dev/cluster=NAME` moves the node into cluster NAME: refused while it still runs instances of its current cluster unless --force (they are placed elsewhere in that cluster first, never breaking etcd quorum).",
    flags: [['--force', 'move a node that still runs instances into another cluster']],
    examples: ['drover label cp-1 rack=r1 zone-', 'drover label worker-2 drover.dev/cluster=openpai --force'],
  },
  diff: {
    usage: 'drover diff -f FILE',
    about:
      'Shows what `drover apply -f FILE` would change: instances added, moved, removed and unplaced, and the nodes whose plans change. Applies nothing.',
    flags: [['-f, --filename FILE', 'the topology file, or - for stdin'], OUTPUT],
    examples: ['drover diff -f topology.yaml'],
  },
  status: {
    usage: 'drover status [--cluster NAME] [--wait [--timeout 2m]] [-o json|yaml]',
    about:
      'Is every plan applied and every role healthy? Exits 0 when converged, 1 when not (the reasons are listed: instances that cannot be placed, and what is still converging), 5 when --wait timed out. --wait gives up at once (exit 1) when instances cannot be placed.',
    flags: [CLUSTER, WAIT, TIMEOUT, OUTPUT],
    examples: ['drover status', 'drover status --wait --timeout 5m && kubectl get nodes'],
  },
  get: {
    usage:
      'drover get nodes|roles|assignments|events|tasks|tokens|topology|coordinators|certificates [NAME] [flags]',
    about:
      'Lists resources, or shows one by NAME. Tables cut long REASONS (…); -o wide and -o json show everything. -l filters nodes by label, matched by the CLI on the labels the API returns.',
    flags: [
      OUTPUT,
      [
        '-l, --selector SELECTOR',
        'nodes only: key=value, key!=value, key (has it), !key (has it not), comma-separated (all must hold)',
      ],
      ['-w, --watch', 'keep printing rows that change'],
      ['--interval MS', 'how often --watch polls (default 2000)'],
      ['--no-headers', 'tables without the header line'],
      CLUSTER,
      ['--node N, --role R, --state S', 'filters where the resource has them'],
    ],
    examples: [
      'drover get nodes -l pool=control-plane,zone!=b',
      'drover get roles -o wide',
      'drover get topology default -o yaml > default.yaml',
      'drover get coordinators -o wide',
      'drover get certificates            # every issued leaf and CA, soonest to expire first',
    ],
  },
  describe: {
    usage: 'drover describe node|role NAME',
    about: 'Details of one node or role: its state, instances, reasons and recent events.',
    flags: [CLUSTER],
    examples: ['drover describe node node-1', 'drover describe role kube-apiserver'],
  },
  events: {
    usage:
      'drover events [--watch] [--kind K] [--node N] [--role R] [--severity S] [--since SEQ] [--limit N]',
    about: 'The event history; with --watch, then live events as they happen (Ctrl-C ends it).',
    flags: [
      ['-w, --watch', 'stream new events'],
      ['--kind K', 'only events whose kind starts with K (e.g. node, role.moved)'],
      ['--node N, --role R', 'only events of this node or role'],
      ['--severity S', 'info, warning or error'],
      ['--since SEQ, --limit N', 'events after SEQ; at most N'],
      OUTPUT,
    ],
    examples: ['drover events --watch --kind node', 'drover events --severity error -o json'],
  },
  ...Object.fromEntries(
    Object.entries(NODE_ACTIONS).map(([cmd, about]) => [
      cmd,
      {
        usage: `drover ${cmd} NODE${cmd === 'drain' ? ' [--wait [--timeout 2m]]' : cmd === 'repair' ? ' [--force]' : ''}`,
        about,
        flags:
          cmd === 'drain'
            ? [WAIT, TIMEOUT]
            : cmd === 'repair'
              ? [
                  ['--force', 'act even when the storm guard paused repairs'],
                  ['--member NAME', 'with `repair etcd`: the etcd member to replace'],
                  [
                    '--dry-run',
                    'with `repair etcd`: say whether the member would be replaced now; do nothing',
                  ],
                ]
              : [],
        examples: [
          cmd === 'repair'
            ? 'drover repair node-2; drover repair etcd --member etcd-1 [--dry-run]'
            : `drover ${cmd} node-2${cmd === 'drain' ? ' --wait' : ''}`,
        ],
      } satisfies HelpEntry,
    ]),
  ),
  move: {
    usage: 'drover move INSTANCE --to NODE [--wait [--timeout 2m]] [--force]',
    about:
      'Moves one instance to another node (its epoch is bumped; the old copy is fenced). An instance id is <role>#<ordinal>, as `drover get assignments` lists them.',
    flags: [
      ['--to NODE', 'the node to move to'],
      ['--force', 'move even the last healthy instance'],
      WAIT,
      TIMEOUT,
    ],
    examples: ['drover move kube-apiserver#2 --to node-3 --wait'],
  },
  delete: {
    usage: 'drover delete node NODE | drover delete topology NAME [--yes]',
    about: 'Deletes a node (like `drover remove`) or a topology (see `drover delete topology --help`).',
    examples: ['drover delete node node-4', 'drover delete topology staging --yes'],
  },
  'delete node': {
    usage: 'drover delete node NODE',
    about: 'Forgets the node; its instances are placed elsewhere. Same as `drover remove NODE`.',
    examples: ['drover delete node node-4'],
  },
  'delete topology': {
    usage: 'drover delete topology NAME [--yes]',
    about:
      "Deletes a cluster's topology: every instance of the cluster is stopped and removed from its nodes (their data stays; the nodes stay in the fleet), and a topology.deleted event is recorded. It asks on a terminal; without one, it refuses unless --yes. Needs an operator token.",
    flags: [['-y, --yes', 'do it without asking']],
    examples: ['drover get topology', 'drover delete topology staging --yes'],
  },
  task: {
    usage: 'drover task NODE KIND [--instance ID] [--command NAME] [--tail N] [--wait [--timeout D]]',
    about: 'Runs a task on a node: restart, stop, start, reprovision, diagnostics or run-command.',
    flags: [
      ['--instance ID', 'the instance the task is about (restart, stop, start, reprovision)'],
      ['--command NAME', 'run-command: which allow-listed command'],
      ['--tail N', 'diagnostics: how many log lines'],
      WAIT,
      TIMEOUT,
      OUTPUT,
    ],
    examples: [
      'drover task node-1 restart --instance etcd#0 --wait',
      'drover task node-1 diagnostics --wait',
    ],
  },
  token: {
    usage:
      'drover token create NAME [--role viewer|operator|admin] | drover token delete NAME|ID | drover token create --join [--ttl 1h] [--uses 1] [--description D] [--require-approval] | drover token revoke ID',
    about:
      'Manages API tokens (needs an admin token) and join tokens (an operator token). `drover get tokens` lists both (KIND api or join).',
    flags: [
      ['--role viewer|operator|admin', 'create: what the API token may do (default viewer)'],
      ['--join', 'create or delete a join token instead of an API token'],
      ['--ttl DURATION', 'create --join: how long it is valid (default 24h)'],
      ['--uses N', 'create --join: how many hosts it may join (default 1)'],
      [
        '--require-approval',
        'create --join: hosts that join with it wait Pending until `drover approve` (default: admitted once they register)',
      ],
      ['--description D', 'create --join: what it is for'],
    ],
    examples: [
      'drover token create ci-bot --role operator > ci-bot.token',
      'drover token delete ci-bot',
      'drover token create --join --ttl 1h --uses 1 --description rack-4',
      'drover token revoke 3f9c0a1b2c3d4e5f',
    ],
  },
  'token revoke': {
    usage: 'drover token revoke ID',
    about:
      'Revokes a join token (`drover get tokens` lists them, KIND join): it joins no host from now on, and the bootstrap credentials it carries are cut off the bus at once. Nodes that joined with it keep their own credentials.',
    examples: ['drover token revoke 3f9c0a1b2c3d4e5f'],
  },
  'token create': {
    usage:
      'drover token create NAME [--role viewer|operator|admin] | drover token create --join [--ttl 1h] [--uses 1] [--description D] [--require-approval]',
    about:
      'With --join: creates a join token (default one use, valid 24h) and prints it once, with the `drover-agent join` command that uses it (stderr). Without: creates an API token and prints it once (store it now). Names are unique: a second token of the same name is refused. viewer reads everything, operator also acts on nodes and instances, admin also applies topologies and manages tokens.',
    flags: [
      ['--role viewer|operator|admin', 'what the token may do (default viewer)'],
      ['--join', 'a join token instead of an API token'],
      ['--ttl DURATION', 'with --join: how long it is valid (default 24h)'],
      ['--uses N', 'with --join: how many hosts it may join (default 1)'],
      ['--require-approval', 'with --join: hosts that join with it wait Pending until `drover approve`'],
      ['--description D', 'with --join: what it is for'],
      OUTPUT,
    ],
    examples: [
      'drover token create ci-bot --role operator > ci-bot.token',
      'drover token create --join --ttl 1h > host.join',
    ],
  },
  'token delete': {
    usage: 'drover token delete NAME|ID | drover token delete --join ID',
    about:
      'Deletes an API token by its name or id (`drover get tokens` lists both). The last admin token cannot be deleted. With --join: revokes a join token (as `drover token revoke ID`).',
    examples: ['drover token delete ci-bot'],
  },
  import: {
    usage: 'drover import openpai FILE|DIR [-o yaml|json] [--cluster NAME]',
    about:
      "Converts another tool's configuration into a topology. Sources: openpai (see `drover import openpai --help`).",
    examples: ['drover import openpai cluster-cfg/ | drover apply -f -'],
  },
  'import openpai': {
    usage: 'drover import openpai FILE|DIR [-o yaml|json] [--cluster NAME]',
    about:
      'Reads an OpenPAI cluster configuration (layout.yaml / cluster-configuration.yaml and kubernetes-configuration.yaml, a file or a directory) and prints the equivalent topology; warnings go to stderr. Nothing is applied (pipe it to `drover apply -f -`).',
    flags: [
      ['-o, --output yaml|json', 'the topology format (default yaml)'],
      ['--cluster NAME', 'the topology name (default from the configuration)'],
    ],
    examples: [
      'drover import openpai cluster-cfg/ > topology.yaml',
      'drover import openpai cluster-cfg/ | drover apply -f - --wait',
    ],
  },
  etcd: {
    usage: 'drover etcd snapshot save|list|get|delete … | drover etcd restore --snapshot ID --yes',
    about:
      "etcd snapshots the coordinator keeps off the etcd hosts (the JetStream object store, or its data dir): taken on each cluster's schedule (topology `cluster.etcdSnapshots`, default every 6h, keeping 10) and on demand; and the restore from one after a lost quorum. See `drover etcd snapshot save --help`, `drover etcd restore --help` and the runbooks in docs/operations.md.",
    examples: [
      'drover etcd snapshot save',
      'drover etcd snapshot list',
      'drover etcd snapshot get ID > etcd.db',
      'drover etcd restore --snapshot ID --dry-run',
    ],
  },
  'etcd restore': {
    usage:
      'drover etcd restore --snapshot ID --yes [--force] [--dry-run] [--wait [--timeout D]] | drover etcd restore status',
    about:
      "Rebuilds the cluster's etcd from a snapshot after a lost quorum (admin token): every member stops and gets a fresh data dir; one member, on a Ready node (a survivor first), is restored from the snapshot as a new single-member cluster (etcdutl snapshot restore with the revision bumped; etcdctl on etcd 3.4); the API servers are pointed at it; the other members rejoin one at a time as their nodes come back. Each step is an event (`drover events --kind etcd`). Refused, changing nothing, while quorum holds (unless --force: every write since the snapshot is lost), for another cluster's snapshot, for a damaged one, or while a restore runs. `status` shows each cluster's latest restore.",
    flags: [
      CLUSTER,
      ['--snapshot ID', 'the snapshot to restore (`drover etcd snapshot list`)'],
      ['--yes', 'do it without asking'],
      ['--force', 'restore even though quorum holds'],
      ['--dry-run', 'check everything and list the steps; change nothing'],
      ['--wait', 'follow the restore until every member is back (default timeout 10m)'],
      ['--timeout D', 'with --wait: how long to follow it'],
      OUTPUT,
    ],
    examples: [
      'drover etcd restore --snapshot prod-20261204T060000Z-1a2b3c --dry-run',
      'drover etcd restore --snapshot prod-20261204T060000Z-1a2b3c --yes --wait',
      'drover etcd restore status',
    ],
  },
  'etcd snapshot': {
    usage:
      'drover etcd snapshot save [--cluster C] | list [--cluster C] | get ID [-f FILE [--force]] | delete ID [--yes]',
    about:
      "save: takes a snapshot of the cluster's etcd now, from a healthy member (needs an operator token). list: the snapshots kept, newest first, with etcd's revision and the file's SHA-256. get: exports one as `etcdctl snapshot save` writes it, checked against its SHA-256 (needs an admin token: a snapshot holds every Secret). delete: removes one (operator).",
    flags: [
      CLUSTER,
      ['-f, --filename FILE', 'get: write it to FILE (mode 0600) instead of stdout'],
      ['--force', 'get: replace an existing FILE'],
      ['--yes', 'delete: do it without asking'],
      OUTPUT,
    ],
    examples: [
      'drover etcd snapshot save --cluster prod',
      'drover etcd snapshot get prod-20261204T060000Z-1a2b3c > prod.db',
      'drover etcd snapshot delete prod-20261204T060000Z-1a2b3c --yes',
    ],
  },
  backup: {
    usage: 'drover backup [--cluster C] [-f FILE [--force]]',
    about:
      "A cluster backup, as `k0s backup` makes one: a fresh etcd snapshot, the cluster's topology, the cluster PKI and the plan-signing key, in one JSON document with a SHA-256 over it (admin token). Written to FILE with mode 0600, or to a pipe; never to a terminal. `drover-coordinator restore-backup FILE --data-dir DIR` rebuilds a coordinator's data dir from it. It holds every secret of the cluster: keep it encrypted.",
    flags: [
      CLUSTER,
      ['-f, --filename FILE', 'write it to FILE (mode 0600)'],
      ['--force', 'replace an existing FILE'],
    ],
    examples: [
      'drover backup -f /secure/prod-backup.json',
      'drover backup --cluster prod | gpg -c > prod.json.gpg',
    ],
  },
  kubeconfig: {
    usage: 'drover kubeconfig admin [--cluster NAME] [-f FILE [--force]]',
    about: 'Issues kubeconfigs. Kinds: admin (see `drover kubeconfig admin --help`).',
    examples: ['drover kubeconfig admin -f admin.conf'],
  },
  'kubeconfig admin': {
    usage: 'drover kubeconfig admin [--cluster NAME] [-f FILE [--force]]',
    about:
      "A fresh admin kubeconfig (cluster-admin) for the cluster's API endpoint, printed, or written to FILE with mode 0600. An existing FILE is kept unless --force (then it is replaced, mode 0600). Needs an admin token.",
    flags: [
      CLUSTER,
      ['-f, --filename FILE', 'write it to FILE (mode 0600) instead of stdout'],
      ['--force', 'replace an existing FILE'],
    ],
    examples: [
      'drover kubeconfig admin -f ~/.kube/config',
      'drover kubeconfig admin --cluster prod > admin.conf',
    ],
  },
  clean: {
    usage: 'drover clean [--purge] [--cluster NAME] --yes [--wait [--timeout 2m]]',
    about:
      'Stops and removes every role on every node of the cluster (paictl clean); --purge also deletes their data. `drover apply` of a topology brings them back.',
    flags: [
      ['--yes', 'do it (required)'],
      ['--purge', "also delete the instances' data"],
      CLUSTER,
      WAIT,
      TIMEOUT,
    ],
    examples: ['drover clean --yes --wait', 'drover clean --purge --cluster lab --yes'],
  },
  tenants: {
    usage:
      'drover tenants [list | set NAME --slices N|--quota cpu=Q,memory=Q [--slice cpu=Q,memory=Q] | delete NAME | resolve NAME]',
    about:
      'VirtualCluster tenant quotas, their slices and placements; `resolve` tells which Arktos data partition serves a tenant.',
    flags: [
      ['--slices N', 'set: this many slices'],
      ['--quota cpu=Q,memory=Q', 'set: slices enough for this quota'],
      ['--slice cpu=Q,memory=Q', 'set: the size of one slice'],
      CLUSTER,
      OUTPUT,
    ],
    examples: ['drover tenants set acme --quota cpu=2,memory=4Gi', 'drover tenants resolve acme'],
  },
  'tenants set': {
    usage: 'drover tenants set NAME --slices N|--quota cpu=Q,memory=Q [--slice cpu=Q,memory=Q]',
    about: 'Creates or changes a tenant quota; its slices are placed on the super clusters.',
    flags: [
      ['--slices N', 'this many slices'],
      ['--quota cpu=Q,memory=Q', 'slices enough for this quota'],
      ['--slice cpu=Q,memory=Q', 'the size of one slice'],
      OUTPUT,
    ],
    examples: ['drover tenants set default --slices 2'],
  },
  'tenants delete': {
    usage: 'drover tenants delete NAME',
    about: 'Deletes a tenant quota and its slices.',
    examples: ['drover tenants delete acme'],
  },
  'tenants resolve': {
    usage: 'drover tenants resolve NAME [--cluster NAME]',
    about: 'Which Arktos data partition (and which API servers) serves a tenant.',
    flags: [CLUSTER, OUTPUT],
    examples: ['drover tenants resolve acme'],
  },
  superclusters: {
    usage: 'drover superclusters [-o json|yaml]',
    about:
      'Super clusters (clusters whose topology has a kubelet role), their capacity and what the tenant slices use.',
    flags: [OUTPUT],
    examples: ['drover superclusters'],
  },
  version: {
    usage: 'drover version | drover --version',
    about:
      'Prints the CLI version and, when a coordinator is reachable, the server version (`--version` prints the client only).',
    examples: ['drover version'],
  },
};

const GLOBAL =
  'Global flags: --server URL, --token TOKEN, --token-file FILE, --config FILE (the CLI config), --request-timeout DURATION; see `drover --help`.';

/** Wraps prose at 100 columns. */
function wrap(text: string, width = 100): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines.join('\n');
}

function render(e: HelpEntry): string {
  const w = Math.max(0, ...(e.flags ?? []).map(([f]) => f.length));
  const flags = e.flags?.length
    ? `\nFlags:\n${e.flags.map(([f, d]) => `  ${f.padEnd(w)}  ${d}`).join('\n')}\n`
    : '';
  return `Usage: ${e.usage}\n\n${wrap(e.about)}\n${flags}\nExamples:\n${e.examples.map((x) => `  ${x}`).join('\n')}\n\n${wrap(GLOBAL)}\n`;
}

/** The help of the most specific command named by `positionals`, or undefined for an unknown command. */
export function commandHelp(positionals: string[]): string | undefined {
  const [cmd, sub] = positionals;
  const alias: Record<string, string> = { topologies: 'topology', nodes: 'node' };
  const e = (sub && ENTRIES[`${cmd} ${alias[sub] ?? sub}`]) || (cmd ? ENTRIES[cmd] : undefined);
  return e ? render(e) : undefined;
}

/** The commands with a help text (for the test that every registered command has one). */
export function helpTopics(): string[] {
  return Object.keys(ENTRIES);
}
