import swagger from '@fastify/swagger';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, LogController } from 'fastify';
import { type Clock, systemClock } from '../../lib/clock.js';
import type { Logger } from '../../lib/logger.js';
import { DROVER_VERSION } from '../../lib/version.js';
import { DroverError } from '../../protocol/index.js';
import type { PurgeLists } from '../engine/purge-lists.js';
import type { Engine } from '../engine.js';
import { COORDINATOR_ERRORS, coordinatorError } from '../errors.js';
import type { EtcdRestore } from '../etcd/restore.js';
import type { SnapshotBook } from '../etcd/snapshot-book.js';
import type { HaView } from '../ha/view.js';
import type { CertificateBook } from '../pki/cert-book.js';
import type { ClusterPki } from '../pki/index.js';
import { createServices, type Services } from '../services.js';
import type { Store } from '../store/types.js';
import type { TaskArchive } from '../task-archive.js';
import { clientAddress, compileTrustedProxies } from './client-address.js';
import type { ApiContext, EngineOps } from './context.js';
import type { CoordinatorMetrics } from './metrics.js';
import { addressKey, authFailureKeys, FailureLimiter, type FailureLimiterOptions } from './ratelimit.js';
import { registerRoutes } from './routes/index.js';
import { type JoinInfoSource, registerJoinRoutes } from './routes/join.js';
import { registerWeb } from './routes/web.js';
import { SseHub, type SseOptions } from './sse.js';
import { roleAllows, type TokenStore } from './tokens.js';
import { validationHint } from './validation-hints.js';

export interface ApiDeps {
  engine: Engine;
  tokens: TokenStore;
  logger: Logger;
  metrics?: CoordinatorMetrics;
  /** persists task records; memory-only without */
  store?: Store;
  /** readiness inputs for /readyz (default: engine started, NATS unknown → not ready) */
  natsConnected?: () => boolean;
  engineStarted?: () => boolean;
  clock?: Clock;
  authLimit?: FailureLimiterOptions;
  /**
   * `api.trustedProxies`: reverse proxies (IPs or CIDRs) whose X-Forwarded-For names the client
   * the failure limit counts against; default none (the socket address is the client)
   */
  trustedProxies?: readonly string[];
  sse?: SseOptions;
  /** TLS key and certificate (PEM); plain HTTP without */
  https?: { key: string | Buffer; cert: string | Buffer };
  /** largest accepted body; default 4 MiB (topologies with inline files) */
  bodyLimit?: number;
  /** the cluster PKI (admin kubeconfigs); those routes answer 501 without it */
  pki?: ClusterPki;
  /** VirtualCluster slice placement: backstop re-placement period (default 10 s) */
  vcResyncMs?: number;
  /** joining: `GET /v1/join-command` and `/v1/join-tokens` (the daemon's NATS URLs, key, join tokens); 501 without */
  join?: JoinInfoSource;
  /** VirtualCluster slice placement: the storm guard (RepairPolicy.stormActive) it honours */
  vcStormGuard?: (cluster: string) => boolean;
  /**
   * The clean records whose purge lists the engine's plans carry (its `planAddons` port, wired at
   * the composition root); without it `drover clean --purge` purges nothing.
   */
  purge?: PurgeLists;
  /**
   * The domain services the routes serve (coordinator/services.ts), started when the API is ready
   * and stopped when it closes; built from the deps above without.
   */
  services?: Services;
  /** coordinator HA: who leads (`GET /v1/coordinators`); a follower answers writes with 421 NOT_LEADER */
  ha?: HaView;
  /** a follower: the services start read-only (no VirtualCluster placement) */
  readOnly?: boolean;
  /** where task records are kept (the JetStream store's task stream) */
  taskArchive?: TaskArchive;
  /** etcd snapshots (the leader's): /v1/etcd/snapshots */
  snapshots?: SnapshotBook;
  /** etcd restores: absent on a follower */
  restores?: EtcdRestore;
  /** issued certificates and the CAs: /v1/certificates */
  certificates?: CertificateBook;
  /** POST /v1/backup */
  backup?: ApiContext['backup'];
}

function sendError(reply: FastifyReply, err: DroverError): FastifyReply {
  return reply.code(err.status).type('application/json').send(err.toJSON());
}

/** Turns an Ajv error from Fastify's validation into `{ field, message }`. */
function describeValidation(err: FastifyError): { field: string; message: string; where: string } {
  const v = err.validation?.[0];
  const where = err.validationContext ?? 'body';
  if (!v) return { field: '', message: err.message, where };
  const params = v.params as Record<string, unknown>;
  let field = v.instancePath || '';
  let message = v.message ?? 'is invalid';
  if (v.keyword === 'required') {
    field = `${field}/${String(params.missingProperty)}`;
    message = 'is required';
  } else if (v.keyword === 'additionalProperties') {
    field = `${field}/${String(params.additionalProperty)}`;
    message = 'is not an allowed field';
  } else if (v.keyword === 'pattern') {
    message = validationHint(v, err.validation ?? []) ?? `does not match ${String(params.pattern)}`;
  } else if (v.keyword === 'anyOf' || v.keyword === 'const' || v.keyword === 'enum') {
    message = validationHint(v, err.validation ?? []) ?? 'is not one of the allowed values';
  }
  return { field: field || '/', message, where };
}

const LABEL: Record<string, string> = {
  body: 'body field',
  querystring: 'query parameter',
  params: 'path parameter',
  headers: 'header',
};

/**
 * Builds the REST API on a Fastify instance (not listening; `app.inject()` in tests, `listen()` in
 * the daemon). Every route needs a bearer token except /healthz, /readyz, the OpenAPI document
 * and the dashboard's static page.
 */
export function buildApi(deps: ApiDeps): FastifyInstance {
  const clock = deps.clock ?? systemClock;
  const app = Fastify({
    loggerInstance: deps.logger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: deps.bodyLimit ?? 4 * 1024 * 1024,
    forceCloseConnections: true,
    // verbose: each error carries its schema and value, for messages in the user's terms
    ajv: {
      customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false, verbose: true },
    },
    ...(deps.https ? { https: deps.https } : {}),
  }) as unknown as FastifyInstance;

  const limiter = new FailureLimiter(clock, deps.authLimit);
  const trusted = compileTrustedProxies(deps.trustedProxies);
  const services =
    deps.services ??
    createServices({
      engine: deps.engine,
      logger: deps.logger,
      store: deps.store,
      clock,
      vcResyncMs: deps.vcResyncMs,
      vcStormGuard: deps.vcStormGuard,
      purge: deps.purge,
      readOnly: deps.readOnly,
      ...(deps.taskArchive ? { taskArchive: deps.taskArchive } : {}),
    });
  const { tasks } = services;
  const ctx: ApiContext = {
    engine: deps.engine as Engine & EngineOps,
    tokens: deps.tokens,
    tasks,
    sse: new SseHub(),
    // the keepalive comments go by the API's clock unless the SSE options name one
    sseOptions: { clock, ...deps.sse },
    natsConnected: deps.natsConnected ?? (() => false),
    engineStarted: deps.engineStarted ?? (() => true),
    metrics: deps.metrics,
    pki: deps.pki,
    clean: services.clean,
    vc: services.vc,
    store: deps.store,
    ha: deps.ha,
    ...(deps.snapshots ? { snapshots: deps.snapshots } : {}),
    ...(deps.restores ? { restores: deps.restores } : {}),
    ...(deps.certificates ? { certificates: deps.certificates } : {}),
    ...(deps.backup ? { backup: deps.backup } : {}),
  };
  deps.metrics?.observe({ engine: deps.engine, natsConnected: ctx.natsConnected });

  // Response schemas document the API; bodies are serialised as they are, so a schema gap can
  // never silently drop a field (test/unit/api-*.test.ts checks responses against the schemas).
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));

  app.addHook('onReady', () => services.start());
  app.addHook('onClose', (_app, done) => {
    services.stop();
    done();
  });
  app.addHook('preClose', (done) => {
    ctx.sse.closeAll();
    done();
  });

  app.addHook('onRequest', async (req, reply) => {
    const need = req.routeOptions.config?.auth ?? 'viewer';
    if (need === 'public') return;
    const ip = clientAddress(req.ip, req.headers['x-forwarded-for'], trusted);
    const h = req.headers.authorization;
    const m = h ? /^Bearer\s+(\S+)\s*$/i.exec(h) : null;
    const check = m ? deps.tokens.check(m[1]!) : {};
    const info = check.token;
    // A valid token always passes: an address shared with an attacker (NAT, proxy) being blocked
    // must not lock out the operators behind it. Guessing is hopeless anyway (256-bit secrets).
    if (!info) {
      const wait = limiter.blockedFor(addressKey(ip));
      if (wait > 0) {
        deps.metrics?.authFailures.inc({ reason: 'rate-limited' });
        reply.header('retry-after', String(Math.ceil(wait / 1000)));
        return sendError(
          reply,
          coordinatorError(
            'DROVER_ERR_RATE_LIMITED',
            `too many failed authentications from ${ip}; retry in ${Math.ceil(wait / 1000)} s (a valid token is still let in)`,
            { retryAfterMs: wait },
          ),
        );
      }
    }
    if (!h) {
      deps.metrics?.authFailures.inc({ reason: 'missing' });
      return sendError(
        reply,
        coordinatorError(
          'DROVER_ERR_UNAUTHORIZED',
          // never where the admin token is kept: this is answered to anyone who asks
          'missing bearer token: send "Authorization: Bearer <token>" (CLI: --token or DROVER_TOKEN)',
        ),
      );
    }
    if (!info) {
      const claimed = check.wrongSecretFor;
      for (const key of authFailureKeys(ip, claimed?.id)) {
        const n = limiter.fail(key);
        if (claimed && key !== addressKey(ip))
          req.log.warn(
            { tokenId: claimed.id, name: claimed.name, client: ip, failures: n },
            'wrong secret for an API token',
          );
      }
      if (claimed) deps.metrics?.tokenAuthFailures.inc({ token_id: claimed.id });
      deps.metrics?.authFailures.inc({ reason: claimed ? 'wrong-secret' : 'invalid' });
      return sendError(
        reply,
        coordinatorError(
          'DROVER_ERR_UNAUTHORIZED',
          'invalid bearer token: check the token, or ask an admin for a new one',
        ),
      );
    }
    req.token = info;
    if (!roleAllows(info.role, need)) {
      return sendError(
        reply,
        coordinatorError(
          'DROVER_ERR_FORBIDDEN',
          `token ${JSON.stringify(info.name)} has role ${info.role}; ${req.method} ${req.routeOptions.url} needs ${need}: ask an admin for an ${need} token`,
          { need, have: info.role },
        ),
      );
    }
  });

  // Coordinator HA: a follower serves reads; a write goes to the leader, whose address it names
  // (the CLI re-sends there when that address is one of its --server URLs). Never dropped quietly.
  const ha = deps.ha;
  if (ha)
    app.addHook('onRequest', async (req, reply) => {
      if (ha.isLeader()) return;
      // reads are served here, except convergence: only the leader renders plans and knows it
      const read = req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS';
      if (read && req.routeOptions.url !== '/v1/status') return;
      const leader = ha.leader();
      if (leader.api) reply.header('x-drover-leader', leader.api);
      return sendError(
        reply,
        coordinatorError(
          'DROVER_ERR_NOT_LEADER',
          leader.id
            ? `coordinator ${ha.self} is a follower; ${req.method} ${req.url} goes to the leader ${leader.id}${leader.api ? ` at ${leader.api}` : ''}`
            : `coordinator ${ha.self} is a follower and no leader holds the lease right now (an election is under way); retry in a moment`,
          {
            self: ha.self,
            ...(leader.id ? { leader: leader.id } : {}),
            ...(leader.api ? { api: leader.api } : {}),
          },
        ),
      );
    });

  if (deps.metrics) {
    const m = deps.metrics;
    app.addHook('onResponse', async (req, reply) => {
      m.httpRequests.inc({
        method: req.method,
        route: req.routeOptions.url ?? 'unmatched',
        status: String(reply.statusCode),
      });
    });
  }

  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err.validation) {
      const { field, message, where } = describeValidation(err);
      return sendError(
        reply,
        coordinatorError('DROVER_ERR_BAD_REQUEST', `${LABEL[where] ?? where} ${field}: ${message}`, {
          field,
          in: where,
        }),
      );
    }
    // Topology errors name the field as a dotted path; the API reports it as `details.field`.
    const topo = err as FastifyError & { path?: unknown; details?: Record<string, unknown> };
    if (topo.name === 'TopologyError') {
      const code =
        typeof topo.code === 'string' && topo.code in COORDINATOR_ERRORS
          ? topo.code
          : 'DROVER_ERR_BAD_REQUEST';
      return sendError(
        reply,
        new DroverError(code, err.message, {
          status: 400,
          details: { ...topo.details, field: String(topo.path ?? '') },
        }),
      );
    }
    if (err instanceof DroverError) {
      if (err.status >= 500) req.log.error({ err }, 'request failed');
      return sendError(reply, err);
    }
    switch (err.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return sendError(
          reply,
          coordinatorError(
            'DROVER_ERR_PAYLOAD_TOO_LARGE',
            `body larger than ${app.initialConfig.bodyLimit} bytes`,
          ),
        );
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return sendError(
          reply,
          coordinatorError(
            'DROVER_ERR_UNSUPPORTED_MEDIA_TYPE',
            `content type ${JSON.stringify(req.headers['content-type'])} is not accepted here; send application/json`,
          ),
        );
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return sendError(
          reply,
          coordinatorError(
            'DROVER_ERR_BAD_REQUEST',
            'the body is empty but content-type says JSON; send a JSON body or no content-type',
            { field: '/' },
          ),
        );
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
        return sendError(
          reply,
          new DroverError('DROVER_ERR_BAD_JSON', `body is not valid JSON: ${err.message}`, {
            status: 400,
            details: { field: '/' },
          }),
        );
    }
    if (err instanceof SyntaxError || (err.statusCode === 400 && /JSON/.test(err.message))) {
      return sendError(
        reply,
        new DroverError('DROVER_ERR_BAD_JSON', `body is not valid JSON: ${err.message}`, {
          status: 400,
          details: { field: '/' },
        }),
      );
    }
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
      return sendError(
        reply,
        new DroverError('DROVER_ERR_BAD_REQUEST', err.message, { status: err.statusCode }),
      );
    }
    req.log.error({ err }, 'unexpected error');
    return sendError(
      reply,
      coordinatorError('DROVER_ERR_INTERNAL', `internal error (request ${req.id}); see the coordinator log`),
    );
  });

  app.setNotFoundHandler((req, reply) =>
    sendError(
      reply,
      coordinatorError(
        'DROVER_ERR_NOT_FOUND',
        `no route ${req.method} ${req.url.split('?')[0]}; see /docs for the API`,
      ),
    ),
  );

  app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Drover coordinator API',
        version: DROVER_VERSION,
        description:
          'Operate a Drover-managed control plane. Every route needs `Authorization: Bearer <token>` except /healthz, /readyz and /docs. Errors are `{ code, message, details }`; see docs/errors.md.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    // Say in the document which token role each operation needs.
    transform: ({ schema, url, route }) => {
      const need = (route.config as { auth?: string } | undefined)?.auth ?? 'viewer';
      const note = need === 'public' ? 'No token needed.' : `Needs a token with role ${need} or higher.`;
      const s = (schema ?? {}) as { description?: string };
      return { schema: { ...s, description: s.description ? `${s.description}\n\n${note}` : note }, url };
    },
  });
  app.register(async (scoped) => registerRoutes(scoped, ctx));
  app.register(async (scoped) => registerJoinRoutes(scoped, deps.join, deps.engine.events));
  app.register(async (scoped) => registerWeb(scoped));
  return app;
}
