// Send, status, ack (single and batch), nack/extend, reply.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { AdmpError } from '../../errors.js';
import { messageFor } from '../../db/status.js';
import { nack } from '../../db/claim.js';
import { type LeaseOutcome } from '../../db/message-row.js';
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
import type { ApiDeps } from '../app.js';

const leaseError = (id: string, outcome: Exclude<LeaseOutcome, 'ok'>): AdmpError =>
  ({
    not_found: new AdmpError('not_found', `no message ${id}`),
    forbidden: new AdmpError('forbidden', `message ${id} is not in your inbox`),
    lease_conflict: new AdmpError(
      'lease_conflict',
      `lease is not current for message ${id} (expired and taken by another consumer, or already acked)`,
    ),
  })[outcome];

export const messageRoutes =
  (deps: ApiDeps): FastifyPluginAsyncTypebox =>
  async (app) => {
    const { pool, config, mailbox, directory, metrics } = deps;

    app.post(
      '/v1/messages',
      { schema: { body: Envelope, headers: IdempotencyHeaders, response: { 200: SendResult, 201: SendResult } } },
      async (req, reply) => {
        const { to, ...msg } = req.body;
        const r = await mailbox.send(req.caller!, to, { ...msg, idempotency_key: req.headers['idempotency-key'] });
        req.summary = {
          message_id: r.id,
          correlation_id: msg.correlation_id,
          channel: r.status === 'queued' ? 'smtp' : 'http',
        };
        return reply
          .status(r.duplicate ? 200 : 201)
          .send({ id: r.id, status: r.status, ...(r.duplicate ? { duplicate: true } : {}) });
      },
    );

    app.get('/v1/messages/:id', { schema: { params: IdParams, response: { 200: MessageStatusView } } }, async (req) => {
      const c = req.caller!;
      req.summary = { message_id: req.params.id };
      const m = await messageFor(pool, req.params.id, c.agentId, c.address);
      if (!m) throw new AdmpError('not_found', `no message ${req.params.id}`);
      if (m === 'forbidden')
        throw new AdmpError('forbidden', `message ${req.params.id} is neither from you nor to you`);
      const to = m.to_agent_id.includes('@')
        ? m.to_agent_id
        : `${m.to_agent_id}@${(await directory.localAgent(m.to_agent_id))?.domain ?? config.domains[0]}`;
      return presentStatus(m, to);
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

    app.post(
      '/v1/messages/ack',
      { schema: { body: BatchAckBody, response: { 200: BatchAckResponse } } },
      async (req) => {
        return { results: presentAcks(req.body.items, await mailbox.ack(req.caller!, req.body.items)) };
      },
    );

    app.post(
      '/v1/messages/:id/nack',
      { schema: { params: IdParams, body: NackBody, response: { 200: NackResponse } } },
      async (req) => {
        const { lease_id, extend_sec, delay_sec } = req.body;
        if (extend_sec !== undefined && delay_sec !== undefined)
          throw new AdmpError('bad_request', 'body: give extend_sec or delay_sec, not both', { field: 'body' });
        const action =
          extend_sec !== undefined
            ? { kind: 'extend' as const, sec: Math.min(extend_sec, config.maxVisibilitySec) }
            : { kind: 'release' as const, delaySec: delay_sec ?? 0 };
        req.summary = { message_id: req.params.id };
        const r = await nack(pool, req.caller!.agentId, { id: req.params.id, lease_id }, action, config.maxAttempts);
        if (r.outcome !== 'ok') throw leaseError(req.params.id, r.outcome);
        if (r.status === 'dead') metrics?.dead.inc({ reason: 'max_attempts' });
        return { id: req.params.id, status: r.status!, lease_until: r.lease_until?.toISOString() ?? null };
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
  };
