// What every road hands the pipeline (one mail and its envelope), and what it gets
// back for each recipient.
import type { AdmpError } from '../errors.js';
import type { DomainAuth } from './domain-auth.js';

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
  /**
   * When our own MTA first received the mail (Unix seconds): LMTP reads our Postfix's Received
   * field (a queued mail keeps it across retries); the Rspamd road and the SMTP edge answer
   * inside the receiving SMTP session, so it is then. Unset: now.
   */
  readonly receivedAt?: number;
}

export type RecipientResult =
  | { readonly recipient: string; readonly kind: 'stored'; readonly id: string; readonly duplicate: boolean }
  | { readonly recipient: string; readonly kind: 'report'; readonly id?: string }
  | { readonly recipient: string; readonly kind: 'refused' | 'tempfail'; readonly error: AdmpError };

/** Facts read from the mail as it goes through, for the summary log line. */
export interface IngestFacts {
  messageId?: string;
  correlationId?: string;
  from?: string;
}

/** The same outcome for every recipient (a refusal or fault of the mail as a whole). */
export const everyRecipient = (recipients: readonly string[], error: AdmpError): RecipientResult[] =>
  recipients.map((recipient) => ({ recipient, kind: error.temporary ? 'tempfail' : 'refused', error }));
