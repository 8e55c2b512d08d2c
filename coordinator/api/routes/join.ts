import type { Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { parseDuration } from '../../../lib/duration.js';
import {
  ErrorBody,
  errorResponses,
  JoinCommandView,
  JoinTokenCreate,
  JoinTokenCreated,
  JoinTokenParams,
  JoinTokenView,
  List,
} from '../../../protocol/rest/schemas.js';
import { coordinatorError } from '../../errors.js';
import type { EventLog } from '../../events.js';
import { agentNatsUrls, formatJoinCommand, isLoopbackHost } from '../../join-info.js';
import type { JoinTokenStore } from '../../join-tokens.js';
import { operator } from '../context.js';

/** What the daemon knows about joining (app.ts `ApiDeps.join`). */
export interface JoinInfoSource {
  natsServers: string[];
  /** nats.tls.ca: a path on the coordinator host, to be copied to the same path on the new host */
  caFile?: string;
  coordinatorKeyFingerprint: string;
  /** the join tokens; the routes answer 503 without (a coordinator without bus authorisation) */
  tokens?: JoinTokenStore;
}

/** `1h`, `30m`, `7d`, `1d12h`: a duration with units (a bare number is refused: ms or s?). */
export function parseTtl(raw: string): number | undefined {
  const s = raw.trim();
  if (/^\d+$/.test(s)) return undefined;
  const m = /^(\d+)d(.*)$/.exec(s);
  if (!m) return parseDuration(s);
  const rest = m[2] ? parseDuration(m[2]) : 0;
  return rest === undefined ? undefined : Number(m[1]) * 86_400_000 + rest;
}

function tokensOf(join: JoinInfoSource | undefined): JoinTokenStore {
  if (!join?.tokens)
    throw coordinatorError(
      'DROVER_ERR_BUS_UNAVAILABLE',
      'this coordinator runs without bus authorisation, so it has no join tokens (start it with its bus directory, see docs/security.md)',
    );
  return join.tokens;
}

/** The NATS URL agents dial: a loopback host is replaced by the address the request reached us at. */
function natsUrlFor(req: FastifyRequest, join: JoinInfoSource, notes: string[]): string {
  const local = (req.socket.localAddress ?? '').replace(/^::ffff:/, '');
  const reached = local && !isLoopbackHost(local) ? [local.includes(':') ? `[${local}]` : local] : [];
  return agentNatsUrls(join.natsServers, reached, (t) => notes.push(t), { keepLoopback: true });
}

/** `GET /v1/join-command` and `/v1/join-tokens` (create, list, revoke). */
export async function registerJoinRoutes(
  app: FastifyInstance,
  join: JoinInfoSource | undefined,
  events: EventLog,
): Promise<void> {
  const who = (req: FastifyRequest) => req.token?.name ?? '?';

  app.get(
    '/v1/join-command',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['nodes'],
        description:
          "The command that joins one host to this coordinator's fleet (`drover-agent join --server … --token … --coordinator-key-fingerprint …`), with a fresh single-use join token valid 24 h. A loopback NATS host is replaced by the address this request reached the API at (kept when that is loopback too, as in the lab).",
        response: { 200: JoinCommandView, 409: ErrorBody, 501: ErrorBody, 503: ErrorBody },
      },
    },
    async (req) => {
      if (!join)
        throw coordinatorError(
          'DROVER_ERR_NOT_IMPLEMENTED',
          'this coordinator does not publish its join command',
        );
      const tokens = tokensOf(join);
      const notes: string[] = [];
      const natsUrl = natsUrlFor(req, join, notes);
      const created = await tokens.create({ description: `drover join-command by ${who(req)}` });
      events.emit({
        kind: 'join-token.created',
        severity: 'info',
        message: `join token ${created.id} (1 use, expires ${created.expiresAt}) created for a join command by ${who(req)}`,
      });
      notes.push(`the token joins one host and expires at ${created.expiresAt}`);
      if (join.caFile)
        notes.push(`the token carries the bus CA; ${join.caFile} on the coordinator host is the same file`);
      const parts = {
        natsUrl,
        joinToken: created.token,
        coordinatorKeyFingerprint: join.coordinatorKeyFingerprint,
      };
      return {
        command: formatJoinCommand(parts),
        ...parts,
        tokenId: created.id,
        expiresAt: created.expiresAt,
        notes,
      };
    },
  );

  app.get(
    '/v1/join-tokens',
    {
      config: operator,
      schema: {
        tags: ['tokens'],
        description: 'Join tokens, with no secrets: id, description, expiry, uses, state.',
        response: { 200: List(JoinTokenView), ...errorResponses },
      },
    },
    async () => ({ items: tokensOf(join).list() }),
  );

  app.post<{ Body: Static<typeof JoinTokenCreate> }>(
    '/v1/join-tokens',
    {
      config: operator,
      schema: {
        tags: ['tokens'],
        description: 'Create a join token (default: one use, 24 h). The token string is in this answer only.',
        body: JoinTokenCreate,
        response: { 201: JoinTokenCreated, ...errorResponses },
      },
    },
    async (req, reply) => {
      const tokens = tokensOf(join);
      const b = req.body ?? {};
      let ttlMs: number | undefined;
      if (b.ttl !== undefined) {
        ttlMs = parseTtl(b.ttl);
        if (ttlMs === undefined)
          throw coordinatorError(
            'DROVER_ERR_BAD_REQUEST',
            `ttl: ${JSON.stringify(b.ttl)} is not a duration with units (e.g. 30m, 1h, 7d)`,
            { field: 'ttl' },
          );
      }
      const created = await tokens.create({
        ttlMs,
        uses: b.uses,
        description: b.description,
        requireApproval: b.requireApproval,
      });
      events.emit({
        kind: 'join-token.created',
        severity: 'info',
        message: `join token ${created.id} (${created.uses} use(s), expires ${created.expiresAt}${created.requireApproval ? ', hosts wait for approval' : ''}) created by ${who(req)}`,
      });
      const notes: string[] = [];
      const joinCommand = formatJoinCommand({
        natsUrl: natsUrlFor(req, join!, notes),
        joinToken: created.token,
        coordinatorKeyFingerprint: join!.coordinatorKeyFingerprint,
      });
      return reply
        .code(201)
        .send({ ...created, joinCommand, coordinatorKeyFingerprint: join!.coordinatorKeyFingerprint });
    },
  );

  app.delete<{ Params: Static<typeof JoinTokenParams> }>(
    '/v1/join-tokens/:id',
    {
      config: operator,
      schema: {
        tags: ['tokens'],
        description:
          'Revoke a join token: it joins no host from now on, and its bootstrap user is cut off the bus.',
        params: JoinTokenParams,
        response: { 200: JoinTokenView, ...errorResponses },
      },
    },
    async (req) => {
      const gone = await tokensOf(join).revoke(req.params.id);
      events.emit({
        kind: 'join-token.revoked',
        severity: 'info',
        message: `join token ${gone.id} revoked by ${who(req)}`,
      });
      return gone;
    },
  );
}
