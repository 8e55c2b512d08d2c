/**
 * One listening socket for a coordinator whose API apps come and go: coordinator HA switches
 * between a follower's app and a leader term's app (coordinator/ha/runner.ts), and the port must
 * not close in between (a client would see "connection refused" on every coordinator that is
 * changing mode). Each app is built and made ready without listening; this server hands every
 * request to the current one (`FastifyInstance.routing`). Between two apps a request gets 421
 * DROVER_ERR_NOT_LEADER naming no leader, which clients treat as an election under way.
 */
import {
  createServer as createHttp,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttps } from 'node:https';
import type { FastifyInstance } from 'fastify';

export interface SharedListener {
  /** base URL, e.g. http://127.0.0.1:7480 */
  readonly url: string;
  readonly https: boolean;
  use(app: FastifyInstance): void;
  release(app: FastifyInstance): void;
  close(): Promise<void>;
}

export async function openSharedListener(o: {
  host: string;
  port: number;
  tls?: { key: Buffer; cert: Buffer };
  self: string;
}): Promise<SharedListener> {
  let current: FastifyInstance | undefined;
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const app = current;
    if (app) {
      app.routing(req, res);
      return;
    }
    res.writeHead(421, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        code: 'DROVER_ERR_NOT_LEADER',
        message: `coordinator ${o.self} is changing mode (a leader election); retry in a moment`,
        details: { self: o.self },
      }),
    );
  };
  const server: Server = o.tls
    ? createHttps({ key: o.tls.key, cert: o.tls.cert }, handler)
    : createHttp(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : o.port;
  const h = o.host.includes(':') ? `[${o.host}]` : o.host === '0.0.0.0' ? '127.0.0.1' : o.host;
  return {
    url: `${o.tls ? 'https' : 'http'}://${h}:${port}`,
    https: !!o.tls,
    use: (app) => {
      current = app;
    },
    release: (app) => {
      if (current === app) current = undefined;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
