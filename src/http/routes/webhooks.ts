// An agent's webhook endpoints: register (the answer carries the signing secret once),
// list, remove, and enable again after a 410 or a refused address disabled it.
import { IdParams, WebhookBody, WebhookCreated, WebhookEndpoint, WebhookList, WebhookRemoved } from '../schemas.js';
import { presentEndpoint } from '../present.js';
import { apiRoutes } from '../deps.js';

export const webhookRoutes = apiRoutes(async (app, { webhooks }) => {
  app.post('/v1/webhooks', { schema: { body: WebhookBody, response: { 201: WebhookCreated } } }, async (req, reply) => {
    const e = await webhooks.register(req.caller!.agentId, req.body);
    return reply.status(201).send({ ...presentEndpoint(e), secret: e.secret });
  });

  app.get('/v1/webhooks', { schema: { response: { 200: WebhookList } } }, async (req) => ({
    endpoints: (await webhooks.list(req.caller!.agentId)).map(presentEndpoint),
  }));

  app.delete('/v1/webhooks/:id', { schema: { params: IdParams, response: { 200: WebhookRemoved } } }, async (req) => {
    await webhooks.remove(req.params.id, req.caller!.agentId);
    return { removed: req.params.id };
  });

  app.post(
    '/v1/webhooks/:id/enable',
    { schema: { params: IdParams, response: { 200: WebhookEndpoint } } },
    async (req) => presentEndpoint(await webhooks.enable(req.params.id, req.caller!.agentId)),
  );
});
