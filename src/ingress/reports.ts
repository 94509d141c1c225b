// Delivery status reports (RFC 3464) are acted on only when they come back to the tagged
// return path of one of our outbound messages (src/core/bounce-tag.ts), and then only on
// that message: never a message found by its Message-ID, never inbound mail. Anything
// else that looks like a report is refused (5.7.1, counted under `report_refused`).
import type pg from 'pg';
import { AdmpError } from '../errors.js';
import { looksLikeBounceAddress, readBounceAddress } from '../core/bounce-tag.js';
import { recordDeliveryReport } from '../db/delivery-reports.js';
import { isDeliveryReport, parseDeliveryReport, reportOutcome } from '../mail/dsn.js';
import type { ParsedMail } from 'mailparser';
import type { Metrics } from '../metrics.js';
import { everyRecipient, type MailDelivery, type RecipientResult } from './delivery.js';
import { fromContent } from './from-content.js';

const DSN_ACTIONS = new Set(['failed', 'delayed', 'delivered', 'relayed', 'expanded']);

export interface ReturnPath {
  readonly domains: readonly string[];
  readonly secret: Buffer;
  /** How long after sending a report is still taken: our retry deadline plus the relays'. */
  readonly maxAgeSec: number;
  readonly now: () => number;
}

const refused = (why: string) => new AdmpError('report_refused', why);

/**
 * What a recipient address is to us: not our return path at all, a valid tag, or a
 * refusal (the roads answer it at RCPT time; the pipeline checks again).
 */
export function checkReturnPath(
  address: string,
  rp: ReturnPath,
): 'not_return_path' | { messageId: string } | AdmpError {
  if (!looksLikeBounceAddress(address)) return 'not_return_path';
  const tag = readBounceAddress(address, {
    domains: rp.domains,
    nowSec: rp.now(),
    maxAgeSec: rp.maxAgeSec,
    secret: rp.secret,
  });
  return tag.valid ? { messageId: tag.messageId } : refused(`${address}: no valid bounce tag (${tag.reason})`);
}

/** A report that is not at our return path; undefined for other mail. */
export function misaddressedReport(d: MailDelivery, parsed: ParsedMail): RecipientResult[] | undefined {
  if (!isDeliveryReport(parsed)) return undefined;
  return everyRecipient(
    d.recipients,
    refused('a delivery report is taken only at the return path of a message we sent'),
  );
}

/** Mail to our return path: reports only, each applied to the one message its tag names. */
export async function recordReport(
  pool: pg.Pool,
  d: MailDelivery,
  parsed: ParsedMail,
  rp: ReturnPath,
  metrics?: Metrics,
): Promise<RecipientResult[]> {
  if (!d.recipients.every(looksLikeBounceAddress))
    return everyRecipient(d.recipients, refused('a delivery report goes to the return path alone'));
  if (!fromContent('its MIME structure', () => isDeliveryReport(parsed)))
    return everyRecipient(d.recipients, refused('mail to the return path must be a delivery status report (RFC 3464)'));
  const rep = fromContent('its delivery status', () => parseDeliveryReport(d.raw));
  for (const r of rep.recipients) metrics?.dsn.inc({ action: DSN_ACTIONS.has(r.action) ? r.action : 'other' });
  return Promise.all(
    d.recipients.map(async (recipient): Promise<RecipientResult> => {
      const tag = checkReturnPath(recipient, rp);
      if (tag instanceof AdmpError) return { recipient, kind: 'refused', error: tag };
      if (tag === 'not_return_path') throw new Error('unreachable: every recipient is a return path');
      // A message since deleted: the report is taken and dropped (there is nothing to change).
      const matched = await recordDeliveryReport(pool, tag.messageId, reportOutcome(rep), rep.recipients);
      return { recipient, kind: 'report', ...(matched ? { id: matched } : {}) };
    }),
  );
}
