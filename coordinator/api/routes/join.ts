import type { FastifyInstance } from 'fastify';
import { ErrorBody, JoinCommandView } from '../../../protocol/rest/schemas.js';
import { coordinatorError } from '../../errors.js';
import { agentNatsUrls, formatJoinCommand, isLoopbackHost } from '../../join-info.js';

/** What the daemon knows about joining (app.ts `ApiDeps.join`). */
export interface JoinInfoSource {
  natsServers: string[];
  joinToken?: string;
  /** nats.tls.ca: a path on the coordinator host, to be copied to the same path on the new host */
  caFile?: string;
  coordinatorKeyFingerprint: string;
}

/** `GET /v1/join-command` (admin): what `drover join-command` prints, from anywhere. */
export async function registerJoinRoutes(
  app: FastifyInstance,
  join: JoinInfoSource | undefined,
): Promise<void> {
  app.get(
    '/v1/join-command',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['nodes'],
        description:
          "The command that joins a host to this coordinator's fleet (`drover-agent join --server … --token … --coordinator-key-fingerprint …`). A loopback NATS host is replaced by the address this request reached the API at (kept when that is loopback too, as in the lab). It holds the join token, hence admin.",
        response: { 200: JoinCommandView, 409: ErrorBody, 501: ErrorBody },
      },
    },
    async (req) => {
      if (!join)
        throw coordinatorError(
          'DROVER_ERR_NOT_IMPLEMENTED',
          'this coordinator does not publish its join command',
        );
      if (!join.joinToken)
        throw coordinatorError(
          'DROVER_ERR_ILLEGAL_STATE',
          'this coordinator has no join token (new nodes wait for `drover approve`); set joinToken or joinTokenFile in its config',
        );
      const notes: string[] = [];
      // the address the caller reached us at is one it can route to; NATS is most likely there too
      const local = (req.socket.localAddress ?? '').replace(/^::ffff:/, '');
      const reached = local && !isLoopbackHost(local) ? [local.includes(':') ? `[${local}]` : local] : [];
      const natsUrl = agentNatsUrls(join.natsServers, reached, (t) => notes.push(t), { keepLoopback: true });
      if (join.caFile)
        notes.push(`copy ${join.caFile} from the coordinator host to the same path on the new host first`);
      const parts = {
        natsUrl,
        joinToken: join.joinToken,
        caFile: join.caFile,
        coordinatorKeyFingerprint: join.coordinatorKeyFingerprint,
      };
      return { command: formatJoinCommand(parts), ...parts, notes };
    },
  );
}
