import { type ErrorSpec, TerminalError } from '../../protocol/index.js';

export const OPENPAI_ERRORS = {
  DROVER_ERR_OPENPAI_CONFIG: {
    status: 400,
    description:
      'The OpenPAI cluster configuration is invalid; `details.problems` lists each problem with the file, node and field.',
  },
} as const satisfies Record<string, ErrorSpec>;

export interface OpenPaiProblem {
  /** file the problem is in, e.g. `cluster-configuration.yaml` */
  file?: string;
  /** the node's hostname (or `machine-list[i]` when it has none) */
  node?: string;
  /** field path, e.g. `machine-list[2].k8s-role` or `kubernetes.load-balance-ip` */
  field: string;
  message: string;
}

function render(p: OpenPaiProblem): string {
  const where = [p.file, p.field].filter(Boolean).join(': ');
  return `${where}${p.node && !p.field.includes(`(${p.node})`) ? ` (node ${p.node})` : ''}: ${p.message}`;
}

/** Every problem found in one pass (up to 20); the message reads the first. Terminal. */
export class OpenPaiError extends TerminalError {
  readonly problems: OpenPaiProblem[];
  constructor(problems: OpenPaiProblem[]) {
    const first = problems[0] ?? { field: '', message: 'invalid OpenPAI configuration' };
    const more =
      problems.length > 1
        ? ` (and ${problems.length - 1} more problem${problems.length > 2 ? 's' : ''})`
        : '';
    super('DROVER_ERR_OPENPAI_CONFIG', `${render(first)}${more}`, {
      status: OPENPAI_ERRORS.DROVER_ERR_OPENPAI_CONFIG.status,
      details: { problems: problems.map((p) => ({ ...p, text: render(p) })) },
    });
    this.name = 'OpenPaiError';
    this.problems = problems;
  }
}
