// Reading one message, an inbox's depth and dead letters; redriving dead letters.
import type { Queryable } from './pool.js';
import { LOG } from './delivery-log.js';
import type { MessageRow, MessageStatus } from './message-row.js';
import { shownStatus } from './shown-status.js';
import { FROM_MICROS } from './message-search.js';

/** A message as its sender or recipient may see it; undefined when absent, 'forbidden' for anyone else. */
export async function messageFor(
  db: Queryable,
  id: string,
  agentId: string,
  address: string,
): Promise<MessageRow | 'forbidden' | undefined> {
  const { rows } = await db.query<MessageRow>(
    `SELECT id, to_agent_id, channel, from_agent, subject, type, body, headers, correlation_id, idempotency_key,
            ${shownStatus('m')} AS status, lease_id, lease_until, attempts, ttl_sec, created_at, expires_at, delivered_at,
            acked_at, reply, in_reply_to, delivery_log, auth, mail_message_id
       FROM message m WHERE id = $1`,
    [id],
  );
  const row = rows[0];
  if (!row) return undefined;
  return row.to_agent_id === agentId || row.from_agent === address ? row : 'forbidden';
}

export async function inboxDepth(db: Queryable, agentId: string): Promise<Record<MessageStatus, number>> {
  const { rows } = await db.query<{ status: MessageStatus; n: number }>(
    // The agent's messages through their search entries (message has no index by agent
    // alone: migrations/0021_agent_index_off_message.sql); both sides name the agent, so on
    // Citus the join runs on its one shard.
    `SELECT m.status, count(*)::int AS n
       FROM message_search k JOIN message m ON m.id = k.id AND m.to_agent_id = k.to_agent_id
      WHERE k.to_agent_id = $1 AND m.to_agent_id = $1
      GROUP BY m.status`,
    [agentId],
  );
  const out = { queued: 0, sent: 0, delivered: 0, leased: 0, acked: 0, failed: 0, dead: 0 };
  for (const r of rows) out[r.status] = r.n;
  return out;
}

export async function listDead(db: Queryable, agentId: string, limit: number, before?: Date): Promise<MessageRow[]> {
  const { rows } = await db.query<MessageRow>(
    `SELECT * FROM message WHERE to_agent_id = $1 AND status = 'dead'
        AND ($3::timestamptz IS NULL OR created_at < $3)
      ORDER BY created_at DESC, id LIMIT $2`,
    [agentId, limit, before ?? null],
  );
  return rows;
}

/** Dead letters are redriven `all` in batches of this many, each its own statement. */
export const REDRIVE_BATCH = 1000;

/** A dead letter's place in oldest-first order: created_at in microseconds (exact, as text) and id. */
export interface DeadCursor {
  micros: string;
  id: string;
}

/**
 * The ids of up to `limit` of the agent's dead letters, oldest first, after `after`: one
 * range of message_dead (to_agent_id, created_at). Written as a range on created_at plus a
 * tie-break, which the index can use, rather than a row comparison.
 */
export async function oldestDead(
  db: Queryable,
  agentId: string,
  limit: number,
  after?: DeadCursor,
): Promise<DeadCursor[]> {
  const at = FROM_MICROS('$3');
  const { rows } = await db.query<DeadCursor>(
    `SELECT id, (extract(epoch FROM created_at) * 1000000)::bigint::text AS micros FROM message
      WHERE to_agent_id = $1 AND status = 'dead'
        AND ($3::bigint IS NULL OR created_at >= ${at} AND (created_at > ${at} OR id > $4::uuid))
      ORDER BY created_at, id LIMIT $2`,
    [agentId, limit, after?.micros ?? null, after?.id ?? null],
  );
  return rows;
}

/** Requeues the given dead letters with a fresh attempt count and TTL; returns those requeued. */
export async function redrive(db: Queryable, agentId: string, ids: readonly string[]): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    // A fresh TTL from now: to_timestamp(epoch + ttl_sec) rather than now() + interval, as
    // Citus refuses a non-immutable expression over a column (the epoch of now() is
    // reduced to a constant first; to_timestamp and + on numbers are immutable).
    `UPDATE message SET status = 'delivered', attempts = 0, lease_until = NULL, lease_id = NULL, visible_at = now(),
            expires_at = to_timestamp(extract(epoch FROM now()) + ttl_sec), delivery_log = ${LOG('redriven')}
      WHERE to_agent_id = $1 AND status = 'dead' AND id = ANY($2::uuid[])
     RETURNING id`,
    [agentId, ids],
  );
  if (rows.length > 0) await db.query('SELECT pg_notify($1, $2)', ['admp_inbox', agentId]);
  return rows.map((r) => r.id);
}

/** Whether an inbox holds at least `max` waiting (delivered or leased) messages. */
export async function inboxHolds(db: Queryable, agentId: string, max: number): Promise<boolean> {
  // Counting at most `max` rows keeps the check cheap however deep the inbox is. One
  // branch per status, each read by its partial index (message_inbox_seq, message_leases_by_agent).
  const { rows } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM (
       (SELECT 1 FROM message WHERE to_agent_id = $1 AND status = 'delivered' LIMIT $2)
       UNION ALL
       (SELECT 1 FROM message WHERE to_agent_id = $1 AND status = 'leased' LIMIT $2)
       LIMIT $2) s`,
    [agentId, max],
  );
  return rows[0]!.n >= max;
}

/** The id of some message in an inbox, if it holds any (the doctor's round trip waits for one). */
export async function anyMessageTo(db: Queryable, agentId: string): Promise<string | undefined> {
  const { rows } = await db.query<{ id: string }>(
    `SELECT m.id FROM message_search k JOIN message m ON m.id = k.id AND m.to_agent_id = k.to_agent_id
      WHERE k.to_agent_id = $1 AND m.to_agent_id = $1 LIMIT 1`,
    [agentId],
  );
  return rows[0]?.id;
}
