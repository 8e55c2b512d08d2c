import type { FastifyInstance } from 'fastify';
import { DASHBOARD_HTML, DOCS_HTML } from '../../web/dashboard.js';

/** Public, data-free pages: the dashboard shell, the API docs page and the OpenAPI document. */
export async function registerWeb(app: FastifyInstance): Promise<void> {
  const pub = { auth: 'public' as const };
  const html = (body: string) => async (_req: unknown, reply: import('fastify').FastifyReply) =>
    reply
      .type('text/html; charset=utf-8')
      .header(
        'content-security-policy',
        "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'",
      )
      .send(body);
  app.get('/', { config: pub, schema: { hide: true } }, html(DASHBOARD_HTML));
  app.get('/docs', { config: pub, schema: { hide: true } }, html(DOCS_HTML));
  app.get('/docs/json', { config: pub, schema: { hide: true } }, async () => app.swagger());
}
