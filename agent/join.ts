import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import YAML from 'yaml';
import { writeFileAtomic } from '../lib/atomic-file.js';
import { splitArgs } from '../lib/config.js';
import { decodeJoinToken, JOIN_TOKEN_MAX_LENGTH } from '../protocol/join-token.js';
import { compileAgentOptions, DEFAULT_CONFIG_FILE } from './options.js';

/**
 * `drover-agent join`: writes the NATS server, the join token and the optional address, labels,
 * CA and key fingerprint into the agent's config file, then enables and (re)starts the service,
 * like `kubeadm join` or `k3s agent`. Every input is checked before anything is written; the file
 * is merged (other settings and comments are kept), validated as the agent would read it, and
 * written atomically with mode 0600 because it holds the token.
 */

export const JOIN_USAGE = `Usage: drover-agent join --server URL --token TOKEN [options]

Joins this host to a Drover fleet: writes the agent config and starts drover-agent.service.
'drover join-command' on the coordinator prints the exact command.

Options:
  --server URL[,URL...]   NATS server URL(s): nats://, tls://, ws:// or wss:// (required)
  --token TOKEN           a join token (drover-join-v1.…, from \`drover token create --join\`
                          or \`drover join-command\`), or --token-file FILE
  --token-file FILE       read the join token from FILE (keeps it out of the process list)
  --address ADDR          address this host advertises to the coordinator (IP or DNS name)
  --labels k=v[,k=v...]   node labels, merged into the existing ones
  --ca FILE               CA bundle (PEM) that signs the NATS server certificate
  --coordinator-key-fingerprint HEX
                          the coordinator's plan-signing key (sha256, 64 hex digits; required):
                          the join reply and every plan must be signed by it
  --insecure-trust-first-coordinator
                          INSECURE: without the fingerprint, trust whichever coordinator key
                          answers first (a rogue responder could take this host over)
  --config FILE           config file to write (default ${DEFAULT_CONFIG_FILE})
  --no-start              write the config only; do not enable or start the service
  --help                  print this help
`;

const UNIT = 'drover-agent.service';
const FLAGS = new Set([
  'server',
  'token',
  'token-file',
  'address',
  'labels',
  'ca',
  'coordinator-key-fingerprint',
  'insecure-trust-first-coordinator',
  'config',
  'no-start',
  'help',
]);
const BOOLEAN_FLAGS = new Set(['no-start', 'help', 'insecure-trust-first-coordinator']);
const NATS_SCHEMES = new Set(['nats:', 'tls:', 'ws:', 'wss:']);
const LABEL_KEY = /^[A-Za-z0-9._/-]{1,253}$/;
const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/** Narrow ports, so tests run join against a temp file without touching systemd. */
export interface JoinDeps {
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
  /** runs `systemctl ARGS`; default: the real systemctl */
  systemctl?: (args: string[]) => Promise<{ code: number; output: string }>;
  /** whether systemd is the running init; default: /run/systemd/system exists */
  systemdRunning?: () => boolean;
}

/** A problem with the input: reported with exit code 2 and nothing written. */
class JoinInputError extends Error {
  override name = 'JoinInputError';
}

export interface JoinRequest {
  configFile: string;
  servers: string[];
  token: string;
  address?: string;
  labels?: Record<string, string>;
  ca?: string;
  coordinatorKeyFingerprint?: string;
  /** trust on first use, explicitly (insecure) */
  insecureTrustFirstCoordinator?: boolean;
  start: boolean;
}

function str(flags: Record<string, string | boolean>, name: string): string | undefined {
  const v = flags[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '') throw new JoinInputError(`--${name} needs a value`);
  return v;
}

export function parseServers(raw: string): string[] {
  const out: string[] = [];
  for (const s of raw.split(',').map((x) => x.trim())) {
    if (s === '') throw new JoinInputError(`--server: empty URL in ${JSON.stringify(raw)}`);
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      throw new JoinInputError(
        `--server: ${JSON.stringify(s)} is not a URL (expected e.g. nats://10.0.0.1:4222)`,
      );
    }
    if (!NATS_SCHEMES.has(u.protocol))
      throw new JoinInputError(
        `--server: ${JSON.stringify(s)} has scheme ${u.protocol.replace(/:$/, '')}; use nats, tls, ws or wss`,
      );
    if (!u.hostname) throw new JoinInputError(`--server: ${JSON.stringify(s)} names no host`);
    out.push(s);
  }
  return out;
}

export function parseLabels(raw: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of raw.split(',').map((x) => x.trim())) {
    if (kv === '') continue;
    const i = kv.indexOf('=');
    if (i < 1) throw new JoinInputError(`--labels: ${JSON.stringify(kv)} is not key=value`);
    const k = kv.slice(0, i).trim();
    const v = kv.slice(i + 1).trim();
    if (!LABEL_KEY.test(k))
      throw new JoinInputError(
        `--labels: key ${JSON.stringify(k)} may hold only letters, digits and . _ / -`,
      );
    if (v.length > 253) throw new JoinInputError(`--labels: the value of ${k} is longer than 253 characters`);
    out[k] = v;
  }
  if (Object.keys(out).length === 0) throw new JoinInputError('--labels: no key=value pairs given');
  return out;
}

function checkToken(token: string, from: string): string {
  const t = token.trim();
  if (t === '') throw new JoinInputError(`${from}: the join token is empty`);
  if (t.length > JOIN_TOKEN_MAX_LENGTH)
    throw new JoinInputError(`${from}: the join token is longer than ${JOIN_TOKEN_MAX_LENGTH} characters`);
  if (/\s/.test(t)) throw new JoinInputError(`${from}: the join token contains whitespace`);
  try {
    decodeJoinToken(t);
  } catch (err) {
    throw new JoinInputError(`${from}: ${(err as Error).message}`);
  }
  return t;
}

function readCa(file: string): string {
  const path = resolve(file);
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (err) {
    throw new JoinInputError(`--ca: cannot read ${path}: ${(err as Error).message}`);
  }
  try {
    new X509Certificate(pem);
  } catch {
    throw new JoinInputError(`--ca: ${path} holds no PEM certificate`);
  }
  return path;
}

function normalizeFingerprint(raw: string): string {
  const hex = raw
    .replace(/^sha256:/i, '')
    .replace(/:/g, '')
    .toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex))
    throw new JoinInputError('--coordinator-key-fingerprint: expected a sha256 in hex (64 digits)');
  return hex;
}

/** Parses and checks every flag; throws JoinInputError naming the first problem. */
export function parseJoinArgs(argv: string[]): JoinRequest | 'help' {
  const { positionals, flags } = splitArgs(argv, BOOLEAN_FLAGS);
  if (flags.help) return 'help';
  for (const name of Object.keys(flags))
    if (!FLAGS.has(name)) throw new JoinInputError(`unknown option --${name} (see drover-agent join --help)`);
  if (positionals.length > 0)
    throw new JoinInputError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const server = str(flags, 'server');
  if (!server) throw new JoinInputError('--server is required (e.g. --server nats://10.0.0.1:4222)');
  const servers = parseServers(server);
  const tokenFlag = str(flags, 'token');
  const tokenFile = str(flags, 'token-file');
  if (tokenFlag && tokenFile) throw new JoinInputError('give --token or --token-file, not both');
  let token: string;
  if (tokenFlag) token = checkToken(tokenFlag, '--token');
  else if (tokenFile) {
    let text: string;
    try {
      text = readFileSync(tokenFile, 'utf8');
    } catch (err) {
      throw new JoinInputError(`--token-file: cannot read ${tokenFile}: ${(err as Error).message}`);
    }
    token = checkToken(text, '--token-file');
  } else
    throw new JoinInputError('--token is required (the coordinator prints it with `drover join-command`)');
  const address = str(flags, 'address');
  if (address !== undefined && !isIP(address) && !HOSTNAME.test(address))
    throw new JoinInputError(
      `--address: ${JSON.stringify(address)} is neither an IP address nor a host name`,
    );
  const labels = flags.labels === undefined ? undefined : parseLabels(str(flags, 'labels')!);
  const caFlag = str(flags, 'ca');
  const fp = str(flags, 'coordinator-key-fingerprint');
  const insecure = flags['insecure-trust-first-coordinator'] === true;
  if (fp === undefined && !insecure)
    throw new JoinInputError(
      '--coordinator-key-fingerprint is required (`drover join-command` prints it); trusting the first coordinator that answers needs --insecure-trust-first-coordinator',
    );
  if (fp !== undefined && insecure)
    throw new JoinInputError(
      'give --coordinator-key-fingerprint or --insecure-trust-first-coordinator, not both',
    );
  return {
    configFile: resolve(str(flags, 'config') ?? DEFAULT_CONFIG_FILE),
    servers,
    token,
    address,
    labels,
    ca: caFlag === undefined ? undefined : readCa(caFlag),
    coordinatorKeyFingerprint: fp === undefined ? undefined : normalizeFingerprint(fp),
    ...(insecure ? { insecureTrustFirstCoordinator: true } : {}),
    start: flags['no-start'] !== true,
  };
}

/**
 * Merges the request into the existing config text (comments and other settings are kept) and
 * returns the new text. Throws JoinInputError if the existing file is not a YAML mapping.
 */
export function mergeJoinConfig(existing: string | undefined, req: JoinRequest): string {
  const doc: YAML.Document = YAML.parseDocument(existing ?? '');
  if (doc.errors.length > 0)
    throw new JoinInputError(
      `${req.configFile} is not valid YAML (${doc.errors[0]!.message.split('\n')[0]}); fix or remove it`,
    );
  if (doc.contents === null) {
    doc.contents = doc.createNode({});
    doc.contents.commentBefore = ' Written by `drover-agent join`:';
  }
  if (!YAML.isMap(doc.contents))
    throw new JoinInputError(`${req.configFile}: expected a mapping at the top level; fix or remove it`);
  for (const path of [['nats'], ['nats', 'tls'], ['labels']]) {
    const node = doc.getIn(path, true);
    if (node === undefined || YAML.isMap(node)) continue;
    // `nats:` with nothing after it is an empty mapping to fill in, anything else is a mistake
    if (YAML.isScalar(node) && node.value === null) doc.setIn(path, doc.createNode({}));
    else throw new JoinInputError(`${req.configFile}: ${path.join('.')} must be a mapping; fix or remove it`);
  }
  doc.setIn(['nats', 'servers'], doc.createNode(req.servers, { flow: true }));
  doc.setIn(['joinToken'], req.token);
  if (req.address !== undefined) doc.setIn(['advertiseAddress'], req.address);
  for (const [k, v] of Object.entries(req.labels ?? {})) doc.setIn(['labels', k], v);
  if (req.ca !== undefined) doc.setIn(['nats', 'tls', 'ca'], req.ca);
  if (req.coordinatorKeyFingerprint !== undefined) {
    doc.setIn(['coordinatorKeyFingerprint'], req.coordinatorKeyFingerprint);
    doc.deleteIn(['insecureTrustFirstCoordinator']);
  }
  if (req.insecureTrustFirstCoordinator) {
    doc.setIn(['insecureTrustFirstCoordinator'], true);
    doc.deleteIn(['coordinatorKeyFingerprint']);
  }
  return doc.toString();
}

function defaultSystemctl(args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((done) => {
    execFile('systemctl', args, { timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      done({
        code,
        output: `${stdout}${stderr}${err && typeof err.code !== 'number' ? err.message : ''}`.trim(),
      });
    });
  });
}

/** `drover-agent join …`; returns the exit code: 0 done, 1 failed after checks, 2 bad input. */
export async function runJoin(argv: string[], deps: JoinDeps = {}): Promise<number> {
  const out = deps.stdout ?? ((t: string) => process.stdout.write(t));
  const err = deps.stderr ?? ((t: string) => process.stderr.write(t));
  let req: JoinRequest | 'help';
  let text: string;
  try {
    req = parseJoinArgs(argv);
    if (req === 'help') {
      out(JOIN_USAGE);
      return 0;
    }
    let existing: string | undefined;
    if (existsSync(req.configFile)) {
      try {
        existing = readFileSync(req.configFile, 'utf8');
      } catch (e) {
        throw new JoinInputError(`cannot read ${req.configFile}: ${(e as Error).message}`);
      }
    }
    text = mergeJoinConfig(existing, req);
    // Refuse now anything the agent would refuse at start-up (e.g. an unknown key already there).
    try {
      compileAgentOptions({ configFile: req.configFile, configText: text, env: {} });
    } catch (e) {
      throw new JoinInputError(`the resulting config would be invalid: ${(e as Error).message}`);
    }
  } catch (e) {
    if (e instanceof JoinInputError) {
      err(`drover-agent join: ${e.message}; nothing was written\n`);
      return 2;
    }
    throw e;
  }

  try {
    await writeFileAtomic(req.configFile, text, 0o600);
  } catch (e) {
    err(`drover-agent join: cannot write ${req.configFile}: ${(e as Error).message}\n`);
    return 1;
  }
  out(
    `drover-agent join: wrote ${req.configFile} (servers ${req.servers.join(',')}` +
      `${req.address ? `, address ${req.address}` : ''}` +
      `${req.labels ? `, labels ${Object.keys(req.labels).join(',')}` : ''}` +
      `${req.ca ? `, ca ${req.ca}` : ''}; mode 0600)\n`,
  );
  if (req.insecureTrustFirstCoordinator)
    err(
      'drover-agent join: WARNING: --insecure-trust-first-coordinator: this host trusts whichever coordinator key answers first; pin it with --coordinator-key-fingerprint instead\n',
    );

  if (!req.start) {
    out('drover-agent join: --no-start: the service was not touched\n');
    return 0;
  }
  const systemdRunning = deps.systemdRunning ?? (() => existsSync('/run/systemd/system'));
  if (!systemdRunning()) {
    out(
      'drover-agent join: systemd is not running here, so the service was not started; ' +
        `run \`drover-agent --config ${req.configFile}\` under your supervisor\n`,
    );
    return 0;
  }
  if (req.configFile !== DEFAULT_CONFIG_FILE)
    out(`drover-agent join: note: ${UNIT} reads ${DEFAULT_CONFIG_FILE}, not ${req.configFile}\n`);
  const systemctl = deps.systemctl ?? defaultSystemctl;
  // restart rather than `enable --now`: a host that joins again must pick up the new config, and
  // KillMode=process keeps the roles running while the agent restarts.
  for (const args of [
    ['enable', UNIT],
    ['restart', UNIT],
  ]) {
    const r = await systemctl(args);
    if (r.code !== 0) {
      err(`drover-agent join: systemctl ${args.join(' ')} failed (exit ${r.code}): ${r.output}\n`);
      err(
        `drover-agent join: the config is written; fix the problem and run: systemctl enable --now ${UNIT}\n`,
      );
      return 1;
    }
  }
  out(`drover-agent join: ${UNIT} enabled and started; follow it with: journalctl -u ${UNIT} -f\n`);
  return 0;
}
