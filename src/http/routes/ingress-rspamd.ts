// POST /ingress/rspamd: the Rspamd postfilter road (rspamd/agents_bridge.lua).
// The raw message is the body; the envelope and Rspamd's own verdicts come in
// request headers set by the plugin. Authentication-Results inside the message are
// the sender's and are ignored here. Answers (the plugin maps them to the milter):
// 200 stored → discard; 422 refused → 554 5.7.1 reject; 503 our fault → 451 soft reject.
import { timingSafeEqual, createHash } from 'node:crypto';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { Config } from '../../config.js';
import { AdmpError, httpErrorBody, smtpReplyText } from '../../errors.js';
import { fromRspamd } from '../../ingress/domain-auth.js';
import type { Ingest, RecipientResult } from '../../ingress/ingest.js';
import { Type } from '@sinclair/typebox';
import { errorBody } from '../openapi.js';

const header = (req: FastifyRequest, name: string): string | undefined => {
  const v = req.headers[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
};

// A refusal names the recipient and the SMTP text the plugin hands to the milter.
const refusal = (status: number) =>
  errorBody(status, { recipient: Type.Optional(Type.String()), smtp_message: Type.Optional(Type.String()) });
const IngressAnswers = {
  200: Type.Object({
    stored: Type.Array(Type.Object({ recipient: Type.String(), id: Type.String(), duplicate: Type.Boolean() })),
    reports: Type.Array(Type.Object({ recipient: Type.String(), message: Type.Union([Type.String(), Type.Null()]) }), {
      description: 'delivery status notifications matched to the message they report on',
    }),
  }),
  422: refusal(422),
  503: refusal(503),
};

// Hashing first makes the comparison constant-time whatever the lengths.
const digest = (s: string) => createHash('sha256').update(s).digest();

/** The single answer for the whole message (the milter has one verdict per message). */
export function rspamdAnswer(results: readonly RecipientResult[]): { status: 200 | 422 | 503; body: unknown } {
  const failed = results.find((r) => r.kind === 'tempfail') ?? results.find((r) => r.kind === 'refused');
  if (failed && (failed.kind === 'tempfail' || failed.kind === 'refused')) {
    const e = failed.error;
    return {
      status: failed.kind === 'tempfail' ? 503 : 422,
      body: {
        ...httpErrorBody(e),
        recipient: failed.recipient,
        smtp_message: `${e.smtp.enhanced} ${smtpReplyText(e)}`,
      },
    };
  }
  return {
    status: 200,
    body: {
      stored: results.flatMap((r) =>
        r.kind === 'stored' ? [{ recipient: r.recipient, id: r.id, duplicate: r.duplicate }] : [],
      ),
      reports: results.flatMap((r) => (r.kind === 'report' ? [{ recipient: r.recipient, message: r.id ?? null }] : [])),
    },
  };
}

export const rspamdIngressRoutes =
  (config: Config, ingest: Ingest): FastifyPluginAsync =>
  async (app) => {
    app.addContentTypeParser(
      ['message/rfc822', 'application/octet-stream'],
      { parseAs: 'buffer', bodyLimit: config.maxMailBytes + 1 },
      (_req, body, done) => done(null, body),
    );

    app.post(
      '/ingress/rspamd',
      { bodyLimit: config.maxMailBytes + 1, schema: { response: IngressAnswers } },
      async (req, reply) => {
        const arrivedAt = Math.floor(Date.now() / 1000);
        const auth = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
        if (!config.ingressToken || !auth || !timingSafeEqual(digest(auth), digest(config.ingressToken))) {
          throw new AdmpError('unauthorized', 'ingress needs the bearer secret of ADMP_INGRESS_TOKEN');
        }
        const raw = req.body;
        if (!Buffer.isBuffer(raw) || raw.length === 0)
          throw new AdmpError('bad_request', 'send the message as message/rfc822');
        const recipients = (header(req, 'x-envelope-to') ?? '')
          .split(',')
          .map((s) => s.trim().replace(/^<|>$/g, ''))
          .filter(Boolean);
        if (recipients.length === 0) throw new AdmpError('bad_request', 'X-Envelope-To names no recipient');

        const results = await ingest.ingest(
          {
            road: 'rspamd',
            raw,
            envelopeFrom: header(req, 'x-envelope-from') ?? '',
            recipients,
            trusted: fromRspamd(header(req, 'x-rspamd-auth')),
            saslUser: header(req, 'x-rspamd-user'),
            clientIp: header(req, 'x-rspamd-client-ip'),
            queueId: header(req, 'x-rspamd-queue-id'),
            // The postfilter runs inside our MTA's SMTP session: the mail is being received
            // now, and a deferral is retried by the sender's MTA as a new receipt.
            receivedAt: arrivedAt,
          },
          { atomic: true, log: req.log },
        );
        const answer = rspamdAnswer(results);
        return reply.status(answer.status).send(answer.body);
      },
    );
  };
