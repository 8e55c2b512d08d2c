import { type ErrorSpec, TerminalError } from '../../protocol/index.js';

export const TOPOLOGY_ERRORS = {
  DROVER_ERR_TOPOLOGY_INVALID: {
    status: 400,
    description:
      'The topology is not valid YAML/JSON, does not match the schema, or is inconsistent; `details.path` names the field (e.g. `roles.kube-apiserver.replicas`).',
  },
} as const satisfies Record<string, ErrorSpec>;

export interface TopologyProblem {
  /** dotted field path, e.g. `roles.kube-apiserver.replicas` or `roles.etcd.nodeSelector["drover.dev/arch"]` */
  path: string;
  message: string;
  /** the path as keys and indexes, e.g. `['roles', 'etcd', 'pins', 2]` */
  segments?: Array<string | number>;
}

/**
 * A topology that cannot be used. `path` names the first offending field and `problems` lists up
 * to 20 of them; the message reads `source: path: what is wrong`. Terminal: retrying cannot help.
 */
export class TopologyError extends TerminalError {
  readonly path: string;
  readonly problems: TopologyProblem[];
  constructor(problems: TopologyProblem[], source?: string, extra: { line?: number; column?: number } = {}) {
    const first = problems[0] ?? { path: '', message: 'invalid topology' };
    const where = [source, first.path].filter(Boolean).join(': ');
    const more =
      problems.length > 1
        ? ` (and ${problems.length - 1} more problem${problems.length > 2 ? 's' : ''})`
        : '';
    super('DROVER_ERR_TOPOLOGY_INVALID', `${where ? `${where}: ` : ''}${first.message}${more}`, {
      status: 400,
      details: { path: first.path, source, problems, ...extra },
    });
    this.name = 'TopologyError';
    this.path = first.path;
    this.problems = problems;
  }
}
