// The one ingress pipeline, whatever road a mail took: parse → authenticate the
// sender's domain → check the envelope → verify the agent signature → check policy
// → the rate quotas it is counted against → build the row (fingerprint) → enqueue
// through the batcher, which counts the quotas in the statement that stores the rows.
// Each step is a function of its own (src/ingress/steps/); this module only runs them in order.
// Delivery status reports are recorded on the message they concern instead.
import type pg from 'pg';
import type { Config } from '../config.js';
import { AdmpError, toAdmpError } from '../errors.js';
import { tryParseAddress } from '../core/address.js';
import type { Envelope } from '../core/envelope.js';
import { canonicalMessageId, canonicalSubject, type KeyResolver } from '../core/signature.js';
import { replayKey } from '../core/replay.js';
import { unstorableText } from '../core/storable.js';
import { fromContent } from './from-content.js';
import { readSignedMail, type MailSignatureFields } from '../mail/signed-message.js';
import type { Directory } from '../mailbox/directory.js';
import type { Enqueuer, NewMessage } from '../mailbox/batcher.js';
import type { PolicySource } from '../policy/store.js';
import type { QuotaCharge, QuotaGate, QuotaSubject } from '../policy/rate-quotas.js';
import type { Metrics } from '../metrics.js';
import { withSpan } from '../tracing.js';
import { cachedResolver, type Resolver } from './domain-auth.js';
import { everyRecipient, type IngestFacts, type MailDelivery, type RecipientResult } from './delivery.js';
import { checkReturnPath, misaddressedReport, recordReport, type ReturnPath } from './reports.js';
import { looksLikeBounceAddress, returnPathMaxAgeSec } from '../core/bounce-tag.js';
import { parseMail } from './steps/parse.js';
import { authenticateDomain, type DomainAuthenticated } from './steps/authenticate-domain.js';
import { checkEnvelopeBody } from './steps/check-envelope.js';
import { verifyAgentSignature } from './steps/verify-signature.js';
import { checkPolicy } from './steps/check-policy.js';
import { buildRow } from './steps/build-row.js';
import { canonicalJson } from '../core/canonical-json.js';
import { storedMail } from '../db/enqueue.js';
import type { Policy } from '../core/policy.js';

export interface PipelineDeps {
  readonly pool: pg.Pool;
  readonly enqueuer: Enqueuer;
  readonly config: Config;
  readonly directory: Directory;
  readonly policy: PolicySource;
  /** The rate quotas of the policy's limit rules. */
  readonly quotas: QuotaGate;
  readonly resolveKey: KeyResolver;
  /** DNS for DKIM re-verification (config dkimMode = verify). */
  readonly dnsResolve: Resolver;
  readonly now?: () => number;
  readonly metrics?: Metrics;
  /** The key of the bounce tags on our return path (db/server-secret.ts). */
  readonly bounceSecret: Buffer;
}

export interface Pipeline {
  /**
   * Runs every step and stores what passed. `atomic`: all recipients or none (the
   * Rspamd road answers once per message). `facts` is filled in for the log line.
   */
  run(d: MailDelivery, atomic: boolean, facts: IngestFacts): Promise<RecipientResult[]>;
  /** What a RCPT address is to us when it is in the form of our return path (roads answer it at RCPT). */
  checkReturnPath(address: string): ReturnType<typeof checkReturnPath>;
}

/** What the steps before the per-recipient ones established about the mail. */
interface CheckedMail {
  readonly fields: MailSignatureFields & { body: Buffer };
  readonly sender: string;
  readonly domain: DomainAuthenticated;
  readonly envelope: Envelope;
  readonly policy: Policy;
}

/** A recipient's row to store, with the rate quotas it is counted against. */
interface Admitted {
  recipient: string;
  row: NewMessage;
  quota: QuotaSubject;
  charges: readonly QuotaCharge[];
}

type RecipientCheck = Admitted | { recipient: string; error: AdmpError } | { recipient: string; storedId: string };

export function createPipeline(deps: PipelineDeps): Pipeline {
  const { config, directory } = deps;
  const now = deps.now ?? (() => Math.floor(Date.now() / 1000));
  const dkimKeys = cachedResolver(deps.dnsResolve);
  const returnPath: ReturnPath = {
    domains: config.domains,
    secret: deps.bounceSecret,
    maxAgeSec: returnPathMaxAgeSec(config.outboundDeadlineSec),
    now,
  };

  /** The whole-mail steps; a refusal here answers every recipient alike. */
  async function checkMail(d: MailDelivery, facts: IngestFacts): Promise<CheckedMail | RecipientResult[]> {
    const parsed = await parseMail(d.raw, config.maxMailBytes);
    if (parsed instanceof AdmpError) return everyRecipient(d.recipients, parsed);
    if (parsed.messageId) facts.messageId = canonicalMessageId(parsed.messageId);
    if (d.recipients.some(looksLikeBounceAddress)) return recordReport(deps.pool, d, parsed, returnPath, deps.metrics);
    const report = fromContent('its MIME structure', () => misaddressedReport(d, parsed));
    if (report) return report;

    const fields = fromContent('its headers and parts', () => readSignedMail(parsed));
    for (const [name, value] of [
      ['Subject', fields.subject],
      ['Message-ID', fields.messageId],
    ] as const) {
      const why = value === undefined ? undefined : unstorableText(value);
      if (why) return everyRecipient(d.recipients, new AdmpError('bad_request', `${name} ${why}`));
    }
    const sender = fields.from ? tryParseAddress(fields.from) : undefined;
    if (!sender)
      return everyRecipient(
        d.recipients,
        new AdmpError('signature_invalid', 'From must hold exactly one agent address'),
      );
    facts.from = sender.address;
    const policy = await deps.policy.current();
    const domain = await withSpan('admp.ingest.domain_auth', { 'admp.sender_domain': sender.domain }, () =>
      authenticateDomain(d, sender, policy, { verifyAlways: config.dkimMode === 'verify', dkimKeys }),
    );
    if (domain instanceof AdmpError) return everyRecipient(d.recipients, domain);
    const envelope = checkEnvelopeBody(fields.body, config.maxBodyBytes);
    if (envelope instanceof AdmpError) return everyRecipient(d.recipients, envelope);
    if (envelope.correlation_id) facts.correlationId = envelope.correlation_id;
    return { fields: { ...fields, body: fields.body! }, sender: sender.address, domain, envelope, policy };
  }

  /**
   * A mail already stored for this recipient, redelivered (a lost reply, a deferral the
   * sender's MTA retries hours later), gets its success answer whatever the checks below
   * would say now: its signature may have aged past the validity, its key rotated, the
   * policy changed. Looked up only when a check refused it, so the usual path costs nothing.
   * The signature is not verified here, so the stored row must hold this copy's content
   * (sender, type, subject, correlation id, body): an agent and a Message-ID alone do not
   * tell a redelivery from a forgery.
   */
  async function alreadyStored(m: CheckedMail, recipient: string, subject: string | null): Promise<string | undefined> {
    const to = await directory.resolve(recipient, 'recipient').catch(() => undefined);
    if (to?.kind !== 'local' || !m.fields.messageId) return undefined;
    const stored = await storedMail(deps.pool, to.agentId, replayKey(m.sender, m.fields.messageId));
    const same =
      stored !== undefined &&
      stored.from_agent === m.sender &&
      stored.type === m.envelope.type &&
      stored.subject === subject &&
      stored.correlation_id === (m.envelope.correlation_id ?? null) &&
      canonicalJson(stored.body) === canonicalJson(m.envelope.body);
    return same ? stored.id : undefined;
  }

  /** The per-recipient steps: the signature names the recipient, policy and quota are per inbox. */
  async function checkRecipient(d: MailDelivery, m: CheckedMail, recipient: string): Promise<RecipientCheck> {
    // What the signature covers: the envelope's subject (in the signed body) or the Subject
    // header in its canonical form; absent and blank are the same to the signature.
    const subject = m.envelope.subject ?? (canonicalSubject(m.fields.subject ?? '') || null);
    const refused = async (error: AdmpError): Promise<RecipientCheck> => {
      const storedId = await alreadyStored(m, recipient, subject);
      return storedId ? { recipient, storedId } : { recipient, error };
    };
    const signature = await verifyAgentSignature(m.fields, m.fields.body, m.envelope, recipient, {
      now: now(),
      clockSkewSec: config.clockSkewSec,
      validitySec: config.signatureValiditySec,
      maxValiditySec: config.signatureMaxValiditySec,
      receivedAt: d.receivedAt,
      resolveKey: deps.resolveKey,
      metrics: deps.metrics,
    });
    if (signature instanceof AdmpError) return refused(signature);
    const admitted = await checkPolicy(
      { from: m.sender, recipient, type: m.envelope.type, subject, bytes: d.raw.length },
      { policy: m.policy, domains: config.domains, directory, metrics: deps.metrics },
    );
    if (admitted instanceof AdmpError) return refused(admitted);
    // Counted after the signature and the policy admitted the mail, so forged or refused
    // mail never spends a sender's quota; over a quota, it is refused for now (451 4.7.1,
    // a soft reject on the Rspamd road): the sender's MTA keeps it and retries, so a
    // legitimate burst is delivered later rather than lost.
    const quota: QuotaSubject = {
      from: m.sender,
      to: admitted.to.address,
      type: m.envelope.type,
      subject,
      correlation_id: m.envelope.correlation_id ?? null,
    };
    const charges = await deps.quotas.charges(quota);
    const messageId = canonicalMessageId(m.fields.messageId ?? '');
    const row = buildRow(
      d,
      m.envelope,
      subject,
      messageId,
      { sender: m.sender, domain: m.domain, signature, admitted },
      {
        defaultTtlSec: config.defaultTtlSec,
        // The signature's own window (its X-Agent-Expires or the default validity, plus the skew).
        replayUntil: signature.validUntil,
      },
    );
    return { recipient, row, quota, charges };
  }

  async function store(checks: RecipientCheck[], atomic: boolean): Promise<RecipientResult[]> {
    const refused = (recipient: string, error: AdmpError): RecipientResult => ({
      recipient,
      kind: error.temporary ? 'tempfail' : 'refused',
      error,
    });
    const failed = checks.filter((c) => 'error' in c);
    if (atomic && failed.length > 0) {
      // Nothing is stored; the others learn why the message as a whole was not taken.
      const worst = (failed.find((c) => c.error.temporary) ?? failed[0]!).error;
      return checks.map((c) => refused(c.recipient, 'error' in c ? c.error : worst));
    }
    const ok = checks.filter((c): c is Admitted => 'row' in c);
    try {
      const counters = ok.some((c) => c.charges.length > 0) ? ok.map((c) => c.charges) : undefined;
      const stored =
        ok.length > 0
          ? await deps.enqueuer.enqueueAll(
              ok.map((c) => c.row),
              { counters, atomic },
            )
          : [];
      // A recipient over a quota is refused; in an atomic mail the others share its refusal.
      const overQuota = stored.map(
        (s, i) => s.refused && deps.quotas.refusal(ok[i]!.charges, s.refused, ok[i]!.quota, 'mail'),
      );
      const first = overQuota.find((e) => e !== undefined);
      let i = 0;
      return checks.map((c) => {
        if ('error' in c) return refused(c.recipient, c.error);
        if ('storedId' in c) return { recipient: c.recipient, kind: 'stored', id: c.storedId, duplicate: true };
        const s = stored[i]!;
        const over = overQuota[i++];
        if (s.refused) return refused(c.recipient, over || first!);
        return { recipient: c.recipient, kind: 'stored', id: s.id, duplicate: s.duplicate };
      });
    } catch (err) {
      const e = toAdmpError(err);
      return checks.map((c) =>
        'storedId' in c
          ? { recipient: c.recipient, kind: 'stored', id: c.storedId, duplicate: true }
          : refused(c.recipient, 'error' in c ? c.error : e),
      );
    }
  }

  return {
    checkReturnPath: (address) => checkReturnPath(address, returnPath),
    async run(d, atomic, facts) {
      const mail = await checkMail(d, facts);
      if (Array.isArray(mail)) return mail;
      const checks = await Promise.all(
        d.recipients.map((r) =>
          checkRecipient(d, mail, r).catch((err: unknown) => ({ recipient: r, error: toAdmpError(err) })),
        ),
      );
      return store(checks, atomic);
    },
  };
}
