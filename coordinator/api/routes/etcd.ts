import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import {
  EtcdMemberReplaceQuery,
  EtcdMemberReplaceResult,
  errorResponses,
} from '../../../protocol/rest/schemas.js';
import { type ApiContext, requireRole } from '../context.js';

/** /v1/etcd: replacing one etcd member now, or saying what that would do (`dryRun`). */
export async function registerEtcdRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  const { engine } = ctx;
  app.post<{ Params: { member: string }; Querystring: Static<typeof EtcdMemberReplaceQuery> }>(
    '/v1/etcd/members/:member/replace',
    {
      // a dry run changes nothing, so viewers may ask; replacing needs operator (checked below)
      config: { auth: 'viewer' },
      schema: {
        tags: ['roles'],
        description:
          'Replace one etcd member now (automated etcdfix): member remove and add through the surviving members, one change at a time, refused if it would break quorum. MEMBER is `etcd-0` or `etcd#0`. The answer says what the next reconcile makes of it (`verdict`). With `dryRun=true` nothing is done: no event, no reconcile, nothing remembered.',
        params: Type.Object({ member: Type.String({ minLength: 1, maxLength: 80 }) }),
        querystring: EtcdMemberReplaceQuery,
        response: { 200: EtcdMemberReplaceResult, ...errorResponses },
      },
    },
    async (req): Promise<EtcdMemberReplaceResult> => {
      const dryRun = req.query.dryRun === true;
      if (!dryRun) requireRole(req, 'operator', 'replacing an etcd member');
      const r = engine.repairEtcdMember(req.params.member, { dryRun });
      const what = `etcd member ${r.instanceId} (on ${r.nodeId})`;
      const message = !dryRun
        ? `replacing ${what}; watch \`drover events --watch\``
        : r.verdict.replace
          ? `dry run: ${what} would be replaced now; nothing was done`
          : `dry run: ${what} would not be replaced now: ${r.verdict.reason}; nothing was done`;
      return { ok: true, message, data: r };
    },
  );
}
