import { readFileSync } from 'node:fs';
import type { Event } from '../protocol/index.js';
import { type AssignmentView, describeFailure, RestClient, type RestError } from '../protocol/rest/client.js';
import type {
  InstanceView,
  JoinTokenCreate,
  JoinTokenCreated,
  NodeView,
  RoleView,
  StatusView,
} from '../protocol/rest/schemas.js';
import { labError } from './errors.js';

/**
 * The coordinator API as the lab calls it: the shared REST client (protocol/rest/client.ts) with
 * the admin token the coordinator wrote on first start; its failures become DROVER_ERR_LAB_API.
 * The views are the API's own (protocol/rest/schemas.ts).
 */
export type LabInstanceView = InstanceView;
export type LabNodeView = NodeView;
export type LabRoleView = RoleView;
export type LabStatusView = StatusView;
export type LabAssignment = AssignmentView;
export type LabEvent = Event;

function readToken(tokenFile: string): string {
  try {
    return readFileSync(tokenFile, 'utf8').trim();
  } catch (err) {
    throw labError(
      'DROVER_ERR_LAB_API',
      `cannot read the admin token ${tokenFile}: ${(err as Error).message}`,
    );
  }
}

export class LabApi extends RestClient {
  constructor(url: string, tokenFile: string, timeoutMs = 5000) {
    super({ server: url, token: () => readToken(tokenFile), requestTimeoutMs: timeoutMs });
  }

  /** A join token for one lab host (`POST /v1/join-tokens`), with the key fingerprint to pin. */
  createJoinToken(body: JoinTokenCreate): Promise<JoinTokenCreated> {
    return this.post<JoinTokenCreated>('/v1/join-tokens', body);
  }

  /** The coordinators and who leads (`GET /v1/coordinators`). */
  async coordinators(): Promise<
    Array<{ id: string; role: string; api?: string; epoch?: number; leaseAgeMs?: number }>
  > {
    return (
      await this.get<{
        items: Array<{ id: string; role: string; api?: string; epoch?: number; leaseAgeMs?: number }>;
      }>('/v1/coordinators')
    ).items;
  }

  protected override failed(err: RestError): Error {
    const f = err.failure;
    const what =
      f.kind === 'status'
        ? `${err.method} ${err.path} ${describeFailure(f)}`
        : `${err.method} ${this.options.server}${err.path}: ${describeFailure(f)}`;
    return labError('DROVER_ERR_LAB_API', what, { cause: err });
  }
}
