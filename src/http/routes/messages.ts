// Send, status, ack (single and batch), nack/extend, reply.
import { leaseError, type Outgoing } from '../../mailbox/mailbox.js';
import {
  BatchAckBody,
  BatchAckResponse,
  Envelope,
  IdempotencyHeaders,
  IdParams,
  LeaseBody,
  NackBody,
  ReplyBody,
  SendResult,
  MessageStatusView,
  AckResponse,
  NackResponse,
} from '../schemas.js';
import { presentAcks, presentStatus } from '../present.js';
import { apiRoutes } from '../deps.js';

export const messageRoutes = apiRoutes(async (app, { mailbox }) => {
  app.post(
    '/v1/messages',
    { schema: { body: Envelope, headers: IdempotencyHeaders, response: { 200: SendResult, 201: SendResult } } },
    async (req, reply) => {
      // Named one by one, not copied by rest and spread (this runs on every send); `satisfies`
      // fails the build when the envelope gains a field this list does not carry.
      const { to, type, subject, body, correlation_id, ttl_sec } = req.body;
      const msg = {
        type,
        subject,
        body,
        correlation_id,
        ttl_sec,
        idempotency_key: req.headers['idempotency-key'],
      } satisfies Record<keyof Outgoing, unknown>;
      const r = await mailbox.send(req.caller!, to, msg);
      req.summary = {
        message_id: r.id,
        correlation_id,
        channel: r.status === 'queued' ? 'smtp' : 'http',
      };
      return reply
        .status(r.duplicate ? 200 : 201)
        .send({ id: r.id, status: r.status, ...(r.duplicate ? { duplicate: true } : {}) });
    },
  );

  app.get('/v1/messages/:id', { schema: { params: IdParams, response: { 200: MessageStatusView } } }, async (req) => {
    req.summary = { message_id: req.params.id };
    const { row, to } = await mailbox.status(req.caller!, req.params.id);
    return presentStatus(row, to);
  });

  app.post(
    '/v1/messages/:id/ack',
    { schema: { params: IdParams, body: LeaseBody, response: { 200: AckResponse } } },
    async (req) => {
      req.summary = { message_id: req.params.id };
      const outcome = (await mailbox.ack(req.caller!, [{ id: req.params.id, lease_id: req.body.lease_id }])).get(
        req.params.id,
      )!;
      if (outcome !== 'ok') throw leaseError(req.params.id, outcome);
      return { id: req.params.id, status: 'acked' as const };
    },
  );

  app.post('/v1/messages/ack', { schema: { body: BatchAckBody, response: { 200: BatchAckResponse } } }, async (req) => {
    return { results: presentAcks(req.body.items, await mailbox.ack(req.caller!, req.body.items)) };
  });

  app.post(
    '/v1/messages/:id/nack',
    { schema: { params: IdParams, body: NackBody, response: { 200: NackResponse } } },
    async (req) => {
      const { lease_id, ...request } = req.body;
      req.summary = { message_id: req.params.id };
      const r = await mailbox.nack(req.caller!, { id: req.params.id, lease_id }, request);
      return { id: req.params.id, status: r.status, lease_until: r.lease_until?.toISOString() ?? null };
    },
  );

  app.post(
    '/v1/messages/:id/reply',
    {
      schema: {
        params: IdParams,
        body: ReplyBody,
        headers: IdempotencyHeaders,
        response: { 200: SendResult, 201: SendResult },
      },
    },
    async (req, reply) => {
      const r = await mailbox.reply(req.caller!, req.params.id, {
        ...req.body,
        idempotency_key: req.headers['idempotency-key'],
      });
      req.summary = { message_id: r.id, channel: r.status === 'queued' ? 'smtp' : 'http' };
      return reply
        .status(r.duplicate ? 200 : 201)
        .send({ id: r.id, status: r.status, ...(r.duplicate ? { duplicate: true } : {}) });
    },
  );
});
