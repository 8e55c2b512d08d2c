/**
 * The lab's errors. The lab is a command-line tool that never answers over HTTP, so its codes map
 * to `drover` exit codes rather than HTTP statuses (the CLI's convention: 1 failed, 2 usage or
 * invalid input, 3 not found, 5 timed out). docs/lab.md lists every code; a unit test checks it.
 */
export interface LabErrorSpec {
  readonly exit: 1 | 2 | 3 | 5;
  readonly description: string;
}

export const LAB_ERROR_CODES = {
  DROVER_ERR_LAB_USAGE: {
    exit: 2,
    description: 'A `drover lab` command line is malformed: unknown flag, missing value, bad node count.',
  },
  DROVER_ERR_LAB_MISSING_PACKAGES: {
    exit: 1,
    description:
      'A program the lab needs (nats-server, etcd, haproxy, ip) is not installed; the message names the Debian package.',
  },
  DROVER_ERR_LAB_NOT_ROOT: {
    exit: 1,
    description: '`--netns` needs root (network namespaces, veths and a bridge are created).',
  },
  DROVER_ERR_LAB_DIR_UNREACHABLE: {
    exit: 1,
    description:
      'The lab directory sits under a directory other users cannot search (e.g. /root, mode 0700): etcd and haproxy run as their own system users and could not reach their files. Use `--dir` under a searchable directory, or `chmod o+x` the one named.',
  },
  DROVER_ERR_LAB_EXISTS: {
    exit: 1,
    description: 'A lab is already running in this directory; `drover lab down --dir DIR` first.',
  },
  DROVER_ERR_LAB_NOT_FOUND: {
    exit: 3,
    description:
      'No lab state (lab.json) in the directory: `drover lab up` has not run there, or `lab down` removed it.',
  },
  DROVER_ERR_LAB_STATE: {
    exit: 1,
    description: 'lab.json is unreadable or not a lab state file; nothing was changed.',
  },
  DROVER_ERR_LAB_NODE_NOT_FOUND: {
    exit: 3,
    description: 'The lab has no node of that name; `drover lab status` lists them.',
  },
  DROVER_ERR_LAB_ROLE_NOT_RUNNING: {
    exit: 3,
    description: 'The node runs no process of that role (by its agent pidfiles).',
  },
  DROVER_ERR_LAB_START: {
    exit: 1,
    description:
      'A lab process (nats-server, coordinator or an agent) exited during start-up; the message names its log.',
  },
  DROVER_ERR_LAB_TIMEOUT: {
    exit: 5,
    description:
      'The lab did not reach the awaited state in time (registration or convergence); the message says what was missing.',
  },
  DROVER_ERR_LAB_API: {
    exit: 1,
    description: 'The coordinator API refused a lab request (applying the topology, reading status).',
  },
  DROVER_ERR_LAB_NETNS: {
    exit: 1,
    description: 'An `ip` command that creates or changes the lab network failed; the message quotes it.',
  },
  DROVER_ERR_LAB_MODE: {
    exit: 2,
    description:
      'The host or service is not in a state the command applies to (`heal` of a node that is not partitioned, `start` of a running service).',
  },
  DROVER_ERR_LAB_LEFTOVERS: {
    exit: 1,
    description:
      '`lab down` could not stop a process or remove a namespace or link; it lists them and keeps lab.json so a retry can.',
  },
  DROVER_ERR_LAB_LOCKED: {
    exit: 1,
    description: 'Another `drover lab` command holds this lab directory; try again when it finishes.',
  },
} as const satisfies Record<string, LabErrorSpec>;

export type LabErrorCode = keyof typeof LAB_ERROR_CODES;

export class LabError extends Error {
  readonly code: LabErrorCode;
  readonly exit: number;
  readonly hint: string | undefined;
  constructor(code: LabErrorCode, message: string, opts: { hint?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'LabError';
    this.code = code;
    this.exit = LAB_ERROR_CODES[code].exit;
    this.hint = opts.hint;
  }
}

export function labError(
  code: LabErrorCode,
  message: string,
  opts?: { hint?: string; cause?: unknown },
): LabError {
  return new LabError(code, message, opts);
}
