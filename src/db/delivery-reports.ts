// Recording a delivery status report on the outbound message it concerns.
import type { Queryable } from './pool.js';

// Report texts come from whoever sent the report: each entry and the whole log are bounded.
export const REPORT_LIMITS = {
  /** Recipients kept per report entry. */
  recipients: 20,
  /** Characters kept of each text field of a recipient (diagnostic text above all). */
  text: 500,
  /** A report is not appended to a delivery_log already this large (bytes of its JSON). */
  logBytes: 32 * 1024,
} as const;

/**
 * Appends the report's recipients (capped, see REPORT_LIMITS) to the delivery_log of
 * outbound message `id` and, when `next` is given, moves it on from `queued` or `sent`.
 * Only an outbound message qualifies (channel smtp, addressed to another organisation);
 * the id comes from a verified bounce tag, never from a Message-ID. Returns the id when
 * such a message exists.
 */
export async function recordDeliveryReport(
  db: Queryable,
  id: string,
  next: 'failed' | 'delivered' | null,
  recipients: readonly object[],
): Promise<string | undefined> {
  const capped = recipients
    .slice(0, REPORT_LIMITS.recipients)
    .map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, String(v).slice(0, REPORT_LIMITS.text)])));
  const { rows } = await db.query<{ id: string }>(
    `UPDATE message SET
        status = CASE WHEN $2::text IS NOT NULL AND status IN ('queued', 'sent') THEN $2::message_status ELSE status END,
        delivered_at = CASE WHEN $2 = 'delivered' AND status IN ('queued', 'sent') THEN now() ELSE delivered_at END,
        delivery_log = CASE WHEN octet_length(delivery_log::text) >= $4 THEN delivery_log
          ELSE delivery_log || jsonb_build_array(jsonb_build_object('at', now(), 'event', 'dsn', 'recipients', $3::jsonb)) END
      WHERE id = $1::uuid AND channel = 'smtp' AND position('@' in to_agent_id) > 0
     RETURNING id`,
    [id, next, JSON.stringify(capped), REPORT_LIMITS.logBytes],
  );
  return rows[0]?.id;
}
