/**
 * What a node reports about itself (its address, hostname, labels, NIC addresses) ends up in other
 * hosts' configuration: haproxy.cfg, flags, systemd units, kubeconfigs, certificates. These are the
 * rules that text must follow, as regular expressions the schemas use (so the exported JSON Schema
 * carries them) and as predicates renderers use to defend themselves against a record that never
 * went through the schemas (one stored before the rules existed).
 */
import { isIP } from 'node:net';

const OCTET = '(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])';
const IPV4 = `${OCTET}(?:\\.${OCTET}){3}`;
const H = '[0-9A-Fa-f]{1,4}';
const IPV6 = [
  `(?:${H}:){7}${H}`,
  `(?:${H}:){1,7}:`,
  `(?:${H}:){1,6}:${H}`,
  `(?:${H}:){1,5}(?::${H}){1,2}`,
  `(?:${H}:){1,4}(?::${H}){1,3}`,
  `(?:${H}:){1,3}(?::${H}){1,4}`,
  `(?:${H}:){1,2}(?::${H}){1,5}`,
  `${H}:(?::${H}){1,6}`,
  `:(?:(?::${H}){1,7}|:)`,
  // six groups then an IPv4 tail (`::ffff:10.0.0.1`), `::` anywhere among them
  `(?:${H}:){6}${IPV4}`,
  `::(?:${H}:){0,5}${IPV4}`,
  ...[1, 2, 3, 4, 5].map((k) => `(?:${H}:){${k}}:(?:${H}:){0,${5 - k}}${IPV4}`),
].join('|');

/** An IPv4 address (dotted quad, no leading zeros) or an IPv6 address: no zone (`%eth0`), no brackets, no whitespace. */
export const IP_ADDRESS_PATTERN = `^(?:${IPV4}|${IPV6})$`;
const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
/**
 * An RFC 1123 host name: dot-separated labels of 1–63 letters, digits and `-`, neither starting
 * nor ending with `-`, 253 characters at most, no trailing dot. Upper case is accepted on the wire
 * and lowered by the coordinator (host names are case-insensitive).
 */
export const HOSTNAME_PATTERN = `^(?=.{1,253}$)${LABEL}(?:\\.${LABEL})*$`;
const K8S_NAME = '[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?';
const DNS_SUBDOMAIN = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*';
/** A Kubernetes label key: `[prefix/]name`, prefix a DNS subdomain of at most 253, name at most 63. */
export const LABEL_KEY_PATTERN = `^(?:(?=[^/]{1,253}/)${DNS_SUBDOMAIN}/)?${K8S_NAME}$`;
/** A Kubernetes label value: empty, or at most 63 of `[A-Za-z0-9_.-]` starting and ending alphanumeric. */
export const LABEL_VALUE_PATTERN = `^(?:${K8S_NAME})?$`;
/** At most this many labels an agent reports. */
export const MAX_AGENT_LABELS = 64;

const ipRe = new RegExp(IP_ADDRESS_PATTERN);
const hostRe = new RegExp(HOSTNAME_PATTERN);
const keyRe = new RegExp(LABEL_KEY_PATTERN);
const valueRe = new RegExp(LABEL_VALUE_PATTERN);

/** True for an IP address as `IP_ADDRESS_PATTERN` describes it (and as node:net agrees). */
export function isIpAddress(s: unknown): s is string {
  return typeof s === 'string' && s.length <= 45 && ipRe.test(s) && isIP(s) !== 0;
}

/** True for an RFC 1123 host name (any case). */
export function isHostname(s: unknown): s is string {
  return typeof s === 'string' && hostRe.test(s);
}

export function isLabelKey(s: unknown): s is string {
  return typeof s === 'string' && s.length <= 317 && keyRe.test(s);
}

export function isLabelValue(s: unknown): s is string {
  return typeof s === 'string' && s.length <= 63 && valueRe.test(s);
}

/** The first reason a node's address and hostname cannot be rendered, or undefined when both are fine. */
export function nodeTextProblem(node: {
  id?: string;
  address: unknown;
  hostname: unknown;
}): { field: 'address' | 'hostname'; message: string } | undefined {
  const who = node.id ? `node ${node.id}` : 'node';
  if (!isIpAddress(node.address))
    return {
      field: 'address',
      message: `${who}: address ${JSON.stringify(node.address)} is not an IP address`,
    };
  if (!isHostname(node.hostname))
    return {
      field: 'hostname',
      message: `${who}: hostname ${JSON.stringify(node.hostname)} is not an RFC 1123 host name`,
    };
  return undefined;
}

/**
 * The largest report a node may send, per message, checked before it is parsed. The bus already
 * cuts any node message at 256 KiB (its user JWT's payload limit); these are tighter where a
 * report has no reason to be big. Facts of a host with dozens of NICs and disks are a few KiB.
 */
export const NODE_MESSAGE_MAX_BYTES: Readonly<Record<string, number>> = {
  Register: 64 * 1024,
  FactsUpdate: 64 * 1024,
  Heartbeat: 4 * 1024,
  PlanFetch: 4 * 1024,
  CertificateRequest: 32 * 1024,
  SnapshotChunkRequest: 4 * 1024,
};
