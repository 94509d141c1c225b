// The one ingress pipeline, whatever road a mail took (Rspamd HTTP postfilter or
// LMTP): parse → domain authentication → agent signature → envelope schema →
// policy → fingerprint → enqueue_message(channel='smtp'). Delivery status reports
// are recorded on the message they concern instead. Adapters turn the outcomes into
// their protocol's answers (src/http/routes/ingress-rspamd.ts, src/lmtp/server.ts).
import { simpleParser, type ParsedMail } from 'mailparser';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type pg from 'pg';
import type { Config } from '../config.js';
import { AdmpError, toAdmpError, type ErrorCode } from '../errors.js';
import { tryParseAddress } from '../core/address.js';
import { fingerprint } from '../core/fingerprint.js';
import { decide, saslMayActAs, type Policy } from '../core/policy.js';
import { canonicalMessageId, verifySignature, type KeyResolver, type SignatureFailure } from '../core/signature.js';
import { readSignedMail, type MailSignatureFields } from '../mail/signed-message.js';
import { Envelope } from '../http/schemas.js';
import { enqueueRows } from '../db/enqueue.js';
import { type EnqueueResult, type NewMessage } from '../db/message-row.js';
import { inboxHolds } from '../db/status.js';
import { recordDeliveryReport } from '../db/delivery-reports.js';
import type { Directory } from '../mailbox/directory.js';
import type { Enqueuer } from '../mailbox/batcher.js';
import type { PolicySource } from '../policy/store.js';
import {
  alignedDkimPass,
  cachedResolver,
  isAligned,
  verifyDkim,
  type DomainAuth,
  type Resolver,
} from './domain-auth.js';
import { isDeliveryReport, parseDeliveryReport, reportOutcome } from '../mail/dsn.js';
import { headerFields } from './authentication-results.js';
import { observeEnqueue, type Metrics } from '../metrics.js';
import { withSpan } from '../tracing.js';

export type Road = 'rspamd' | 'lmtp' | 'smtp';

export interface MailDelivery {
  readonly road: Road;
  readonly raw: Buffer;
  /** MAIL FROM; '' for the null sender. */
  readonly envelopeFrom: string;
  /** The agents recipients of this delivery (RCPT TO), in order. */
  readonly recipients: readonly string[];
  /** Verdicts from the road's trusted source (Rspamd's results, or our MTA's Authentication-Results). */
  readonly trusted: DomainAuth;
  /** SASL login the MTA authenticated the submitter with, if any. */
  readonly saslUser?: string;
  readonly clientIp?: string;
  readonly queueId?: string;
}

export type RecipientResult =
  | { readonly recipient: string; readonly kind: 'stored'; readonly id: string; readonly duplicate: boolean }
  | { readonly recipient: string; readonly kind: 'report'; readonly id?: string }
  | { readonly recipient: string; readonly kind: 'refused' | 'tempfail'; readonly error: AdmpError };

export interface IngestOptions {
  /** Store all recipients or none: any refusal or fault leaves nothing behind (the Rspamd road answers once per message). */
  readonly atomic: boolean;
  /** Filled in as the mail is read, for the adapter's summary log line. */
  readonly facts?: IngestFacts;
}

export interface IngestFacts {
  messageId?: string;
  correlationId?: string;
  from?: string;
}

export interface PipelineDeps {
  readonly pool: pg.Pool;
  readonly enqueuer: Enqueuer;
  readonly config: Config;
  readonly directory: Directory;
  readonly policy: PolicySource;
  readonly resolveKey: KeyResolver;
  /** DNS for DKIM re-verification (config dkimMode = verify). */
  readonly dnsResolve: Resolver;
  readonly now?: () => number;
  readonly metrics?: Metrics;
}

export interface Pipeline {
  ingest(d: MailDelivery, opts: IngestOptions): Promise<RecipientResult[]>;
}

const checkEnvelope = TypeCompiler.Compile(Envelope);
// VERP return path of our outbound mail: bounces come back to admp-bounce+<message id>@<agents domain>.
export const BOUNCE_LOCAL = /^admp-bounce\+([0-9a-f-]{36})@/i;

const SIGNATURE_CODE: Record<SignatureFailure, ErrorCode> = {
  signature_missing: 'signature_missing',
  signature_invalid: 'signature_invalid',
  signature_expired: 'signature_expired',
  unknown_key: 'unknown_key',
  key_unavailable: 'key_unavailable',
};

const DSN_ACTIONS = new Set(['failed', 'delayed', 'delivered', 'relayed', 'expanded']);

type Check = { recipient: string; item?: NewMessage; error?: AdmpError };

const result = (c: Check, kind: 'refused' | 'tempfail' | undefined = undefined): RecipientResult => {
  const e = c.error!;
  return { recipient: c.recipient, kind: kind ?? (e.temporary ? 'tempfail' : 'refused'), error: e };
};

export function createPipeline(deps: PipelineDeps): Pipeline {
  const { config, directory, pool } = deps;
  const now = deps.now ?? (() => Math.floor(Date.now() / 1000));
  const dkimKeys = cachedResolver(deps.dnsResolve);

  async function domainAuth(
    d: MailDelivery,
    senderDomain: string,
    sender: string,
    policy: Policy,
  ): Promise<{ auth: DomainAuth; method: string } | AdmpError> {
    if (d.saslUser && saslMayActAs(policy, d.saslUser, sender))
      return { auth: d.trusted, method: `sasl:${d.saslUser}` };
    // Trusting the MTA needs a verdict to trust: when an earlier `accept` made Rspamd
    // skip its DKIM check (passthrough), a signed message arrives without one, and
    // is verified here instead (through the configured resolver).
    const verify =
      config.dkimMode === 'verify' ||
      (d.trusted.dkim.length === 0 && headerFields(d.raw).some((h) => h.name.toLowerCase() === 'dkim-signature'));
    const auth = verify ? await verifyDkim(d.raw, dkimKeys) : d.trusted;
    const domain = alignedDkimPass(auth, senderDomain);
    if (domain) return { auth, method: `dkim:${domain}` };
    if (auth.dkim.some((v) => v.result === 'temperror' && isAligned(v.domain, senderDomain))) {
      return new AdmpError('key_unavailable', `DKIM key of ${senderDomain} could not be fetched; try again later`);
    }
    const seen = auth.dkim.map((v) => `${v.domain}=${v.result}`).join(', ') || 'no DKIM signature';
    return new AdmpError('domain_auth_failed', `no DKIM pass aligned with ${senderDomain} (${seen})`);
  }

  async function checkRecipient(
    d: MailDelivery,
    fields: MailSignatureFields,
    recipient: string,
    ctx: {
      sender: string;
      auth: DomainAuth;
      method: string;
      envelope: {
        to: string;
        type: string;
        subject?: string;
        body: unknown;
        correlation_id?: string;
        ttl_sec?: number;
      };
      bodyBytes: Buffer;
      policy: Policy;
    },
  ): Promise<Check> {
    const fail = (error: AdmpError): Check => ({ recipient, error });
    const sig = await withSpan('admp.ingest.signature', { 'admp.recipient': recipient }, () =>
      verifySignature(
        { ...fields, body: ctx.bodyBytes, envelopeRecipient: recipient, envelope: ctx.envelope },
        { now: now(), clockSkewSec: config.clockSkewSec, resolveKey: deps.resolveKey },
      ),
    );
    if (!sig.ok) {
      deps.metrics?.signatureFailed.inc({ reason: sig.code });
      return fail(new AdmpError(SIGNATURE_CODE[sig.code], `agent signature: ${sig.reason}`));
    }
    const denied = (reason: string, error: AdmpError): Check => {
      deps.metrics?.policyDenied.inc({ reason });
      return fail(error);
    };
    const subject = ctx.envelope.subject ?? fields.subject ?? null;
    const verdict = await withSpan('admp.ingest.policy', { 'admp.recipient': recipient }, async () => {
      const to = await directory.resolve(recipient, 'recipient');
      if (to.kind !== 'local')
        return denied('not_local', new AdmpError('policy_denied', `${recipient} is not in our agents domains`));
      const decision = decide(ctx.policy, config.domains, {
        from: ctx.sender,
        to: to.address,
        type: ctx.envelope.type,
        subject,
        bytes: d.raw.length,
      });
      if (!decision.allow)
        return denied(
          decision.reason,
          new AdmpError(decision.reason === 'too_large' ? 'payload_too_large' : 'policy_denied', decision.message),
        );
      if (ctx.policy.max_inbox > 0 && (await inboxHolds(pool, to.agentId, ctx.policy.max_inbox))) {
        return denied(
          'quota_exceeded',
          new AdmpError('quota_exceeded', `inbox of ${to.address} is full; try again later`),
        );
      }
      return { to, decision };
    });
    if (!('decision' in verdict)) return verdict;
    const { to, decision } = verdict;
    const messageId = canonicalMessageId(fields.messageId ?? '');
    return {
      recipient,
      item: {
        to_agent_id: to.agentId,
        channel: 'smtp',
        status: 'delivered',
        from_agent: ctx.sender,
        subject,
        type: ctx.envelope.type,
        body: ctx.envelope.body,
        correlation_id: ctx.envelope.correlation_id ?? null,
        ttl_sec: ctx.envelope.ttl_sec ?? config.defaultTtlSec,
        mail_message_id: messageId,
        source_fingerprint: fingerprint({
          from: ctx.sender,
          to: to.address,
          type: ctx.envelope.type,
          subject,
          correlation_id: ctx.envelope.correlation_id,
          body: ctx.envelope.body,
          unique_id: `mid:${messageId}`,
        }),
        headers: { message_id: messageId, road: d.road, ...(d.queueId ? { queue_id: d.queueId } : {}) },
        auth: {
          domain: {
            method: ctx.method,
            source: ctx.auth.source,
            dkim: ctx.auth.dkim,
            spf: ctx.auth.spf,
            dmarc: ctx.auth.dmarc,
            arc: ctx.auth.arc,
          },
          signature: { agent: sig.agent, kid: sig.kid, key_source: sig.keySource, timestamp: sig.timestamp },
          policy: decision.rule,
          client_ip: d.clientIp ?? null,
        },
      },
    };
  }

  async function report(d: MailDelivery): Promise<RecipientResult[]> {
    const rep = parseDeliveryReport(d.raw);
    for (const r of rep.recipients) deps.metrics?.dsn.inc({ action: DSN_ACTIONS.has(r.action) ? r.action : 'other' });
    return Promise.all(
      d.recipients.map(async (recipient) => {
        const id = BOUNCE_LOCAL.exec(recipient)?.[1];
        const matched = await recordDeliveryReport(
          pool,
          { id, mailMessageId: rep.originalMessageId ? canonicalMessageId(rep.originalMessageId) : undefined },
          reportOutcome(rep),
          rep.recipients,
        );
        return { recipient, kind: 'report' as const, ...(matched ? { id: matched } : {}) };
      }),
    );
  }

  async function check(d: MailDelivery, facts: IngestFacts | undefined): Promise<Check[] | RecipientResult[]> {
    const all = (error: AdmpError): Check[] => d.recipients.map((recipient) => ({ recipient, error }));
    if (d.raw.length > config.maxMailBytes)
      return all(new AdmpError('payload_too_large', `message is larger than ${config.maxMailBytes} bytes`));
    let parsed: ParsedMail;
    try {
      parsed = await withSpan('admp.ingest.parse', { 'admp.bytes': d.raw.length }, () =>
        simpleParser(d.raw, { skipHtmlToText: true, skipTextToHtml: true, skipImageLinks: true, skipTextLinks: true }),
      );
    } catch (err) {
      return all(new AdmpError('bad_request', `unparsable message: ${(err as Error).message}`));
    }
    if (facts && parsed.messageId) facts.messageId = canonicalMessageId(parsed.messageId);
    if (isDeliveryReport(parsed)) return report(d);

    const fields = readSignedMail(parsed);
    const sender = fields.from ? tryParseAddress(fields.from) : undefined;
    if (!sender) return all(new AdmpError('signature_invalid', 'From must hold exactly one agent address'));
    if (facts) facts.from = sender.address;
    const policy = await deps.policy.current();
    const authn = await withSpan('admp.ingest.domain_auth', { 'admp.sender_domain': sender.domain }, () =>
      domainAuth(d, sender.domain, sender.address, policy),
    );
    if (authn instanceof AdmpError) return all(authn);

    if (!fields.body)
      return all(
        new AdmpError('invalid_envelope', 'no ADMP envelope: expected one application/json part (or a JSON text body)'),
      );
    if (fields.body.length > config.maxBodyBytes)
      return all(new AdmpError('payload_too_large', `envelope is larger than ${config.maxBodyBytes} bytes`));
    let envelope: unknown;
    try {
      envelope = JSON.parse(fields.body.toString('utf8'));
    } catch (err) {
      return all(new AdmpError('invalid_envelope', `envelope is not JSON: ${(err as Error).message}`));
    }
    if (!checkEnvelope.Check(envelope)) {
      const e = checkEnvelope.Errors(envelope).First();
      return all(
        new AdmpError('invalid_envelope', `envelope${e?.path.replace(/\//g, '.') ?? ''}: ${e?.message ?? 'invalid'}`),
      );
    }
    if (facts && envelope.correlation_id) facts.correlationId = envelope.correlation_id;
    const ctx = {
      sender: sender.address,
      auth: authn.auth,
      method: authn.method,
      envelope,
      bodyBytes: fields.body,
      policy,
    };
    return Promise.all(
      d.recipients.map(async (r) => {
        try {
          return await checkRecipient(d, fields, r, ctx);
        } catch (err) {
          return { recipient: r, error: toAdmpError(err) };
        }
      }),
    );
  }

  async function ingest(d: MailDelivery, opts: IngestOptions): Promise<RecipientResult[]> {
    const checks = await check(d, opts.facts);
    if (checks.some((c) => 'kind' in c)) return checks as RecipientResult[];
    const cs = checks as Check[];
    const ok = cs.filter((c) => c.item);
    const blocked = cs.length !== ok.length;
    if (opts.atomic && blocked) {
      // Nothing is stored; the others learn why the message as a whole was not taken.
      const worst = cs.find((c) => c.error?.temporary) ?? cs.find((c) => c.error)!;
      return cs.map((c) => (c.error ? result(c) : result({ recipient: c.recipient, error: worst.error! })));
    }
    let stored: EnqueueResult[];
    try {
      // One recipient (the usual case) joins the shared batcher; several go in one
      // statement of their own, so that all or none of them are stored.
      stored =
        ok.length === 1
          ? [await deps.enqueuer.enqueue(ok[0]!.item!)]
          : ok.length > 1
            ? await enqueueAll(ok.map((c) => c.item!))
            : [];
    } catch (err) {
      const e = toAdmpError(err);
      return cs.map((c) => result(c.error ? c : { recipient: c.recipient, error: e }));
    }
    let i = 0;
    return cs.map((c) => {
      if (!c.item) return result(c);
      const s = stored[i++]!;
      return { recipient: c.recipient, kind: 'stored' as const, id: s.id, duplicate: s.duplicate };
    });
  }

  async function enqueueAll(items: NewMessage[]): Promise<EnqueueResult[]> {
    const stored = await withSpan('admp.enqueue', { 'admp.channel': 'smtp', 'admp.batch': items.length }, () =>
      enqueueRows(pool, items),
    );
    if (deps.metrics) for (const s of stored) observeEnqueue(deps.metrics, 'smtp', s.duplicate);
    return stored;
  }

  return {
    ingest(d, opts) {
      return withSpan(
        'admp.ingest',
        {
          'admp.road': d.road,
          'admp.recipients': d.recipients.length,
          ...(d.queueId ? { 'admp.queue_id': d.queueId } : {}),
        },
        () => ingest(d, opts),
      );
    },
  };
}
