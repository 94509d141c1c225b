// Recording delivery status on the message a report is about.
import type pg from 'pg';
import type { DeliveryReport } from '../ingress/dsn.js';

/**
 * Appends the report to the message's delivery_log and moves an outbound message on:
 * `failed` for a failed action, `delivered` for delivered/relayed (RFC 3464 §2.3.3).
 * The message is found by id (from a VERP bounce address) or by its Message-ID.
 * Returns the id it matched, if any.
 */
export async function recordDeliveryReport(
  db: Pick<pg.Pool, 'query'>,
  match: { id?: string; mailMessageId?: string },
  report: DeliveryReport,
): Promise<string | undefined> {
  if (!match.id && !match.mailMessageId) return undefined;
  const failed = report.recipients.find((r) => r.action === 'failed');
  const delivered = report.recipients.find((r) => r.action === 'delivered' || r.action === 'relayed');
  const next = failed ? 'failed' : delivered ? 'delivered' : null;
  const { rows } = await db.query<{ id: string }>(
    `UPDATE message SET
        status = CASE WHEN $3::text IS NOT NULL AND status IN ('queued', 'sent') THEN $3::message_status ELSE status END,
        delivered_at = CASE WHEN $3 = 'delivered' AND status IN ('queued', 'sent') THEN now() ELSE delivered_at END,
        delivery_log = delivery_log || jsonb_build_array(jsonb_build_object('at', now(), 'event', 'dsn', 'recipients', $4::jsonb))
      WHERE ($1::uuid IS NOT NULL AND id = $1::uuid) OR ($1::uuid IS NULL AND mail_message_id = $2)
     RETURNING id`,
    [match.id ?? null, match.mailMessageId ?? null, next, JSON.stringify(report.recipients)],
  );
  return rows[0]?.id;
}
