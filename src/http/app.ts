// Builds the HTTP application: the agent API under /v1 (authenticated), health,
// and whatever adapter routes the caller adds (Rspamd ingress, JWKS). No listening
// here: server.ts listens, tests use app.inject().
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { AdmpError } from '../errors.js';
import { mayBeUnstorableJsonText, unstorableJson } from '../core/storable.js';
import type { ApiDeps } from './deps.js';
import { rspamdIngressRoutes } from './routes/ingress-rspamd.js';
import { wellKnownRoutes } from './routes/well-known.js';
import { installErrorHandler } from './errors.js';
import { registerOpenApi } from './openapi.js';
import { mcpRoutes } from '../mcp/http.js';
import { webhookRoutes } from './routes/webhooks.js';
import { healthRoutes } from './routes/health.js';
import { inboxRoutes } from './routes/inbox.js';
import { messageRoutes } from './routes/messages.js';
import { metricsRoutes } from './metrics.js';
import { adminRoutes } from './admin/routes.js';
import { consoleRoutes } from '../console/routes.js';
import type { TlsMaterial } from './tls.js';
import { createRequestLimit } from './request-limit.js';
import { installRequestBudget } from './request-budget.js';
import { PullBody } from './schemas.js';

// Room for the envelope fields around a body of the configured maximum size.
const ENVELOPE_OVERHEAD = 64 * 1024;

export type { ApiDeps };

/**
 * HTTPS options: HTTP/2 with HTTP/1.1 offered beside it by ALPN (RFC 7301), so curl,
 * undici and browsers each pick what they speak. With a client CA the server asks for a
 * certificate but completes the handshake without one (see client-cert.ts).
 */
function httpsOptions(tls: TlsMaterial | undefined): object {
  if (!tls) return {};
  return { http2: true, https: { allowHTTP1: true, ...tls, rejectUnauthorized: false } };
}

export function buildApp(deps: ApiDeps): FastifyInstance {
  // The routes are written against Fastify's default (HTTP/1) types; on HTTPS the server
  // is an http2 secure server whose requests Fastify hands them through the same API.
  const app = (
    Fastify({
      loggerInstance: deps.log as FastifyBaseLogger,
      // Fastify's own two lines per request are replaced by one summary line (onResponse below).
      logController: new LogController({ disableRequestLogging: true }),
      bodyLimit: deps.config.maxBodyBytes + ENVELOPE_OVERHEAD,
      ajv: { customOptions: { removeAdditional: false, coerceTypes: false } },
      // During shutdown fastify would answer 503 with its own body; ours says it in the API's error shape (below).
      return503OnClosing: false,
      ...httpsOptions(deps.tls),
    }) as unknown as FastifyInstance
  ).withTypeProvider<TypeBoxTypeProvider>();

  // A pull's own wait is not a stall: its budget starts after the longest wait. The
  // Rspamd road answers within ADMP_INGRESS_BUDGET_MS itself; this is only its backstop.
  const { requestBudgetMs, ingressBudgetMs } = deps.config;
  const pullBudgetMs = requestBudgetMs + PullBody.properties.wait.maximum! * 1000;
  const ingressBackstopMs = Math.max(requestBudgetMs, ingressBudgetMs + 1000);
  installRequestBudget(app, (url) =>
    url === '/v1/inbox/pull' ? pullBudgetMs : url === '/ingress/rspamd' ? ingressBackstopMs : requestBudgetMs,
  );

  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  // Requests still arriving on kept-alive connections while draining (fastify adds `Connection: close`).
  // Callback hooks here and below: an async hook costs a promise and a microtask per request.
  app.addHook('onRequest', (_req, _reply, done) => {
    done(closing ? new AdmpError('shutting_down', 'the server is shutting down; try again') : undefined);
  });

  // The API speaks JSON only; anything else is 415.
  app.removeAllContentTypeParsers();
  // Keep the raw bytes: HMAC authentication signs the body exactly as sent.
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body: Buffer, done) => {
    req.rawBody = body;
    if (body.length === 0) return done(null, undefined);
    const text = body.toString('utf8');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      return done(new AdmpError('invalid_json', `malformed JSON: ${(err as Error).message}`), undefined);
    }
    // Valid JSON that could not be stored or served again (src/core/storable.ts), on every route;
    // the text tells first whether the walk is needed.
    const unstorable = mayBeUnstorableJsonText(text) ? unstorableJson(parsed, 'body') : undefined;
    done(unstorable ? new AdmpError('invalid_json', unstorable) : null, unstorable ? undefined : parsed);
  });

  // One summary line per API call (the ops contract: event, outcome, latency).
  app.addHook('onResponse', (req, reply, done) => {
    const route = req.routeOptions.url ?? 'unmatched';
    deps.metrics?.httpRequests.inc({ method: req.method, route, status: reply.statusCode });
    deps.metrics?.httpSeconds.observe({ route }, reply.elapsedTime / 1000);
    // An answer of the API or the ingress endpoint came from the database: it is back.
    if (reply.statusCode < 500 && (route.startsWith('/v1/') || route.startsWith('/ingress/'))) deps.outage?.succeeded();
    // Built only when it will be written: this hook runs on every request.
    if (deps.log.isLevelEnabled('info')) {
      req.log.info(
        {
          event: 'http',
          method: req.method,
          route,
          status: reply.statusCode,
          agent: req.caller?.agentId,
          outcome: 'ok',
          ...req.summary,
          ms: Math.round(reply.elapsedTime),
        },
        'request',
      );
    }
    done();
  });

  installErrorHandler(app, deps.outage);
  registerOpenApi(app);
  void app.register(healthRoutes(deps.admin, deps.listening));
  void app.register(wellKnownRoutes(deps.admin));
  void app.register(rspamdIngressRoutes(deps.config, deps.ingest));
  // /metrics on the API listener only behind ADMP_METRICS_TOKEN (src/http/metrics.ts).
  if (deps.metrics && deps.config.metricsToken)
    void app.register(metricsRoutes(deps.metrics.registry, deps.config.metricsToken));
  // The admin API and the console: operators only (admin tokens, never agent credentials).
  void app.register(adminRoutes(deps.admin, deps.log), { prefix: '/admin/v1' });
  void app.register(consoleRoutes());
  // One per-agent request limit for the agent API and the MCP tools.
  const limit = createRequestLimit(deps.config, deps.metrics);
  void app.register(async (v1) => {
    // Authenticate before validating, so a stranger learns nothing about the schema.
    v1.addHook('preValidation', async (req) => {
      req.caller = await deps.auth.authenticate(req);
      await limit?.(req.caller.agentId);
    });
    await v1.register(messageRoutes(deps));
    await v1.register(inboxRoutes(deps));
    await v1.register(webhookRoutes(deps));
  });
  // The same mailbox as MCP tools, for agents whose runtime speaks MCP (src/mcp/http.ts).
  void app.register(mcpRoutes(deps.auth, deps.mailbox, limit));
  return app;
}
