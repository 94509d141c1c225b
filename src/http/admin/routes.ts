// The admin API, /admin/v1: what the console and the remote CLI call. Every route
// authenticates an admin token first (agent credentials are not admin tokens);
// read-only tokens are refused any method but GET (auth.ts). No SQL here: every
// route calls the Admin service, as the local CLI does.
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Admin, AgentKeyRow } from '../../admin/admin.js';
import { OPERATIONS_LIMITS } from '../../admin/operations.js';
import { addressOfAgent } from '../../core/address.js';
import { presentAddressToken } from './present.js';
import { AdmpError } from '../../errors.js';
import { agentKeyTxtRecords } from '../../keys/dns.js';
import type { Logger } from '../../log.js';
import { authenticateAdmin } from './auth.js';
import { createEventHub } from './events.js';
import * as S from './schemas.js';
import { wire } from './wire.js';
import { adminValidatorCompiler } from './validation.js';
import { clientTime } from '../../core/time.js';

const presentKey = (k: AgentKeyRow) => ({
  domain: k.domain,
  kid: k.kid,
  agent: k.agent,
  source: k.source,
  public_key: k.publicKey.toString('base64'),
  not_before: k.notBefore.toISOString(),
  not_after: k.notAfter?.toISOString() ?? null,
  revoked_at: k.revokedAt?.toISOString() ?? null,
});

const RECENT = Type.Object({ limit: Type.Integer({ minimum: 1, maximum: OPERATIONS_LIMITS.recent, default: 50 }) });

export const adminRoutes =
  (admin: Admin, log: Logger): FastifyPluginAsync =>
  async (parent) => {
    const app = parent.withTypeProvider<TypeBoxTypeProvider>();
    app.setValidatorCompiler(adminValidatorCompiler);
    const hub = createEventHub(admin, log);
    app.addHook('preClose', async () => hub.close());
    // Authenticate before validating, so a stranger learns nothing about the schema.
    app.addHook('preValidation', async (req) => {
      req.admin = await authenticateAdmin(admin, req);
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
      const { rows, next } = await admin.search({
        ...q,
        after: q.after ? clientTime(q.after, 'after') : undefined,
        before: q.before ? clientTime(q.before, 'before') : undefined,
      });
      return { messages: wire(rows), next_cursor: next };
    });
    app.get('/messages/:id', { schema: { params: S.MessageParams, response: { 200: S.MessageDetail } } }, async (req) =>
      wire(await admin.message(req.params.id)),
    );

    // Both take dead letters by reference and answer the ids they changed.
    const deadLetterActions = {
      redrive: admin.redrive.bind(admin),
      delete: admin.deleteDead.bind(admin),
    } as const;
    for (const [action, run] of Object.entries(deadLetterActions)) {
      app.post(
        `/dead-letters/${action}`,
        { schema: { body: S.MessageRefs, response: { 200: S.Changed } } },
        async (req) => ({ ids: await run(req.body.messages) }),
      );
    }

    app.get('/overview', { schema: { response: { 200: S.Overview } } }, async () => wire(await admin.overview()));
    app.get('/refusals', { schema: { querystring: RECENT, response: { 200: Type.Array(S.Refusal) } } }, async (req) =>
      wire(await admin.refusals(req.query.limit)),
    );
    app.get(
      '/outbound-failures',
      { schema: { querystring: RECENT, response: { 200: Type.Array(S.OutboundFailure) } } },
      async (req) => wire(await admin.outboundFailures(req.query.limit)),
    );
    // A text/event-stream, not JSON: described in docs/api.md, left out of the OpenAPI document.
    app.get('/events', { schema: { hide: true } }, (_req, reply) => hub.subscribe(reply));

    app.get('/agents', { schema: { response: { 200: Type.Array(S.Agent) } } }, async () =>
      wire(await admin.listAgents()),
    );
    app.post('/agents', { schema: { body: S.NewAgent, response: { 201: S.AgentCredentials } } }, async (req, reply) => {
      const a = await admin.addAgent(req.body.id, req.body.domain);
      return reply
        .status(201)
        .send({ id: a.id, address: addressOfAgent(a), token: a.token, hmac_secret: a.hmac_secret });
    });
    app.post(
      '/agents/:id/rotate',
      { schema: { params: S.AgentParams, body: S.RotateBody, response: { 200: S.AgentCredentials } } },
      async (req) => {
        const a = await admin.rotateCredentials(req.params.id, req.body.hmac ? ['token', 'hmac'] : ['token']);
        return { id: a.id, address: addressOfAgent(a), token: a.token, hmac_secret: a.hmac_secret };
      },
    );

    // Any agent's webhook endpoints (agents register their own with POST /v1/webhooks).
    app.get('/webhooks', { schema: { response: { 200: Type.Array(S.Webhook) } } }, async () =>
      wire(await admin.webhooks.list()),
    );
    app.post(
      '/webhooks/:id/enable',
      { schema: { params: S.WebhookParams, response: { 200: S.Webhook } } },
      async (req) => wire(await admin.webhooks.enable(req.params.id)),
    );
    app.delete(
      '/webhooks/:id',
      { schema: { params: S.WebhookParams, response: { 200: S.WebhookRemoved } } },
      async (req) => {
        await admin.webhooks.remove(req.params.id);
        return { removed: req.params.id };
      },
    );

    app.get('/tenants', { schema: { response: { 200: Type.Array(S.Tenant) } } }, async () =>
      wire(await admin.listTenants()),
    );
    app.post('/tenants', { schema: { body: S.NewTenant, response: { 201: S.Tenant } } }, async (req, reply) =>
      reply.status(201).send(wire(await admin.addTenant(req.body.name))),
    );
    app.delete(
      '/tenants/:name',
      { schema: { params: S.TenantParams, response: { 200: S.TenantRemoved } } },
      async (req) => ({ removed: await admin.removeTenant(req.params.name) }),
    );

    app.get(
      '/addresses',
      { schema: { querystring: S.AddressQuery, response: { 200: Type.Array(S.AddressToken) } } },
      async (req) => (await admin.listAddressTokens(req.query.agent)).map(presentAddressToken),
    );
    app.post(
      '/addresses',
      { schema: { body: S.NewAddressToken, response: { 201: S.AddressToken } } },
      async (req, reply) => reply.status(201).send(presentAddressToken(await admin.createAddressToken(req.body.agent))),
    );
    app.post('/addresses/revoke', { schema: { body: S.RevokeAddress, response: { 200: S.Revoked } } }, async (req) => {
      await admin.revokeAddressToken(req.body.address);
      return { revoked: [req.body.address.toLowerCase()] };
    });

    app.get('/keys', { schema: { response: { 200: Type.Array(S.Key) } } }, async () =>
      (await admin.allKeys()).map(presentKey),
    );
    app.post('/keys', { schema: { body: S.PinKey, response: { 201: S.Key } } }, async (req, reply) => {
      const publicKey = Buffer.from(req.body.public_key, 'base64');
      if (publicKey.length !== 32) throw new AdmpError('bad_request', 'public_key: 32 bytes in base64');
      const notAfter = req.body.not_after ? clientTime(req.body.not_after, 'not_after') : null;
      const row = await admin.pinPartnerKey(req.body.agent, req.body.kid, publicKey, notAfter);
      return reply.status(201).send(presentKey(row));
    });
    app.post('/keys/rotate', { schema: { body: S.RotateKey, response: { 201: S.RotatedKey } } }, async (req, reply) => {
      const { row, retired, until } = await admin.rotateKey(req.body.agent, req.body.overlap_sec);
      return reply.status(201).send({
        key: presentKey(row),
        retiring: retired,
        retiring_at: retired.length > 0 ? until.toISOString() : null,
        dns: agentKeyTxtRecords([row]),
      });
    });
    app.post('/keys/revoke', { schema: { body: S.RevokeKey, response: { 200: S.Revoked } } }, async (req) => ({
      revoked: await admin.revokeKeys(req.body),
    }));

    app.get('/policy/rules', { schema: { response: { 200: Type.Array(S.Rule) } } }, () => admin.listRules());
    app.post('/policy/rules', { schema: { body: S.NewRule, response: { 201: S.Rule } } }, async (req, reply) =>
      reply.status(201).send(await admin.addRule(req.body)),
    );
    app.delete('/policy/rules/:id', { schema: { params: S.RuleParams, response: { 200: S.Removed } } }, async (req) => {
      await admin.removeRule(req.params.id);
      return { removed: req.params.id };
    });
    app.post(
      '/policy/dry-run',
      { config: { readsOnly: true }, schema: { body: S.DryRun, response: { 200: S.Decision } } },
      (req) => admin.dryRun(req.body),
    );
  };
