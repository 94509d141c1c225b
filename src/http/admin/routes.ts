// The admin API, /admin/v1: what the console and the remote CLI call. Every route
// authenticates an admin token first (agent credentials are not admin tokens);
// read-only tokens are refused any method but GET (auth.ts). No SQL here: each
// route calls the Admin service.
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Admin } from '../../admin/admin.js';
import type { Logger } from '../../log.js';
import { authenticateAdmin } from './auth.js';
import { createEventHub } from './events.js';
import * as S from './schemas.js';
import { wire } from './wire.js';
import { adminValidatorCompiler } from './validation.js';

const RECENT = Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }) });

export const adminRoutes =
  (ops: Admin, log: Logger): FastifyPluginAsync =>
  async (parent) => {
    const app = parent.withTypeProvider<TypeBoxTypeProvider>();
    app.setValidatorCompiler(adminValidatorCompiler);
    const hub = createEventHub(ops, log);
    app.addHook('preClose', async () => hub.close());
    // Authenticate before validating, so a stranger learns nothing about the schema.
    app.addHook('preValidation', async (req) => {
      req.admin = await authenticateAdmin(ops, req);
    });
    app.addHook('onSend', async (_req, reply) => {
      void reply.header('cache-control', 'no-store');
    });

    app.get('/whoami', { schema: { response: { 200: S.Whoami } } }, async (req) => ({
      id: req.admin!.id,
      name: req.admin!.name,
      read_only: req.admin!.read_only,
    }));

    app.get('/messages', { schema: { querystring: S.SearchQuery, response: { 200: S.MessagePage } } }, async (req) => {
      const q = req.query;
      const { rows, next } = await ops.search({
        ...q,
        after: q.after ? new Date(q.after) : undefined,
        before: q.before ? new Date(q.before) : undefined,
      });
      return { messages: wire(rows), next_cursor: next };
    });
    app.get('/messages/:id', { schema: { params: S.MessageParams, response: { 200: S.MessageDetail } } }, async (req) =>
      wire(await ops.message(req.params.id)),
    );

    app.post(
      '/dead-letters/redrive',
      { schema: { body: S.MessageRefs, response: { 200: S.Changed } } },
      async (req) => ({ ids: await ops.redrive(req.body.messages) }),
    );
    app.post(
      '/dead-letters/delete',
      { schema: { body: S.MessageRefs, response: { 200: S.Changed } } },
      async (req) => ({ ids: await ops.deleteDead(req.body.messages) }),
    );

    app.get('/overview', { schema: { response: { 200: S.Overview } } }, async () => wire(await ops.overview()));
    app.get('/refusals', { schema: { querystring: RECENT, response: { 200: Type.Array(S.Refusal) } } }, async (req) =>
      wire(await ops.refusals(req.query.limit)),
    );
    app.get(
      '/outbound-failures',
      { schema: { querystring: RECENT, response: { 200: Type.Array(S.OutboundFailure) } } },
      async (req) => wire(await ops.outboundFailures(req.query.limit)),
    );
    // A text/event-stream, not JSON: described in docs/api.md, left out of the OpenAPI document.
    app.get('/events', { schema: { hide: true } }, (_req, reply) => hub.subscribe(reply));

    app.get('/agents', { schema: { response: { 200: Type.Array(S.Agent) } } }, async () =>
      wire(await ops.listAgents()),
    );
    app.post('/agents', { schema: { body: S.NewAgent, response: { 201: S.AgentCredentials } } }, async (req, reply) => {
      const a = await ops.addAgent(req.body.id, req.body.domain);
      return reply
        .status(201)
        .send({ id: a.id, address: `${a.id}@${a.domain}`, token: a.token, hmac_secret: a.hmac_secret });
    });
    app.post(
      '/agents/:id/rotate',
      { schema: { params: S.AgentParams, body: S.RotateBody, response: { 200: S.AgentCredentials } } },
      async (req) => {
        const a = await ops.rotateCredentials(req.params.id, req.body.hmac ? ['token', 'hmac'] : ['token']);
        return { id: a.id, address: `${a.id}@${a.domain}`, token: a.token, hmac_secret: a.hmac_secret };
      },
    );

    app.get('/policy/rules', { schema: { response: { 200: Type.Array(S.Rule) } } }, () => ops.listRules());
    app.post('/policy/rules', { schema: { body: S.NewRule, response: { 201: S.Rule } } }, async (req, reply) =>
      reply.status(201).send(await ops.addRule(req.body)),
    );
    app.delete('/policy/rules/:id', { schema: { params: S.RuleParams, response: { 200: S.Removed } } }, async (req) => {
      await ops.removeRule(req.params.id);
      return { removed: req.params.id };
    });
    app.post('/policy/dry-run', { schema: { body: S.DryRun, response: { 200: S.Decision } } }, (req) =>
      ops.dryRun(req.body),
    );
  };
