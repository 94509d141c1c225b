// Delivery status notifications (RFC 3464): a `multipart/report;
// report-type=delivery-status` mail, usually from the null sender. They report on
// a message we sent; they are recorded on that message, never enqueued as agent
// mail. mailparser folds the message/delivery-status part into the text body,
// so the report is read from the raw MIME here.
import type { ParsedMail } from 'mailparser';

export interface RecipientStatus {
  readonly recipient: string;
  /** RFC 3464 §2.3.3: failed | delayed | delivered | relayed | expanded */
  readonly action: string;
  /** RFC 3463 status code, e.g. 5.1.1 */
  readonly status: string;
  readonly diagnostic?: string;
}

export interface DeliveryReport {
  readonly recipients: readonly RecipientStatus[];
  /** Message-ID of the reported message, from its returned copy or headers. */
  readonly originalMessageId?: string;
  /** RFC 3461 ENVID, if the sender set one. */
  readonly envelopeId?: string;
}

export function isDeliveryReport(parsed: ParsedMail): boolean {
  const ct = parsed.headers.get('content-type') as { value?: string; params?: Record<string, string> } | undefined;
  return (
    ct?.value?.toLowerCase() === 'multipart/report' && ct.params?.['report-type']?.toLowerCase() === 'delivery-status'
  );
}

/** RFC 822-style field blocks separated by blank lines, with unfolding. */
function fieldBlocks(text: string): Map<string, string>[] {
  return text
    .replace(/\r\n/g, '\n')
    .split(/\n\s*\n/)
    .map((block) => {
      const fields = new Map<string, string>();
      for (const line of block.replace(/\n[ \t]+/g, ' ').split('\n')) {
        const colon = line.indexOf(':');
        if (colon > 0) fields.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
      }
      return fields;
    })
    .filter((f) => f.size > 0);
}

/** The body of the first MIME part whose Content-Type starts with `type`. */
function mimePart(raw: string, type: string): string | undefined {
  const re = new RegExp(
    `content-type:\\s*${type.replace('/', '\\/')}[^\\n]*\\n(?:[ \\t][^\\n]*\\n|[a-z-]+:[^\\n]*\\n)*\\n`,
    'i',
  );
  const m = re.exec(raw);
  if (!m) return undefined;
  const rest = raw.slice(m.index + m[0].length);
  const end = rest.search(/\n--[^\n]+\n|\n--[^\n]+--/);
  return end >= 0 ? rest.slice(0, end) : rest;
}

const stripType = (v: string | undefined) =>
  v
    ?.replace(/^[a-z0-9-]+;\s*/i, '')
    .replace(/^<|>$/g, '')
    .trim();

export function parseDeliveryReport(raw: Buffer): DeliveryReport {
  const text = raw.toString('utf8').replace(/\r\n/g, '\n');
  const blocks = fieldBlocks(mimePart(text, 'message/delivery-status') ?? '');
  const [perMessage, ...perRecipient] = blocks;
  const returned = mimePart(text, 'message/rfc822') ?? mimePart(text, 'text/rfc822-headers');
  const returnedHeaders = returned ? fieldBlocks(returned.split(/\n\n/)[0] ?? '')[0] : undefined;
  const mid = returnedHeaders?.get('message-id');
  return {
    recipients: perRecipient
      .filter((f) => f.has('action'))
      .map((f) => ({
        recipient: stripType(f.get('final-recipient') ?? f.get('original-recipient')) ?? '',
        action: (f.get('action') ?? '').toLowerCase(),
        status: f.get('status') ?? '',
        ...(f.get('diagnostic-code') ? { diagnostic: f.get('diagnostic-code') } : {}),
      })),
    ...(mid ? { originalMessageId: mid.trim() } : {}),
    ...(perMessage?.get('original-envelope-id') ? { envelopeId: perMessage.get('original-envelope-id') } : {}),
  };
}

/**
 * What a report means for the reported message (RFC 3464 §2.3.3): `failed` when any
 * recipient failed, `delivered` when one was delivered or relayed, otherwise nothing
 * (delayed, expanded).
 */
export function reportOutcome(report: DeliveryReport): 'failed' | 'delivered' | null {
  if (report.recipients.some((r) => r.action === 'failed')) return 'failed';
  if (report.recipients.some((r) => r.action === 'delivered' || r.action === 'relayed')) return 'delivered';
  return null;
}
