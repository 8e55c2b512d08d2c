/**
 * Node labels: who sets which, and how they merge. Pure; the engine persists the result.
 *
 * A node's effective labels (`NodeRecord.labels`, what selectors and cluster membership read) are
 *   the agent's labels (its config / `--labels`, sent at every registration)
 *   + fact-derived labels (`drover.dev/arch`, `drover.dev/cpu-cores`, …, recomputed from facts)
 *   + operator labels (`drover label`, persisted in `NodeRecord.operatorLabels`), which win.
 * A registration or a facts update recomputes the first two and never touches the operator's.
 */
import type { Labels } from '../protocol/index.js';
import { coordinatorError } from './errors.js';
import type { NodeRecord } from './model.js';

/** The label that puts a node into a cluster (the topology named the same). */
export const CLUSTER_LABEL = 'drover.dev/cluster';
/** The cluster of a node without a cluster label, and of a topology named `default`. */
export const DEFAULT_CLUSTER = 'default';

const NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

/** Why `key` is not a valid (Kubernetes-syntax) label key, or undefined. */
export function labelKeyError(key: string): string | undefined {
  if (key.length === 0) return 'the key is empty';
  const slash = key.indexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined) {
    if (prefix.length === 0) return `key ${JSON.stringify(key)} has an empty prefix before "/"`;
    if (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))
      return `key ${JSON.stringify(key)}: the prefix must be a DNS subdomain (lower-case letters, digits, "-" and ".", at most 253 characters)`;
  }
  if (name.length === 0 || name.length > 63 || !NAME.test(name))
    return `key ${JSON.stringify(key)}: the name must be 1–63 characters of letters, digits, "-", "_" and ".", starting and ending with a letter or digit`;
  return undefined;
}

/** Why `value` is not a valid label value, or undefined. */
export function labelValueError(key: string, value: unknown): string | undefined {
  if (typeof value !== 'string') return `the value of ${JSON.stringify(key)} must be a string`;
  if (value.length > 63 || !VALUE.test(value))
    return `the value ${JSON.stringify(value)} of ${JSON.stringify(key)} must be at most 63 characters of letters, digits, "-", "_" and ".", starting and ending with a letter or digit`;
  if (key === CLUSTER_LABEL && value === '')
    return `${CLUSTER_LABEL} must name a cluster; remove it with "${CLUSTER_LABEL}-" to return the node to cluster ${DEFAULT_CLUSTER}`;
  return undefined;
}

/** Keys the operator may not set: the fact-derived `drover.dev/*` labels (all but the cluster label). */
const reserved = (key: string) => key.startsWith('drover.dev/') && key !== CLUSTER_LABEL;

export interface LabelChange {
  set: Labels;
  remove: string[];
}

/**
 * Validates a `drover label` request against a node and returns its new operator labels.
 * Throws DROVER_ERR_BAD_REQUEST naming the first problem; nothing is applied then.
 */
export function nextOperatorLabels(rec: NodeRecord, change: unknown): Labels {
  const bad = (message: string, field: string) =>
    coordinatorError('DROVER_ERR_BAD_REQUEST', message, { field, nodeId: rec.id });
  if (typeof change !== 'object' || change === null || Array.isArray(change))
    throw bad('the body must be an object {"set": {KEY: VALUE}, "remove": [KEY]}', '/');
  const { set = {}, remove = [], ...rest } = change as Record<string, unknown>;
  const extra = Object.keys(rest)[0];
  if (extra !== undefined)
    throw bad(`unknown field ${JSON.stringify(extra)}: use "set" and "remove"`, `/${extra}`);
  if (typeof set !== 'object' || set === null || Array.isArray(set))
    throw bad('"set" must be an object of label keys to values', '/set');
  if (!Array.isArray(remove)) throw bad('"remove" must be an array of label keys', '/remove');
  const setEntries = Object.entries(set as Record<string, unknown>);
  if (setEntries.length === 0 && remove.length === 0)
    throw bad('nothing to change: give KEY=VALUE to set or KEY- to remove', '/');
  for (const [k, v] of setEntries) {
    const why = labelKeyError(k) ?? labelValueError(k, v);
    if (why) throw bad(`invalid label: ${why}`, `/set/${k}`);
    if (reserved(k))
      throw bad(
        `label ${k} is derived from the node's facts and cannot be set; only ${CLUSTER_LABEL} may be set under drover.dev/`,
        `/set/${k}`,
      );
  }
  const agent = agentLabelsOf(rec);
  const ops = rec.operatorLabels ?? {};
  for (const [i, k] of remove.entries()) {
    if (typeof k !== 'string') throw bad('"remove" must be an array of label keys', `/remove/${i}`);
    const why = labelKeyError(k);
    if (why) throw bad(`invalid label: ${why}`, `/remove/${i}`);
    if (k in (set as object)) throw bad(`label ${k} is both set and removed`, `/remove/${i}`);
    if (Object.hasOwn(ops, k)) continue;
    if (Object.hasOwn(agent, k))
      throw bad(
        `label ${k} comes from the agent's configuration on ${rec.id}; change it there, or override its value with ${k}=VALUE`,
        `/remove/${i}`,
      );
    if (reserved(k))
      throw bad(`label ${k} is derived from the node's facts and cannot be removed`, `/remove/${i}`);
    throw bad(`node ${rec.id} has no label ${k}`, `/remove/${i}`);
  }
  const next: Labels = { ...ops, ...(set as Labels) };
  for (const k of remove as string[]) delete next[k];
  return next;
}

/**
 * The labels the node's agent configured. Records written before `agentLabels` was kept hold them
 * only mixed into `labels`: there they are every label but the fact-derived `drover.dev/*` ones.
 */
export function agentLabelsOf(rec: Pick<NodeRecord, 'agentLabels' | 'labels'>): Labels {
  return (
    rec.agentLabels ??
    Object.fromEntries(
      Object.entries(rec.labels).filter(([k]) => !k.startsWith('drover.dev/') || k === CLUSTER_LABEL),
    )
  );
}

/** The effective labels of a node: agent labels, then derived, then the operator's. */
export function mergeLabels(agent: Labels, derived: Labels, operator: Labels | undefined): Labels {
  return { ...agent, ...derived, ...operator };
}

/**
 * The cluster a node belongs to, explicitly: its `drover.dev/cluster` label (an operator's
 * `drover label` overrides the agent's configured one), else `default`. Never inferred from which
 * topologies exist, so applying a topology never moves a node between clusters.
 */
export function clusterOfRecord(rec: Pick<NodeRecord, 'labels'>): string {
  return rec.labels[CLUSTER_LABEL] || DEFAULT_CLUSTER;
}
