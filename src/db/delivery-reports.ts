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
 * outbound message `id` and, when `next` is given, settles it once: a message still
 * `queued` or `sent` and not yet reported delivered becomes `failed`, or stays `sent` with
 * delivered_at set (shown as `delivered`: src/db/shown-status.ts; a stored `delivered`
 * means waiting in an inbox, which the TTL sweep, the claim and the inbox gauges read).
 * A later report changes no status (a "failed" after "delivered" is only logged).
 * Only outbound mail qualifies: channel smtp and an outbound status (queued, sent, failed:
 * inbound mail is delivered, leased, acked or dead, whatever its recipient's id looks
 * like). The id comes from a verified bounce tag, never from a Message-ID. Returns the id
 * when such a message exists.
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
  // Found first by id (on Citus a read over every shard), then changed by (id,
  // to_agent_id): one shard. The database's time comes back with the match and the log
  // entry is made here, as Citus refuses now() and jsonb_build_object inside CASE; $5 is
  // only ever a message_status (a text parameter cast inside CASE would call enum_in,
  // which is not immutable). $6 is the delivery time, null for a failure.
  const found = await db.query<{ to_agent_id: string; now: Date }>(
    `SELECT to_agent_id, now() AS now FROM message
      WHERE id = $1::uuid AND channel = 'smtp' AND status IN ('queued', 'sent', 'failed')`,
    [id],
  );
  const m = found.rows[0];
  if (!m) return undefined;
  const entry = JSON.stringify({ at: m.now.toISOString(), event: 'dsn', recipients: capped });
  await db.query(
    `UPDATE message SET
        ${
          next
            ? `status = CASE WHEN status IN ('queued', 'sent') AND delivered_at IS NULL THEN $5::message_status ELSE status END,
               delivered_at = CASE WHEN status IN ('queued', 'sent') AND delivered_at IS NULL THEN $6::timestamptz ELSE delivered_at END,`
            : ''
        }
        delivery_log = CASE WHEN octet_length(delivery_log::text) >= $3 THEN delivery_log ELSE delivery_log || $4::jsonb END
      WHERE id = $1::uuid AND to_agent_id = $2 AND channel = 'smtp' AND status IN ('queued', 'sent', 'failed')`,
    [
      id,
      m.to_agent_id,
      REPORT_LIMITS.logBytes,
      entry,
      ...(next === 'delivered' ? ['sent', m.now] : next === 'failed' ? ['failed', null] : []),
    ],
  );
  return id;
}
