// The outbound worker's queries on the message table. A claim takes due `queued`
// smtp rows with FOR UPDATE SKIP LOCKED (any number of instances may run), gives
// each a claim token (lease_id) and pushes next_attempt_at past the submission's
// timeout, so a row whose worker died is claimed again later. Only the holder of
// the current token can record the outcome.
import { randomUUID } from 'node:crypto';
import type { Queryable } from './pool.js';
import type { MessageRow } from './message-row.js';

export type OutboundRow = MessageRow & { lease_id: string; mail_message_id: string; next_attempt_at: Date };

/**
 * Claims up to `max` due rows, oldest due first, for `holdSec` seconds. Counts the
 * attempt and fixes the Message-ID on first claim (`<id>@<sender domain>`): a retry
 * must reuse it, it is the receiver's dedupe key (docs/protocol.md §6.1).
 */
export async function claimDue(db: Queryable, max: number, holdSec: number): Promise<OutboundRow[]> {
  // The recipients with due mail first (on Citus a read over every shard), then one
  // claim per recipient: it names to_agent_id, so on Citus it runs on one shard, where
  // FOR UPDATE SKIP LOCKED is supported. The claim token is made here (Citus refuses
  // gen_random_uuid() in an UPDATE); the message id keeps each row's token apart.
  const due = await db.query<{ to: string }>(
    `SELECT to_agent_id AS to FROM message
      WHERE status = 'queued' AND channel = 'smtp' AND next_attempt_at <= now()
      GROUP BY to_agent_id ORDER BY min(next_attempt_at) LIMIT $1`,
    [max],
  );
  const out: OutboundRow[] = [];
  for (const { to } of due.rows) {
    if (out.length >= max) break;
    const { rows } = await db.query<OutboundRow>(
      `WITH due AS (
         SELECT id FROM message
          WHERE to_agent_id = $1 AND status = 'queued' AND channel = 'smtp' AND next_attempt_at <= now()
          ORDER BY next_attempt_at
          LIMIT $2
          FOR UPDATE SKIP LOCKED)
       UPDATE message m
          SET lease_id = $4,
              next_attempt_at = now() + make_interval(secs => $3),
              attempts = m.attempts + 1,
              mail_message_id = coalesce(m.mail_message_id, m.id::text || '@' || split_part(m.from_agent, '@', 2))
         FROM due
        WHERE m.to_agent_id = $1 AND m.id = due.id
       RETURNING m.*`,
      [to, max - out.length, holdSec, randomUUID()],
    );
    out.push(...rows);
  }
  return out;
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
  // A retry and a final outcome are two statements: Citus refuses now() inside CASE.
  const retryAt = "now() + $6::bigint * interval '1 millisecond'";
  const retry = o.status === 'queued';
  const { rowCount } = await db.query(
    `UPDATE message SET
        status = CASE WHEN status = 'queued' THEN $4::message_status ELSE status END,
        ${retry ? `next_attempt_at = ${retryAt},` : ''}
        lease_id = NULL,
        delivery_log = delivery_log || (jsonb_build_object('at', now()) || $5::jsonb
          ${retry ? `|| jsonb_build_object('retry_at', ${retryAt})` : ''})
      WHERE id = $1 AND to_agent_id = $2 AND lease_id = $3`,
    [row.id, row.to_agent_id, row.lease_id, o.status, JSON.stringify(o.log), ...(retry ? [o.retryInMs] : [])],
  );
  return rowCount === 1;
}
