import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { ActionResult, errorResponses } from '../../../protocol/rest/schemas.js';
import { type ApiContext, operator } from '../context.js';

/** /v1/etcd: replacing one etcd member now. */
export async function registerEtcdRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  const { engine } = ctx;
  app.post<{ Params: { member: string } }>(
    '/v1/etcd/members/:member/replace',
    {
      config: operator,
      schema: {
        tags: ['roles'],
        description:
          'Replace one etcd member now (automated etcdfix): member remove and add through the surviving members, one change at a time, refused if it would break quorum. MEMBER is `etcd-0` or `etcd#0`.',
        params: Type.Object({ member: Type.String({ minLength: 1, maxLength: 80 }) }),
        response: { 200: ActionResult, ...errorResponses },
      },
    },
    async (req) => {
      const r = await engine.repairEtcdMember(req.params.member);
      return {
        ok: true,
        message: `replacing etcd member ${r.instanceId} (on ${r.nodeId}); watch \`drover events --watch\``,
        data: r,
      };
    },
  );
}
