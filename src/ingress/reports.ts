// Delivery status reports (RFC 3464) are recorded on the outbound message they
// concern, never enqueued as agent mail.
import type pg from 'pg';
import { canonicalMessageId } from '../core/signature.js';
import { recordDeliveryReport } from '../db/delivery-reports.js';
import { parseDeliveryReport, reportOutcome } from '../mail/dsn.js';
import type { Metrics } from '../metrics.js';
import type { MailDelivery, RecipientResult } from './delivery.js';

// VERP return path of our outbound mail: bounces come back to admp-bounce+<message id>@<agents domain>.
export const BOUNCE_LOCAL = /^admp-bounce\+([0-9a-f-]{36})@/i;

const DSN_ACTIONS = new Set(['failed', 'delayed', 'delivered', 'relayed', 'expanded']);

export async function recordReport(pool: pg.Pool, d: MailDelivery, metrics?: Metrics): Promise<RecipientResult[]> {
  const rep = parseDeliveryReport(d.raw);
  for (const r of rep.recipients) metrics?.dsn.inc({ action: DSN_ACTIONS.has(r.action) ? r.action : 'other' });
  const mailMessageId = rep.originalMessageId ? canonicalMessageId(rep.originalMessageId) : undefined;
  return Promise.all(
    d.recipients.map(async (recipient) => {
      const id = BOUNCE_LOCAL.exec(recipient)?.[1];
      const matched = await recordDeliveryReport(pool, { id, mailMessageId }, reportOutcome(rep), rep.recipients);
      return { recipient, kind: 'report' as const, ...(matched ? { id: matched } : {}) };
    }),
  );
}
