// Read side of the admin API over the message table: search (keyset-paged, newest
// first), one message in full, depth and age by status, throughput, outbound
// failures; and the operator's dead-letter deletion. Each search filter reads an index
// whose order is the answer's, so a page stops after `limit` index entries however large
// the table: agent, sender, correlation id and time on the insert-only message_search
// table (migrations/0019_message_search_table.sql, 0021_agent_index_off_message.sql),
// joined to message by its primary key; status and channel filter what those indexes
// give (the rare statuses have their own partial indexes on message).
import type { MessageRow, MessageStatus } from './message-row.js';
import { MESSAGE_STATUSES } from '../core/status.js';
import type pg from 'pg';
import { DELETED_COLUMNS, deleteDedupeKeys, type DeletedMessage } from './dedupe-keys.js';
import { inTransaction, type Queryable } from './pool.js';
import { shownStatus, shownStatusIs } from './shown-status.js';

export interface SearchFilter {
  agent?: string;
  status?: MessageStatus;
  channel?: 'http' | 'smtp';
  sender?: string;
  correlation_id?: string;
  after?: Date;
  before?: Date;
  /** Keyset position: created_at in microseconds since the epoch, and the id. */
  from?: { micros: string; id: string };
  limit: number;
}

export type SummaryRow = Pick<
  MessageRow,
  | 'id'
  | 'to_agent_id'
  | 'channel'
  | 'from_agent'
  | 'subject'
  | 'type'
  | 'correlation_id'
  | 'status'
  | 'attempts'
  | 'created_at'
> & {
  /** created_at in microseconds (text: exact, unlike a JS Date), for the next cursor. */
  micros: string;
};

/** The columns of a search answer; `k` is the table whose order the page follows (the cursor's). */
const summary = (k: string) => `m.id, m.to_agent_id, m.channel, m.from_agent, m.subject, m.type, m.correlation_id,
  ${shownStatus('m')} AS status, m.attempts, m.created_at, (extract(epoch FROM ${k}.created_at) * 1000000)::bigint::text AS micros`;
// Exact inverse of `micros` (a float to_timestamp() could be a microsecond off).
export const FROM_MICROS = (p: string) => `(timestamptz 'epoch' + ${p}::bigint * interval '1 microsecond')`;

const CHANNELS = ['http', 'smtp'] as const;
/** Statuses a message holds rarely or briefly: message_search_rare_status indexes them on message. */
const RARE_STATUSES: readonly MessageStatus[] = ['queued', 'failed', 'dead'];
function closed<T extends string>(allowed: readonly T[], v: T): T {
  if (!allowed.includes(v)) throw new TypeError(`not one of ${allowed.join(', ')}: ${v}`);
  return v;
}

/**
 * The search statement for a filter (bench/admin-search.ts EXPLAINs exactly this). A
 * rare status is searched on message itself, by its partial index (a dead letter of one
 * agent by message_dead); everything else walks message_search (`k`) newest first and
 * joins each entry's message (`m`).
 */
export function searchQuery(f: SearchFilter): { text: string; values: unknown[] } {
  const onMessage =
    f.sender === undefined &&
    f.correlation_id === undefined &&
    f.status !== undefined &&
    RARE_STATUSES.includes(f.status);
  const k = onMessage ? 'm' : 'k';
  const where: string[] = [];
  const values: unknown[] = [];
  const add = (sql: (p: string) => string, v: unknown) => {
    values.push(v);
    where.push(sql(`$${values.length}`));
  };
  if (f.agent !== undefined) add((p) => `${k}.to_agent_id = ${p}`, f.agent);
  // Status and channel are written as literals (closed lists, checked here): our pool
  // plans prepared statements once, generically, and a generic plan cannot tell a rare
  // status (dead: scan message_search_rare_status) from a common one (scan by time and filter).
  if (f.status !== undefined) where.push(shownStatusIs('m', closed(MESSAGE_STATUSES, f.status)));
  if (f.channel !== undefined) where.push(`m.channel = '${closed(CHANNELS, f.channel)}'`);
  if (f.sender !== undefined) add((p) => `${k}.from_agent = ${p}`, f.sender);
  if (f.correlation_id !== undefined) add((p) => `${k}.correlation_id = ${p}`, f.correlation_id);
  if (f.after !== undefined) add((p) => `${k}.created_at >= ${p}`, f.after);
  if (f.before !== undefined) add((p) => `${k}.created_at < ${p}`, f.before);
  if (f.from) {
    // Written as a range on created_at plus a tie-break, not as a row comparison:
    // the range is an index condition of every search index, the row comparison none.
    values.push(f.from.micros, f.from.id);
    const at = FROM_MICROS(`$${values.length - 1}`);
    where.push(`${k}.created_at <= ${at} AND (${k}.created_at < ${at} OR ${k}.id < $${values.length}::uuid)`);
  }
  values.push(f.limit);
  const from = onMessage
    ? 'message m'
    : 'message_search k JOIN message m ON m.id = k.id AND m.to_agent_id = k.to_agent_id';
  return {
    text: `SELECT ${summary(k)} FROM ${from} ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY ${k}.created_at DESC, ${k}.id DESC LIMIT $${values.length}`,
    values,
  };
}

export async function searchMessages(db: Queryable, f: SearchFilter): Promise<SummaryRow[]> {
  return (await db.query<SummaryRow>(searchQuery(f))).rows;
}

export type DetailRow = Omit<SummaryRow, 'micros'> &
  Pick<
    MessageRow,
    | 'body'
    | 'headers'
    | 'idempotency_key'
    | 'lease_until'
    | 'expires_at'
    | 'delivered_at'
    | 'acked_at'
    | 'reply'
    | 'in_reply_to'
    | 'mail_message_id'
    | 'auth'
  > & { delivery_log: Record<string, unknown>[] };

/** The message with this id (the primary key's leading column). */
export async function messageDetail(db: Queryable, id: string): Promise<DetailRow | undefined> {
  const { rows } = await db.query<DetailRow>(
    `SELECT id, to_agent_id, channel, from_agent, subject, type, correlation_id, ${shownStatus('m')} AS status,
            attempts, created_at, body, headers, idempotency_key, lease_until, expires_at, delivered_at, acked_at, reply,
            in_reply_to, mail_message_id, delivery_log, auth
       FROM message m WHERE id = $1 LIMIT 1`,
    [id],
  );
  return rows[0];
}

export interface StatusCount {
  status: MessageStatus;
  count: number;
  oldest_at: Date | null;
}

/**
 * Messages and the oldest one's creation time, per status shown (one scan of the table:
 * the console's overview): outbound mail a report confirmed counts as `delivered`.
 */
export async function depthByStatus(db: Queryable): Promise<StatusCount[]> {
  return (
    await db.query<StatusCount>(
      `SELECT ${shownStatus('m')} AS status, count(*)::int AS count, min(m.created_at) AS oldest_at
         FROM message m GROUP BY 1 ORDER BY 1`,
    )
  ).rows;
}

/**
 * Messages created in each of the last 60 minutes (empty minutes too), oldest first: one
 * range scan of message_search_by_time, counted per minute, then the minutes without any
 * filled in. Counted first and joined after: on Citus the count runs on the shards, and
 * a subquery per minute correlated with the series could not be distributed.
 */
export async function throughputPerMinute(db: Queryable): Promise<{ minute: Date; count: number }[]> {
  return (
    await db.query<{ minute: Date; count: number }>(
      `WITH since AS (SELECT date_trunc('minute', now()) - interval '59 minutes' AS t),
       counted AS (
         SELECT date_trunc('minute', created_at) AS minute, count(*)::int AS count
           FROM message_search WHERE created_at >= (SELECT t FROM since) GROUP BY 1)
       SELECT m AS minute, coalesce(c.count, 0) AS count
         FROM generate_series((SELECT t FROM since), (SELECT t FROM since) + interval '59 minutes', interval '1 minute') AS m
         LEFT JOIN counted c ON c.minute = m
        ORDER BY m`,
    )
  ).rows;
}

export interface OutboundFailureRow {
  id: string;
  to: string;
  from_agent: string;
  status: MessageStatus;
  created_at: Date;
  reason: string | null;
}

/** Mail to other organisations that failed, newest first, with the last logged reason. */
export async function outboundFailures(db: Queryable, limit: number): Promise<OutboundFailureRow[]> {
  return (
    await db.query<OutboundFailureRow>(
      `SELECT id, to_agent_id AS "to", from_agent, status, created_at,
              coalesce(delivery_log -> -1 ->> 'reason', delivery_log -> -1 ->> 'detail', delivery_log -> -1 ->> 'event') AS reason
         FROM message WHERE status = 'failed' AND channel = 'smtp'
        ORDER BY created_at DESC LIMIT $1`,
      [limit],
    )
  ).rows;
}

/**
 * Deletes one agent's dead letters for good, with their dedupe keys, in one transaction.
 * Both statements name to_agent_id, so on Citus they run on the agent's one shard.
 * Returns the ids deleted; others were not dead, not this agent's, or already gone.
 */
export async function deleteDead(pool: pg.Pool, agentId: string, ids: readonly string[]): Promise<string[]> {
  return inTransaction(pool, async (c) => {
    const { rows } = await c.query<DeletedMessage>(
      `DELETE FROM message m WHERE m.to_agent_id = $1 AND m.id = ANY($2::uuid[]) AND m.status = 'dead'
       RETURNING ${DELETED_COLUMNS}`,
      [agentId, ids],
    );
    await deleteDedupeKeys(c, rows);
    await deleteSearchEntries(c, rows);
    return rows.map((r) => r.id);
  });
}

/**
 * Deletes the search entries of deleted messages, in the caller's transaction. An entry is
 * found by its creation time (its table's time index): created_at comes back as a JS Date,
 * which keeps milliseconds, so the range is that millisecond, and the id and recipient
 * pick the one entry in it.
 */
export async function deleteSearchEntries(
  db: Queryable,
  gone: readonly Pick<DeletedMessage, 'id' | 'to_agent_id' | 'created_at'>[],
): Promise<void> {
  if (gone.length === 0) return;
  await db.query(
    // The bounds are values, not arithmetic in SQL: Citus refuses stable functions there.
    `DELETE FROM message_search k
      USING unnest($1::timestamptz[], $2::timestamptz[], $3::text[], $4::uuid[]) AS g(at, below, agent, id)
      WHERE k.created_at >= g.at AND k.created_at < g.below AND k.to_agent_id = g.agent AND k.id = g.id`,
    [
      gone.map((r) => r.created_at),
      gone.map((r) => new Date(r.created_at.getTime() + 1)),
      gone.map((r) => r.to_agent_id),
      gone.map((r) => r.id),
    ],
  );
}
