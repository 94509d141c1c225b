// The outbound worker's queries on the message table. A claim takes due `queued`
// smtp rows with FOR UPDATE SKIP LOCKED (any number of instances may run), gives
// each a claim token (lease_id) and pushes next_attempt_at past the submission's
// timeout, so a row whose worker died is claimed again later. Only the holder of
// the current token can record the outcome.
import type { Queryable } from './pool.js';
import type { MessageRow } from './message-row.js';

export type OutboundRow = MessageRow & { lease_id: string; mail_message_id: string; next_attempt_at: Date };

/**
 * Claims up to `max` due rows, oldest due first, for `holdSec` seconds. Counts the
 * attempt and fixes the Message-ID on first claim (`<id>@<sender domain>`): a retry
 * must reuse it, it is the receiver's dedupe key (docs/protocol.md §6.1).
 */
export async function claimDue(db: Queryable, max: number, holdSec: number): Promise<OutboundRow[]> {
  const { rows } = await db.query<OutboundRow>(
    `WITH due AS (
       SELECT id, to_agent_id FROM message
        WHERE status = 'queued' AND channel = 'smtp' AND next_attempt_at <= now()
        ORDER BY next_attempt_at
        LIMIT $1
        FOR UPDATE SKIP LOCKED)
     UPDATE message m
        SET lease_id = gen_random_uuid(),
            next_attempt_at = now() + make_interval(secs => $2),
            attempts = m.attempts + 1,
            mail_message_id = coalesce(m.mail_message_id, m.id::text || '@' || split_part(m.from_agent, '@', 2))
       FROM due
      WHERE m.id = due.id AND m.to_agent_id = due.to_agent_id
     RETURNING m.*`,
    [max, holdSec],
  );
  return rows;
}

export type Outcome =
  | { readonly status: 'sent'; readonly log: Record<string, unknown> }
  | { readonly status: 'failed'; readonly log: Record<string, unknown> }
  | { readonly status: 'queued'; readonly retryInMs: number; readonly log: Record<string, unknown> };

/**
 * Records one attempt's outcome and releases the claim. The status moves only from
 * `queued`: a delivery report that arrived first (a fast DSN) is not overwritten,
 * but the attempt is still logged. Returns false when the claim was lost.
 */
export async function recordOutcome(
  db: Queryable,
  row: Pick<OutboundRow, 'id' | 'to_agent_id' | 'lease_id'>,
  o: Outcome,
): Promise<boolean> {
  const retryMs = o.status === 'queued' ? o.retryInMs : null;
  const { rowCount } = await db.query(
    `UPDATE message SET
        status = CASE WHEN status = 'queued' THEN $4::message_status ELSE status END,
        next_attempt_at = CASE WHEN $5::bigint IS NULL THEN next_attempt_at ELSE now() + $5::bigint * interval '1 millisecond' END,
        lease_id = NULL,
        delivery_log = delivery_log || jsonb_build_array(jsonb_build_object('at', now()) || $6::jsonb
          || CASE WHEN $5::bigint IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('retry_at', now() + $5::bigint * interval '1 millisecond') END)
      WHERE id = $1 AND to_agent_id = $2 AND lease_id = $3`,
    [row.id, row.to_agent_id, row.lease_id, o.status, retryMs, JSON.stringify(o.log)],
  );
  return rowCount === 1;
}
