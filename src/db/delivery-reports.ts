// Recording a delivery status report on the message it concerns.
import type { Queryable } from './pool.js';

/**
 * Appends the report's recipients to the message's delivery_log and, when `next` is
 * given, moves an outbound message still `queued` or `sent` on to it. The message is
 * found by id (from a VERP bounce address) or by its Message-ID. Returns the id it
 * matched, if any.
 */
export async function recordDeliveryReport(
  db: Queryable,
  match: { id?: string; mailMessageId?: string },
  next: 'failed' | 'delivered' | null,
  recipients: readonly unknown[],
): Promise<string | undefined> {
  if (!match.id && !match.mailMessageId) return undefined;
  const { rows } = await db.query<{ id: string }>(
    `UPDATE message SET
        status = CASE WHEN $3::text IS NOT NULL AND status IN ('queued', 'sent') THEN $3::message_status ELSE status END,
        delivered_at = CASE WHEN $3 = 'delivered' AND status IN ('queued', 'sent') THEN now() ELSE delivered_at END,
        delivery_log = delivery_log || jsonb_build_array(jsonb_build_object('at', now(), 'event', 'dsn', 'recipients', $4::jsonb))
      WHERE ($1::uuid IS NOT NULL AND id = $1::uuid) OR ($1::uuid IS NULL AND mail_message_id = $2)
     RETURNING id`,
    [match.id ?? null, match.mailMessageId ?? null, next, JSON.stringify(recipients)],
  );
  return rows[0]?.id;
}
