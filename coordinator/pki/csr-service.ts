/**
 * The coordinator's answer to an agent's CSR (`subjects.csr(nodeId)`, CertificateRequest →
 * CertificateReply). It looks up, from its own state and never from the request, the node (approved,
 * not removed), the instance (assigned to that node), the certificate the node's plan asks for,
 * and the cluster context (the API endpoint as the plans render it), then lets `ClusterPki.signCsr`
 * check the CSR against them. Any refusal is a `csr-reply` with `ok: false` and the code.
 */
import type { Logger } from '../../lib/logger.js';
import {
  type CertificateReply,
  type CertificateRequest,
  DroverError,
  type NodePlan,
  PROTOCOL_VERSION,
} from '../../protocol/index.js';
import { apiEndpointFor, type PkiRenderOptions, pkiContextFor, pkiNodeFor } from '../catalog/index.js';
import type { Assignment, NodeRecord } from '../model.js';
import type { Topology } from '../topology/index.js';
import type { IssuedLeaf } from './cert-book.js';
import type { ClusterPki } from './cluster-pki.js';
import { pkiError } from './errors.js';

/** What the signer reads from the engine (a narrow port; the Engine implements it). */
export interface CsrEngine {
  nodes: { get(id: string): NodeRecord | undefined };
  clusterOf(rec: NodeRecord): string;
  topology(cluster?: string): Topology | undefined;
  currentAssignments(cluster: string): Assignment[];
  placementNodes(cluster: string): NodeRecord[];
  desiredPlan(nodeId: string): NodePlan | undefined;
}

export type CsrSigner = (req: CertificateRequest) => Promise<CertificateReply>;

/** Builds the CSR handler the NATS adapter calls. */
export function csrSigner(
  pki: ClusterPki,
  engine: CsrEngine,
  opts: {
    logger?: Logger;
    render?: Pick<PkiRenderOptions, 'extraApiserverSans'>;
    /** every leaf signed (the certificate book: expiry metrics, `drover get certificates`) */
    onIssued?: (leaf: IssuedLeaf) => void;
  } = {},
): CsrSigner {
  return async (req) => {
    try {
      const { issued, cluster } = await sign(pki, engine, req, opts.render?.extraApiserverSans);
      opts.onIssued?.({
        cluster,
        nodeId: req.nodeId,
        instanceId: req.instanceId,
        profile: req.profile,
        serialNumber: issued.serialNumber,
        notBefore: issued.notBefore,
        notAfter: issued.notAfter,
      });
      return {
        v: PROTOCOL_VERSION,
        type: 'csr-reply',
        ok: true,
        certPem: issued.certPem,
        caPem: issued.caPem,
      };
    } catch (err) {
      const e =
        err instanceof DroverError
          ? err
          : new DroverError('DROVER_ERR_INTERNAL', (err as Error)?.message ?? String(err));
      opts.logger?.warn(
        {
          nodeId: req.nodeId,
          instanceId: req.instanceId,
          profile: req.profile,
          code: e.code,
          err: e.message,
        },
        'CSR refused',
      );
      return {
        v: PROTOCOL_VERSION,
        type: 'csr-reply',
        ok: false,
        error: { code: e.code, message: e.message },
      };
    }
  };
}

async function sign(pki: ClusterPki, engine: CsrEngine, req: CertificateRequest, extraSans?: string[]) {
  const node = engine.nodes.get(req.nodeId);
  if (!node?.approved || node.state === 'Removed')
    throw pkiError('DROVER_ERR_CSR_ROLE_NOT_ASSIGNED', `node ${req.nodeId} is not an approved node`, {
      nodeId: req.nodeId,
    });
  const cluster = engine.clusterOf(node);
  const topology = engine.topology(cluster);
  const assignments = engine.currentAssignments(cluster);
  const mine = assignments.filter((a) => a.nodeId === node.id);
  const inst = mine.find((a) => a.instanceId === req.instanceId);
  if (!topology || !inst)
    throw pkiError(
      'DROVER_ERR_CSR_ROLE_NOT_ASSIGNED',
      `instance ${req.instanceId} is not assigned to node ${node.id} (assigned: ${mine.map((a) => a.instanceId).join(', ') || 'none'})`,
      { nodeId: node.id, instanceId: req.instanceId },
    );
  // only what the node's plan asks for: a role may hold profiles its plan does not use
  const planned = engine
    .desiredPlan(node.id)
    ?.instances.find((i) => i.id === req.instanceId)
    ?.certificates?.some((c) => c.profile === req.profile);
  if (!planned)
    throw pkiError(
      'DROVER_ERR_CSR_PROFILE_NOT_ALLOWED',
      `the plan of ${req.instanceId} on ${node.id} has no ${req.profile} certificate`,
      { instanceId: req.instanceId, profile: req.profile },
    );
  const nodes = new Map(engine.placementNodes(cluster).map((n) => [n.id, n]));
  const api = apiEndpointFor(topology, assignments, nodes);
  const pn = pkiNodeFor(node);
  const issued = await pki.signCsr({
    csrPem: req.csrPem,
    nodeId: node.id,
    hostname: pn.hostname,
    nodeAddresses: pn.addresses,
    profile: req.profile,
    instanceRole: inst.role,
    assignedRoles: [...new Set(mine.map((a) => a.role))],
    context: pkiContextFor(topology, api, extraSans),
  });
  return { issued, cluster };
}
