import type { FastifyInstance } from 'fastify';
import { CertificateItem, errorResponses, List } from '../../../protocol/rest/schemas.js';
import { coordinatorError } from '../../errors.js';
import type { ApiContext } from '../context.js';

/** /v1/certificates: every leaf the coordinator issued (the newest per holder and profile) and the CAs. */
export async function registerCertificateRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  app.get(
    '/v1/certificates',
    {
      config: { auth: 'viewer' },
      schema: {
        tags: ['pki'],
        description:
          'The CAs, then every leaf certificate issued to a node (the newest per cluster, node, instance and profile), soonest to expire first, with `renewAt`: when its holder renews it. The same figures are the metric drover_certificate_expiry_seconds.',
        response: { 200: List(CertificateItem), ...errorResponses },
      },
    },
    async () => {
      if (!ctx.certificates)
        throw coordinatorError(
          'DROVER_ERR_NOT_READY',
          'the certificates are listed by the leading coordinator',
        );
      return { items: ctx.certificates.rows() };
    },
  );
}
